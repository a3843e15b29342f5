"""The one check of a ``JobSpec`` against what a model (and optionally a deployment) can do.

``check_job`` returns typed violations naming the ``JobSpec`` field at fault and what is supported; it raises
nothing and knows no wire format. Dialects word a violation in their own error shape (naming their own field),
``services.submit`` refuses a job with any, and the router uses the same function to keep only the deployments
that can serve a request. Providers do not re-check.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from imagegate.core.capabilities import Feature, ModelSpec
from imagegate.core.jobs import JobSpec, Modality
from imagegate.core.output_size import output_ratio, output_size


class ViolationKind:
    RESOLUTION = "unsupported_resolution"
    ASPECT_RATIO = "unsupported_aspect_ratio"
    TOO_MANY_IMAGES = "too_many_images"
    FEATURE = "unsupported_feature"
    OUT_OF_RANGE = "out_of_range"
    MODALITIES = "unsupported_modalities"


class ResolutionSending:
    """How a deployment's protocol can say the resolution asked."""

    ALWAYS = "always"  # a field of its own ("1K", "2K", "4K")
    AS_PIXEL_SIZE = "as_pixel_size"  # only as ``WxH``, which needs the job's aspect ratio to pick the size
    NEVER = "never"  # not at all: it makes the model's default


@dataclass(frozen=True, slots=True)
class DeploymentCaps:
    """What one deployment can serve of its models' capabilities; the defaults: all of them.

    A provider declares its upstream's (``capabilities(options)`` on its class: what its wire protocol can
    carry), a deployment's settings narrow them; the router keeps only the deployments whose caps a job fits,
    so a provider never has to refuse a job for what it cannot express.
    """

    resolutions: frozenset[str] | None = None
    max_input_images: int | None = None
    features: frozenset[str] | None = None
    text_answers: bool = True  # False: it answers with images only (no TEXT-only modality)
    needs_prompt_text: bool = False  # True: the caller's last turn must have text (no image-only prompts)
    returns_thoughts: bool = True  # False: a thinking model's thought parts never come back from it
    thinking_levels: frozenset[str] | None = None  # lower-case levels it can send; None: any the model takes
    image_search: bool = True  # Search grounding in images, beside the web
    search_time_range: bool = True  # Search grounding restricted to a time range
    temperature: bool = True  # False: its protocol has no sampling temperature to send
    needs_image: bool = False  # True: it only edits; the request (or its conversation) must carry an image
    max_side: int | None = None  # the longest side it makes; None: any in the model's size table
    resolution_sent: str = ResolutionSending.ALWAYS
    # True: it sizes any ratio the model lists itself (a local pipeline, on its grid); False: it makes only the
    # sizes in the model's table, so a listed ratio the table lacks at a resolution cannot be made there
    sizes_any_ratio: bool = False
    # the diffusion knobs it takes per request (Feature.NEGATIVE_PROMPT, STEPS, GUIDANCE): none unless declared,
    # since no hosted image API of the family has them; ``max_steps`` bounds the steps it runs
    diffusion: frozenset[str] = frozenset()
    max_steps: int | None = None

    def narrowed(
        self,
        *,
        resolutions: frozenset[str] | None = None,
        max_input_images: int | None = None,
        features: frozenset[str] | None = None,
    ) -> DeploymentCaps:
        """These caps with a deployment's own settings applied: each can only take away."""
        return replace(
            self,
            resolutions=_meet(self.resolutions, resolutions),
            max_input_images=min((n for n in (self.max_input_images, max_input_images) if n is not None), default=None),
            features=_meet(self.features, features),
        )


def _meet(declared: frozenset[str] | None, configured: frozenset[str] | None) -> frozenset[str] | None:
    if declared is None or configured is None:
        return configured if declared is None else declared
    return declared & configured


ALL = DeploymentCaps()


