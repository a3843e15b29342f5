"""SD-Turbo and SDXL-Turbo: small adversarially distilled models, 1-4 steps, no guidance, fine on a CPU.

Text-to-image runs the checkpoint's own pipeline; an "edit" is image-to-image on the same weights (the
reference is re-noised part way and denoised under the prompt): a variation, not an instruction edit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from imagegate.core.capabilities import Feature
from imagegate.providers.local.capabilities import FamilyCapabilities, Task
from imagegate.providers.local.families.base import Family, StepCallback
from imagegate.providers.local.messages import Request

#: How far image-to-image re-noises the reference: half keeps its layout and colours, lets the prompt restyle.
STRENGTH = 0.5


class SdTurbo(Family):
    name = "sd_turbo"
    title = "SD-Turbo / SDXL-Turbo"
    capabilities = FamilyCapabilities(
        tasks=frozenset({Task.GENERATE, Task.EDIT}),
        max_input_images=1,
        native_side=512,
        grid=8,
        max_side=1024,
        default_steps=2,
        max_steps=50,
        default_guidance=0.0,
        max_batch={Task.GENERATE: 8, Task.EDIT: 8},
        cpu_capable=True,
        # guidance above 1 switches classifier-free guidance on; a negative prompt would need it, so it is not
        # taken (at the turbo default of 0 it would do nothing)
        diffusion=frozenset({Feature.STEPS, Feature.GUIDANCE}),
    )
    pipeline_classes = {
        "StableDiffusionPipeline": frozenset({Task.GENERATE, Task.EDIT}),
        "StableDiffusionXLPipeline": frozenset({Task.GENERATE, Task.EDIT}),
    }

    def pipelines(self, pipe: Any) -> dict[Task, Any]:
        from diffusers import AutoPipelineForImage2Image

        return {Task.GENERATE: pipe, Task.EDIT: AutoPipelineForImage2Image.from_pipe(pipe)}

    def run(
        self,
        pipe: Any,
        batch: Sequence[Request],
        images: Sequence[Sequence[Any]],
        generators: list[Any],
        callback: StepCallback,
    ) -> list[Any]:
        first = batch[0]
        prompts = [r.prompt for r in batch]
        common: dict[str, Any] = {
            "prompt": prompts,
            "guidance_scale": first.guidance,
            "generator": generators,
            "callback_on_step_end": callback,
        }
        if first.task is Task.EDIT:
            # image-to-image keeps the reference's size, so the reference is brought to the output size first
            size = (first.width, first.height)
            references = [refs[0].convert("RGB").resize(size) for refs in images]
            # it runs steps x strength steps; at least one must remain
            steps = max(first.steps, math.ceil(1 / STRENGTH))
            result = pipe(image=references, strength=STRENGTH, num_inference_steps=steps, **common)
        else:
            result = pipe(height=first.height, width=first.width, num_inference_steps=first.steps, **common)
        return list(result.images)
