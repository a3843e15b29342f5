"""The one check of a ``JobSpec`` against what a model (and optionally a deployment) can do.

``check_job`` returns typed violations naming the ``JobSpec`` field at fault and what is supported; it raises
nothing and knows no wire format. Dialects word a violation in their own error shape (naming their own field),
``services.submit`` refuses a job with any, and the router uses the same function to keep only the deployments
that can serve a request. Providers do not re-check.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from imagegate.core.capabilities import Feature, ModelSpec
from imagegate.core.jobs import JobSpec, Modality


class ViolationKind:
    RESOLUTION = "unsupported_resolution"
    ASPECT_RATIO = "unsupported_aspect_ratio"
    TOO_MANY_IMAGES = "too_many_images"
    FEATURE = "unsupported_feature"
    OUT_OF_RANGE = "out_of_range"
    MODALITIES = "unsupported_modalities"


@dataclass(frozen=True, slots=True)
class DeploymentCaps:
    """What one deployment can serve of its models' capabilities; None everywhere: all of them."""

    resolutions: frozenset[str] | None = None
    max_input_images: int | None = None
    features: frozenset[str] | None = None


ALL = DeploymentCaps()


@dataclass(frozen=True, slots=True)
class Violation:
    """One thing in a request the model (or every deployment) cannot do."""

    kind: str
    field: str  # the JobSpec field: image_size, aspect_ratio, input_images, n, seed, temperature, modalities, …
    message: str  # dialect-neutral (Google's sentence where Google has one)
    supported: tuple[str, ...] = ()
    hint: str = ""  # what the model does support, in words

    @property
    def explained(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def check_job(
    spec: JobSpec, model: ModelSpec, caps: DeploymentCaps = ALL, *, max_n: int | None = None
) -> list[Violation]:
    """Every way ``spec`` exceeds ``model`` (restricted by ``caps``); empty when it can be served."""
    found: list[Violation] = []
    resolutions = tuple(r for r in model.resolution_names if caps.resolutions is None or r in caps.resolutions)
    if spec.image_size is not None and spec.image_size not in resolutions:
        if spec.image_size in model.resolution_names:  # the model has it, but no deployment here makes it
            why = f"{model.id} is not served at {spec.image_size} here; available: {', '.join(resolutions) or 'none'}"
        else:
            why = f"{model.id} does not make {spec.image_size} images; it supports {', '.join(model.resolution_names)}"
        found.append(Violation(ViolationKind.RESOLUTION, "image_size", why, resolutions))
    elif spec.image_size is None and caps.resolutions is not None and model.default_resolution not in resolutions:
        found.append(
            Violation(
                ViolationKind.RESOLUTION,
                "image_size",
                f"{model.id} is served here only at {', '.join(resolutions) or 'no resolution'}; "
                f"ask for one of them (its default is {model.default_resolution})",
                resolutions,
            )
        )
    if spec.aspect_ratio is not None and spec.aspect_ratio not in model.aspect_ratios:
        found.append(
            Violation(
                ViolationKind.ASPECT_RATIO,
                "aspect_ratio",
                f"Aspect ratio {spec.aspect_ratio} is not supported for this model",  # Google's own sentence
                model.aspect_ratios,
                f"{model.id} supports {', '.join(model.aspect_ratios)}",
            )
        )
    limit = model.max_input_images
    if caps.max_input_images is not None:
        limit = min(limit, caps.max_input_images)
    inputs = len(spec.input_images)
    if inputs > limit:
        found.append(
            Violation(
                ViolationKind.TOO_MANY_IMAGES,
                "input_images",
                f"{model.id} accepts at most {_plural(limit, 'input image')} per request; got {inputs}",
                (str(limit),),
            )
        )
    if max_n is not None and not 1 <= spec.n <= max_n:
        found.append(Violation(ViolationKind.OUT_OF_RANGE, "n", f"n must be between 1 and {max_n}, got {spec.n}"))
    if spec.temperature is not None and not 0 <= spec.temperature <= model.max_temperature:
        found.append(
            Violation(
                ViolationKind.OUT_OF_RANGE,
                "temperature",
                f"temperature must be between 0 and {model.max_temperature:g} for {model.id}, got {spec.temperature:g}",
            )
        )
    features = model.features if caps.features is None else model.features & caps.features
    if spec.seed is not None and not spec.seed_drawn and Feature.SEED not in features:
        found.append(Violation(ViolationKind.FEATURE, "seed", f"{model.id} does not take a seed here"))
    found.extend(_thinking_and_grounding(spec, model, features))
    if Modality.IMAGE not in spec.modalities and Modality.TEXT not in spec.modalities:
        found.append(
            Violation(
                ViolationKind.MODALITIES, "modalities", "at least one response modality is needed", ("TEXT", "IMAGE")
            )
        )
    return found


def _thinking_and_grounding(spec: JobSpec, model: ModelSpec, features: frozenset[str]) -> list[Violation]:
    found = []
    if spec.grounding is not None and Feature.GROUNDING not in features:
        where = "" if Feature.GROUNDING not in model.features else " here"
        found.append(
            Violation(
                ViolationKind.FEATURE,
                "grounding",
                f"Search grounding (tools.googleSearch) is not supported by {model.id}{where}",
                hint="leave the googleSearch tool out, or use a model and deployment with grounding",
            )
        )
    if spec.thinking_level is not None and Feature.THINKING not in features:
        why = "this model does not think" if Feature.THINKING not in model.features else "not served with thinking here"
        found.append(
            Violation(ViolationKind.FEATURE, "thinking_level", f"thinking_level is not supported by {model.id}: {why}")
        )
    # a model that does not think has no thoughts to return; one that does, on a deployment that cannot
    # return its thoughts, would drop them
    if spec.include_thoughts and Feature.THINKING in model.features and Feature.THINKING not in features:
        found.append(
            Violation(
                ViolationKind.FEATURE,
                "include_thoughts",
                f"{model.id} is not served here by an upstream that returns its thoughts",
                hint="leave includeThoughts out",
            )
        )
    return found


def first_violation(
    spec: JobSpec, model: ModelSpec, fields: Mapping[str, str], *, hint: bool = True
) -> tuple[str, str] | None:
    """``(the caller's field, message)`` of the first violation, named with a dialect's ``fields``; None if none.
    ``hint=False`` gives Google's bare sentence (the Gemini dialect copies Google's wording)."""
    found = check_job(spec, model)
    if not found:
        return None
    return fields.get(found[0].field, found[0].field), found[0].explained if hint else found[0].message