@dataclass(frozen=True, slots=True)
class Violation:
    """One thing in a request the model (or every deployment) cannot do."""

    kind: str
    field: str  # the JobSpec field: image_size, aspect_ratio, input_images, n, seed, temperature, steps, …
    message: str  # dialect-neutral (Google's sentence where Google has one)
    supported: tuple[str, ...] = ()
    hint: str = ""  # what the model does support, in words

    @property
    def explained(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def check_job(
    spec: JobSpec, model: ModelSpec, caps: DeploymentCaps | None = None, *, max_n: int | None = None
) -> list[Violation]:
    """Every way ``spec`` exceeds ``model`` (restricted by a deployment's ``caps``); empty when it can be
    served. Without ``caps``, what the model allows on any deployment (diffusion knobs are the deployment's to
    take, so only their ranges are checked then)."""
    deployment = caps
    caps = caps or ALL
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
    if not found:
        found.extend(_size_on_this_upstream(spec, model, caps))
    found.extend(_images(spec, model, caps))
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
    if spec.temperature is not None and not caps.temperature:
        found.append(
            Violation(
                ViolationKind.FEATURE,
                "temperature",
                f"{model.id} is served here by an upstream that takes no temperature",
                hint="leave temperature out",
            )
        )
    features = model.features if caps.features is None else model.features & caps.features
    if spec.seed is not None and not spec.seed_drawn and Feature.SEED not in features:
        found.append(Violation(ViolationKind.FEATURE, "seed", f"{model.id} does not take a seed here"))
    found.extend(_thinking_and_grounding(spec, model, features, caps))
    found.extend(_diffusion(spec, model, deployment))
    if Modality.IMAGE not in spec.modalities and Modality.TEXT not in spec.modalities:
        found.append(
            Violation(
                ViolationKind.MODALITIES, "modalities", "at least one response modality is needed", ("TEXT", "IMAGE")
            )
        )
    elif Modality.IMAGE not in spec.modalities and not caps.text_answers:
        found.append(
            Violation(
                ViolationKind.MODALITIES,
                "modalities",
                f"{model.id} is served here by an upstream that answers with images only; a text-only answer "
                "cannot be asked of it",
                ("IMAGE",),
                "ask for IMAGE (with or without TEXT)",
            )
        )
    if caps.needs_prompt_text and not spec.request_turn.text.strip():
        found.append(
            Violation(
                ViolationKind.FEATURE,
                "prompt",
                f"{model.id} is served here by an upstream that needs a text prompt in the last user turn",
                hint="say in words what to make of the images",
            )
        )
    return found


def _size_on_this_upstream(spec: JobSpec, model: ModelSpec, caps: DeploymentCaps) -> list[Violation]:
    """A valid resolution and ratio the model has no size for together, or that this upstream cannot say or
    make (too long a side, no way to send it)."""
    tier = model.resolution(spec.image_size)
    ratio = spec.aspect_ratio
    if tier is not None and ratio is not None and tier.size(ratio) is None and not caps.sizes_any_ratio:
        return [
            Violation(
                ViolationKind.ASPECT_RATIO,
                "aspect_ratio",
                f"{model.id} does not make {ratio} images at {tier.name}",
                tier.ratios,
                f"at {tier.name} it makes {', '.join(tier.ratios)}",
            )
        ]
    if spec.image_size is None:
        return []
    if caps.resolution_sent == ResolutionSending.NEVER:
        return [
            Violation(
                ViolationKind.RESOLUTION,
                "image_size",
                f"{model.id} is served here by an upstream that is sent no resolution",
                hint=f"leave the resolution out: it makes {model.default_resolution}",
            )
        ]
    if caps.resolution_sent == ResolutionSending.AS_PIXEL_SIZE and ratio is None:
        return [
            Violation(
                ViolationKind.RESOLUTION,
                "image_size",
                f"{model.id} is served here by an upstream that is sent a resolution only as a pixel size",
                hint="ask for an aspect ratio too, or leave the resolution out",
            )
        ]
    size = output_size(spec, model)
    if caps.max_side is not None and size is not None and max(size) > caps.max_side:
        shape = output_ratio(spec, model)
        fitting = tuple(t.name for t in model.tiers if (fit := t.size(shape)) is not None and max(fit) <= caps.max_side)
        return [
            Violation(
                ViolationKind.RESOLUTION,
                "image_size",
                f"{model.id} is made here at most {caps.max_side} pixels a side; {spec.image_size} at {shape} is "
                f"{size[0]}x{size[1]}",
                fitting,
                f"at {shape} ask for {', '.join(fitting)}" if fitting else "",
            )
        ]
    return []


def _images(spec: JobSpec, model: ModelSpec, caps: DeploymentCaps) -> list[Violation]:
    limit = model.max_input_images
    if caps.max_input_images is not None:
        limit = min(limit, caps.max_input_images)
    inputs = len(spec.input_images)
    if inputs > limit:
        return [
            Violation(
                ViolationKind.TOO_MANY_IMAGES,
                "input_images",
                f"{model.id} accepts at most {_plural(limit, 'input image')} per request; got {inputs}",
                (str(limit),),
            )
        ]
    if limit == 0 and spec.context_images:
        # an upstream without images cannot be shown what the earlier turns made, which is the conversation
        return [
            Violation(
                ViolationKind.TOO_MANY_IMAGES,
                "input_images",
                f"{model.id} is served here by an upstream that takes no images; the conversation's earlier "
                f"{_plural(len(spec.context_images), 'image')} cannot be sent to it",
                ("0",),
                "start a new conversation, or leave the earlier images out",
            )
        ]
    if caps.needs_image and not spec.context_images:
        return [
            Violation(
                ViolationKind.FEATURE,
                "input_images",
                f"{model.id} is served here by a model that only edits images, and the request has none",
                hint="send the image to edit",
            )
        ]
    return []


#: Guidance scales past this only burn the image, in every pipeline shipped (their defaults are 0 to 4).
MAX_GUIDANCE = 20.0
_DIFFUSION_WORDS = {
    Feature.NEGATIVE_PROMPT: "negative prompt",
    Feature.STEPS: "step count",
    Feature.GUIDANCE: "guidance",
}


def _diffusion(spec: JobSpec, model: ModelSpec, caps: DeploymentCaps | None) -> list[Violation]:
    asked = {Feature.NEGATIVE_PROMPT: spec.negative_prompt, Feature.STEPS: spec.steps, Feature.GUIDANCE: spec.guidance}
    for knob, value in asked.items():
        if value is not None and caps is not None and knob not in caps.diffusion:
            return [
                Violation(
                    ViolationKind.FEATURE,
                    knob,
                    f"{model.id} is served here by an upstream that takes no {_DIFFUSION_WORDS[knob]}",
                    tuple(sorted(caps.diffusion)),
                    "leave it out; local diffusion models take it",
                )
            ]
    if spec.steps is not None and spec.steps < 1:
        return [Violation(ViolationKind.OUT_OF_RANGE, Feature.STEPS, f"steps must be at least 1, got {spec.steps}")]
    if spec.guidance is not None and not 0 <= spec.guidance <= MAX_GUIDANCE:
        return [
            Violation(
                ViolationKind.OUT_OF_RANGE,
                Feature.GUIDANCE,
                f"guidance must be between 0 and {MAX_GUIDANCE:g}, got {spec.guidance:g}",
            )
        ]
    if spec.steps is not None and caps is not None and caps.max_steps is not None and spec.steps > caps.max_steps:
        return [
            Violation(
                ViolationKind.OUT_OF_RANGE,
                Feature.STEPS,
                f"{model.id} runs at most {caps.max_steps} steps here, got {spec.steps}",
                (str(caps.max_steps),),
            )
        ]
    return []


def _thinking_and_grounding(
    spec: JobSpec, model: ModelSpec, features: frozenset[str], caps: DeploymentCaps
) -> list[Violation]:
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
    elif spec.grounding is not None and spec.grounding.images and not caps.image_search:
        found.append(
            Violation(
                ViolationKind.FEATURE,
                "grounding",
                f"{model.id} is served here with web Search grounding only; image search cannot be asked",
                hint="leave imageSearch out of searchTypes",
            )
        )
    elif spec.grounding is not None and spec.grounding.time_range is not None and not caps.search_time_range:
        found.append(
            Violation(
                ViolationKind.FEATURE,
                "grounding",
                f"{model.id} is served here without a time range for Search grounding",
                hint="leave timeRangeFilter out",
            )
        )
    if spec.thinking_level is not None and Feature.THINKING not in features:
        why = "this model does not think" if Feature.THINKING not in model.features else "not served with thinking here"
        found.append(
            Violation(ViolationKind.FEATURE, "thinking_level", f"thinking_level is not supported by {model.id}: {why}")
        )
    elif (
        spec.thinking_level is not None
        and caps.thinking_levels is not None
        and spec.thinking_level.lower() not in caps.thinking_levels
    ):
        found.append(
            Violation(
                ViolationKind.FEATURE,
                "thinking_level",
                f"thinking_level {spec.thinking_level} cannot be sent to the upstream serving {model.id} here",
                tuple(sorted(level.upper() for level in caps.thinking_levels)),
                f"it takes {', '.join(sorted(level.upper() for level in caps.thinking_levels))}",
            )
        )
    # a model that does not think has no thoughts to return; one that does, on a deployment that cannot
    # return its thoughts, would drop them
    returns = Feature.THINKING in features and caps.returns_thoughts
    if spec.include_thoughts and Feature.THINKING in model.features and not returns:
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
