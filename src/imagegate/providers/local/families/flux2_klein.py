"""FLUX.2 [klein]: a step-distilled 4B/9B model for fast text-to-image and multi-reference edits.

One ``Flux2KleinPipeline`` does both tasks (references are a list of images, none for text-to-image). The
distilled checkpoints need about 4 steps and ignore guidance; the base checkpoints want ~50 steps and
guidance ~4, set in the deployment's options.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from imagegate.providers.local.capabilities import FamilyCapabilities, Task
from imagegate.providers.local.families.base import Family, StepCallback, signature_default
from imagegate.providers.local.messages import Request


class Flux2Klein(Family):
    name = "flux2_klein"
    title = "FLUX.2 [klein]"
    capabilities = FamilyCapabilities(
        tasks=frozenset({Task.GENERATE, Task.EDIT}),
        max_input_images=4,
        native_side=1024,
        grid=16,
        max_side=2048,
        default_steps=4,
        max_steps=100,
        default_guidance=4.0,
        # one call takes one list of references, shared by every prompt: edits cannot be batched
        max_batch={Task.GENERATE: 4, Task.EDIT: 1},
    )
    pipeline_classes = {"Flux2KleinPipeline": frozenset({Task.GENERATE, Task.EDIT})}

    def pipelines(self, pipe: Any) -> dict[Task, Any]:
        return {Task.GENERATE: pipe, Task.EDIT: pipe}

    def run(
        self,
        pipe: Any,
        batch: Sequence[Request],
        images: Sequence[Sequence[Any]],
        generators: list[Any],
        callback: StepCallback,
    ) -> list[Any]:
        first = batch[0]
        result = pipe(
            prompt=[r.prompt for r in batch],  # by keyword: the first positional parameter is `image`
            image=list(images[0]) if first.task is Task.EDIT else None,
            height=first.height,
            width=first.width,
            num_inference_steps=first.steps,
            guidance_scale=first.guidance,
            generator=generators,
            callback_on_step_end=callback,
            text_encoder_out_layers=_encoder_layers(pipe),
        )
        return list(result.images)


def _encoder_layers(pipe: Any) -> tuple[int, ...]:
    """The text-encoder layers whose states condition the image: the pipeline's, where the encoder has them."""
    wanted = tuple(signature_default(pipe.__call__, "text_encoder_out_layers"))
    depth = int(pipe.text_encoder.config.num_hidden_layers)
    kept = tuple(layer for layer in wanted if layer <= depth)
    return kept or (depth,)
