"""The model families the ``diffusers`` provider serves, found by name or by a checkpoint's pipeline class."""

from __future__ import annotations

from imagegate.providers.local.families.base import Family
from imagegate.providers.local.families.flux2_klein import Flux2Klein
from imagegate.providers.local.families.qwen_image import QwenImage
from imagegate.providers.local.families.sd_turbo import SdTurbo

__all__ = ["FAMILIES", "Family", "family_for_pipeline", "family_named", "supported_pipelines"]

FAMILIES: dict[str, Family] = {family.name: family for family in (QwenImage(), Flux2Klein(), SdTurbo())}


def family_named(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown model family {name!r}; known: {', '.join(sorted(FAMILIES))}") from None


def family_for_pipeline(pipeline_class: str) -> Family | None:
    """The family that serves checkpoints whose model_index.json names ``pipeline_class``."""
    for family in FAMILIES.values():
        if pipeline_class in family.pipeline_classes:
            return family
    return None


def supported_pipelines() -> list[str]:
    return sorted(name for family in FAMILIES.values() for name in family.pipeline_classes)
