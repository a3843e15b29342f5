"""One prompt and a set of images for upstreams without conversations (OpenAI Images, fal, Replicate).

* the prompt is the text of the caller's last user turn, with the system instruction (if any) put before it
  as a paragraph of its own; the text of earlier turns is dropped, since the images carry what they made;
* the images are the last user turn's own images plus, as far as the upstream can take more, the images of
  earlier turns, newest first, sent in conversation order.

A text-only answer, a prompt without text, more images than the upstream takes and a conversation with images
for an upstream that takes none (nothing could stand for its history) are what these upstreams declare they
cannot serve (their providers' ``capabilities``): the router never hands them such a job.
"""

from __future__ import annotations

from imagegate.core.images import ImageInput
from imagegate.core.jobs import JobSpec, Role
from imagegate.errors import InvalidRequest


def flatten(
    spec: JobSpec, max_edit_images: int | None, model_limit: int, *, upstream: str
) -> tuple[str, tuple[ImageInput, ...]]:
    """The one prompt and the images that stand for ``spec``'s conversation; ``upstream`` names it in errors."""
    last_user = max((i for i, turn in enumerate(spec.turns) if turn.role is Role.USER), default=None)
    if last_user is None:
        raise InvalidRequest("The request has no user turn to take the prompt from.")
    request = spec.turns[last_user]
    text = request.text.strip()
    prompt = f"{spec.system_instruction.strip()}\n\n{text}" if spec.system_instruction else text
    own = request.images
    earlier = [image for i, turn in enumerate(spec.turns) if i != last_user for image in turn.images]
    limit = model_limit if max_edit_images is None else max_edit_images
    room = max(0, limit - len(own))
    kept = earlier[-room:] if room else []
    return prompt, (*kept, *own)
