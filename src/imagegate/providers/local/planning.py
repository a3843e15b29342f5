"""Turns a ``JobSpec`` into what a worker runs: the task, the references, the output size, steps and seed.

Everything a family cannot do is refused here, in the API process, with an ``InvalidRequest`` that names the
model and the limit, before a GPU sees the request.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from imagegate import imaging
from imagegate.core.capabilities import ModelSpec
from imagegate.core.images import ASPECT_RATIOS, DEFAULT_ASPECT_RATIO, ImageInput, nearest_aspect_ratio
from imagegate.core.jobs import JobSpec
from imagegate.errors import InvalidImage, InvalidRequest, UpstreamRejected
from imagegate.providers.local.capabilities import FamilyCapabilities, Task, output_size, ratio_of, snap
from imagegate.providers.local.options import DiffusersOptions

_ENCODABLE = frozenset({"image/png", "image/jpeg", "image/webp"})


@dataclass(frozen=True, slots=True)
class Plan:
    task: Task
    prompt: str
    images: tuple[ImageInput, ...]
    width: int
    height: int
    steps: int
    guidance: float
    seed: int
    mime_type: str
    quality: int | None


def plan(
    spec: JobSpec, model: ModelSpec, caps: FamilyCapabilities, options: DiffusersOptions, upstream_model: str
) -> Plan:
    # A chat turn without images edits the conversation's latest image, as Gemini does.
    images = spec.input_images or spec.context_images[-1:]
    task = Task.EDIT if images else Task.GENERATE
    if task not in caps.tasks:
        what = "only makes images from text; it cannot take input images" if images else "needs an image to edit"
        raise InvalidRequest(f"Model {model.id} ({upstream_model}) {what}.", field="images")
    limit = min(caps.max_input_images, model.max_input_images)
    if len(images) > limit:
        raise InvalidRequest(
            f"Model {model.id} takes at most {limit} input image{'s' if limit != 1 else ''}; {len(images)} were given.",
            field="images",
        )
    steps = options.steps or caps.default_steps
    if steps > caps.max_steps:
        # a deployment setting, not the caller's doing: the router may fail over to another deployment
        raise UpstreamRejected(
            f"the deployment asks for {steps} steps; {upstream_model} allows at most {caps.max_steps}"
        )
    width, height = _size(spec, model, caps, options, _aspect_ratio(spec, model, images), upstream_model)
    seed = spec.seed if spec.seed is not None else secrets.randbits(31)
    return Plan(
        task=task,
        prompt=spec.prompt if spec.system_instruction is None else f"{spec.system_instruction}\n{spec.prompt}",
        images=images,
        width=width,
        height=height,
        steps=steps,
        guidance=caps.default_guidance if options.guidance_scale is None else options.guidance_scale,
        seed=seed % 2**63,  # torch generators take a 64-bit seed; callers may send any integer
        mime_type=spec.output_mime_type if spec.output_mime_type in _ENCODABLE else "image/png",
        quality=spec.output_quality,
    )


def _size(
    spec: JobSpec, model: ModelSpec, caps: FamilyCapabilities, options: DiffusersOptions, ratio: str, name: str
) -> tuple[int, int]:
    """The output size: Google's size for the asked resolution on the family's grid, else about the
    deployment's (or the family's native) side squared. A resolution the family cannot reach is refused."""
    exact = model.pixel_size(ratio, spec.image_size) if spec.image_size is not None else None
    if exact is None:
        return output_size(ratio_of(ratio), options.resolution or caps.native_side, caps)
    if max(exact) > caps.max_side:
        raise InvalidRequest(
            f"Model {model.id} ({name}) makes at most {caps.max_side} pixels a side; {spec.image_size} at {ratio} "
            f"is {exact[0]}x{exact[1]}. Ask for a smaller resolution.",
            field="image_size",
        )
    return snap(exact[0], caps), snap(exact[1], caps)


def _aspect_ratio(spec: JobSpec, model: ModelSpec, images: tuple[ImageInput, ...]) -> str:
    if spec.aspect_ratio is not None:
        if spec.aspect_ratio not in model.aspect_ratios:
            raise InvalidRequest(
                f"Aspect ratio {spec.aspect_ratio} is not supported for this model", field="aspect_ratio"
            )
        return spec.aspect_ratio
    if images:
        try:
            width, height = imaging.probe(images[0].data)
        except InvalidImage:
            pass  # a format Pillow cannot read (HEIC): the default, as for no image
        else:
            return nearest_aspect_ratio(width, height, model.aspect_ratios).name
    if DEFAULT_ASPECT_RATIO in model.aspect_ratios or not model.aspect_ratios:
        return DEFAULT_ASPECT_RATIO
    return model.aspect_ratios[0] if model.aspect_ratios[0] in ASPECT_RATIOS else DEFAULT_ASPECT_RATIO
