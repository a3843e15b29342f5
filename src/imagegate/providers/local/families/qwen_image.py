"""Qwen-Image (text to image) and Qwen-Image-Edit-2509/2511 (edits with 1-3 reference images), Apache-2.0.

An Edit-Plus checkpoint serves both tasks: text-to-image runs ``QwenImagePipeline`` on the same weights. A
plain Qwen-Image checkpoint has no vision processor, so it can only make images from text. Guidance is real
classifier-free guidance (``true_cfg_scale``, two denoiser passes a step), which needs a negative prompt.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from typing import Any

from imagegate.core.capabilities import Feature
from imagegate.providers.local.capabilities import FamilyCapabilities, Task
from imagegate.providers.local.families.base import Family, StepCallback
from imagegate.providers.local.messages import Request

_NEGATIVE = " "  # the vendor's examples: a blank negative prompt switches true CFG on
_VLM_IMAGE_AREA = 384 * 384  # what the Edit-Plus pipeline shows its vision-language encoder per image


class QwenImage(Family):
    name = "qwen_image"
    title = "Qwen-Image / Qwen-Image-Edit-2509"
    capabilities = FamilyCapabilities(
        tasks=frozenset({Task.GENERATE, Task.EDIT}),
        max_input_images=3,
        native_side=1328,
        grid=16,
        max_side=2048,
        default_steps=40,
        max_steps=100,
        default_guidance=4.0,
        max_batch={Task.GENERATE: 4, Task.EDIT: 1},  # the Edit-Plus pipeline refuses batches above one
        diffusion=frozenset({Feature.STEPS, Feature.GUIDANCE, Feature.NEGATIVE_PROMPT}),  # true CFG: all three
    )
    pipeline_classes = {
        "QwenImagePipeline": frozenset({Task.GENERATE}),
        "QwenImageEditPlusPipeline": frozenset({Task.GENERATE, Task.EDIT}),
    }

    def load_kwargs(self, source: str, index: Mapping[str, Any], common: Mapping[str, Any]) -> dict[str, Any]:
        if "processor" not in index or importlib.util.find_spec("torchvision") is not None:
            return {}
        # transformers' Qwen2-VL image processor needs torchvision; its Pillow twin does the same resizing.
        from transformers import AutoTokenizer, Qwen2VLProcessor
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

        class _PillowProcessor(Qwen2VLProcessor):
            def check_argument_for_proper_class(self, argument_name: str, argument: Any) -> Any:
                # without torchvision there is no video processor class to check the absent one against
                parent: Any = super()
                return None if argument is None else parent.check_argument_for_proper_class(argument_name, argument)

        image_processor = Qwen2VLImageProcessorPil.from_pretrained(source, subfolder="processor", **common)
        tokenizer = AutoTokenizer.from_pretrained(source, subfolder="processor", **common)
        processor_class: Any = _PillowProcessor  # transformers leaves its constructor untyped
        return {"processor": processor_class(image_processor=image_processor, tokenizer=tokenizer)}

    def configure(self, reference_area: int | None) -> None:
        if reference_area is None:
            return
        from diffusers.pipelines.qwenimage import pipeline_qwenimage_edit_plus as edit_plus

        # The pipeline scales every reference to these module-level areas; a worker serves one model.
        edit_plus.VAE_IMAGE_SIZE = reference_area
        edit_plus.CONDITION_IMAGE_SIZE = min(_VLM_IMAGE_AREA, reference_area)

    def pipelines(self, pipe: Any) -> dict[Task, Any]:
        if type(pipe).__name__ == "QwenImageEditPlusPipeline":
            from diffusers import QwenImagePipeline

            return {Task.EDIT: pipe, Task.GENERATE: QwenImagePipeline.from_pipe(pipe)}
        return {Task.GENERATE: pipe}

    def run(
        self,
        pipe: Any,
        batch: Sequence[Request],
        images: Sequence[Sequence[Any]],
        generators: list[Any],
        callback: StepCallback,
    ) -> list[Any]:
        first = batch[0]
        common: dict[str, Any] = {
            "height": first.height,
            "width": first.width,
            "num_inference_steps": first.steps,
            "true_cfg_scale": first.guidance,
            "generator": generators,
            "callback_on_step_end": callback,
        }
        if first.task is Task.EDIT:
            negative = first.negative_prompt or _NEGATIVE
            result = pipe(image=list(images[0]), prompt=first.prompt, negative_prompt=negative, **common)
        else:
            prompts = [r.prompt for r in batch]
            negatives = [r.negative_prompt or _NEGATIVE for r in batch]
            result = pipe(prompt=prompts, negative_prompt=negatives, **common)
        return list(result.images)
