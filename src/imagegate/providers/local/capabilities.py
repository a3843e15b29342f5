"""What a model family can do (tasks, input images, sizes, steps, batching) and the output size of a request.

Pure data and arithmetic: the API process checks requests against these before a worker sees them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum

from imagegate.core.capabilities import Feature
from imagegate.core.checks import DeploymentCaps

#: What any diffusion pipeline cannot do (answer in text only, return thoughts, take a sampling temperature: its
#: steps and guidance are the deployment's options) and can (size any aspect ratio on its grid).
PIPELINE_CAPS = DeploymentCaps(text_answers=False, returns_thoughts=False, temperature=False, sizes_any_ratio=True)


class Task(StrEnum):
    GENERATE = "generate"  # text to image
    EDIT = "edit"  # one or more reference images plus an instruction


@dataclass(frozen=True, slots=True)
class FamilyCapabilities:
    """One family's limits; a checkpoint may offer less (``restricted``), never more."""

    tasks: frozenset[Task]
    max_input_images: int
    native_side: int  # outputs default to about native_side² pixels
    grid: int  # output sides are multiples of this (VAE downscale x patch size)
    max_side: int
    default_steps: int
    max_steps: int
    default_guidance: float
    max_batch: dict[Task, int]  # requests of one shape run together, up to this many (1: never batched)
    cpu_capable: bool = False
    # the knobs a request may set (Feature.STEPS, GUIDANCE, NEGATIVE_PROMPT): only those the pipeline honours,
    # so none is taken and then ignored (a distilled model's guidance, a negative prompt without CFG)
    diffusion: frozenset[str] = frozenset({Feature.STEPS})

    @property
    def min_side(self) -> int:
        return 2 * self.grid

    def restricted(self, tasks: frozenset[Task]) -> FamilyCapabilities:
        """The same limits for a checkpoint that can only do ``tasks``."""
        kept = self.tasks & tasks
        return replace(self, tasks=kept, max_input_images=self.max_input_images if Task.EDIT in kept else 0)

    def deployment_caps(self) -> DeploymentCaps:
        """These limits as the router checks them: images in, edit-only checkpoints, the longest side."""
        return replace(
            PIPELINE_CAPS,
            max_input_images=self.max_input_images if Task.EDIT in self.tasks else 0,
            needs_image=Task.GENERATE not in self.tasks,
            max_side=self.max_side,
            diffusion=self.diffusion,
            max_steps=self.max_steps,
        )

    def batch_limit(self, task: Task) -> int:
        return max(1, self.max_batch.get(task, 1))


def ratio_of(name: str) -> tuple[int, int]:
    """``"16:9"`` as ``(16, 9)``; ``ValueError`` for anything else."""
    left, sep, right = name.partition(":")
    if not sep or not left.isdigit() or not right.isdigit() or int(left) <= 0 or int(right) <= 0:
        raise ValueError(f"not an aspect ratio: {name!r}")
    return int(left), int(right)


def output_size(ratio: tuple[int, int], side: int, caps: FamilyCapabilities) -> tuple[int, int]:
    """Width and height of about ``side``² pixels in ``ratio``, on the family's grid and within its limits.

    The area, not a side, is kept: a model trained at about one megapixel works best near that many pixels
    whatever the shape, which is also how the vendors' own resolution tables are made.
    """
    rw, rh = ratio
    height = math.sqrt(side * side * rh / rw)
    width = height * rw / rh
    scale = min(1.0, caps.max_side / max(width, height))  # a very wide ratio must not overflow the longer side
    return snap(width * scale, caps), snap(height * scale, caps)


def snap(value: float, caps: FamilyCapabilities) -> int:
    """The nearest side the family can make: a multiple of its grid within its limits."""
    snapped = round(value / caps.grid) * caps.grid
    return min(caps.max_side, max(caps.min_side, snapped))
