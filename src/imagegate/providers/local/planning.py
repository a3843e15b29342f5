"""Turns a ``JobSpec`` into what a worker runs: the task, the references, the output size, steps and seed.

What a family cannot do is refused by the router, through the family's ``deployment_caps``, before a GPU
sees the request; a checkpoint whose family was not known at start-up gets the same check here.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass

from imagegate.core.capabilities import ModelSpec
from imagegate.core.checks import check_job
from imagegate.core.images import ImageInput
from imagegate.core.jobs import JobSpec
from imagegate.core.output_size import output_ratio
from imagegate.errors import InvalidRequest, UpstreamRejected
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
    negative_prompt: str | None


def plan(
    spec: JobSpec, model: ModelSpec, caps: FamilyCapabilities, options: DiffusersOptions, upstream_model: str
) -> Plan:
    # The router checked the job against the family already when the checkpoint was on disk at start-up;
    # when its family was learned only now, at its first load, the same check runs here.
    found = check_job(spec, model, caps.deployment_caps())
    if found:
        raise InvalidRequest(f"{found[0].explained} ({upstream_model}).", field=found[0].field)
    steps = spec.steps or options.steps or caps.default_steps  # the caller's, checked against max_steps above
    if steps > caps.max_steps:
        # a deployment setting, not the caller's doing: the router may fail over to another deployment
        raise UpstreamRejected(
            f"the deployment asks for {steps} steps; {upstream_model} allows at most {caps.max_steps}"
        )
    # A chat turn without images edits the conversation's latest image, as Gemini does.
    images = spec.input_images or spec.context_images[-1:]
    width, height = _size(spec, model, caps, options)
    seed = spec.seed if spec.seed is not None else secrets.randbits(31)
    return Plan(
        task=Task.EDIT if images else Task.GENERATE,
        prompt=spec.prompt if spec.system_instruction is None else f"{spec.system_instruction}\n{spec.prompt}",
        images=images,
        width=width,
        height=height,
        steps=steps,
        guidance=_guidance(spec, caps, options),
        seed=seed % 2**63,  # torch generators take a 64-bit seed; callers may send any integer
        mime_type=spec.output_mime_type if spec.output_mime_type in _ENCODABLE else "image/png",
        quality=spec.output_quality,
        negative_prompt=spec.negative_prompt,
    )


def _guidance(spec: JobSpec, caps: FamilyCapabilities, options: DiffusersOptions) -> float:
    """The caller's guidance, else the deployment's, else the family's default."""
    if spec.guidance is not None:
        return spec.guidance
    return caps.default_guidance if options.guidance_scale is None else options.guidance_scale


def _size(spec: JobSpec, model: ModelSpec, caps: FamilyCapabilities, options: DiffusersOptions) -> tuple[int, int]:
    """Google's size at the resolution asked, on the family's grid (``check_job`` kept it within the family's
    longest side); a ratio the model's table lacks, at that resolution's pixel count; no resolution asked,
    about the deployment's (or the family's native) side squared."""
    ratio = output_ratio(spec, model)
    tier = model.resolution(spec.image_size) if spec.image_size is not None else None
    if tier is None or not tier.sizes:
        return output_size(ratio_of(ratio), options.resolution or caps.native_side, caps)
    exact = tier.size(ratio)
    if exact is not None:
        return snap(exact[0], caps), snap(exact[1], caps)
    _, width, height = tier.sizes[0]
    return output_size(ratio_of(ratio), round(math.sqrt(width * height)), caps)
