"""What each model can do: ids and aliases, resolutions with their exact pixel sizes per aspect ratio, input-image
limit, token accounting and prices per resolution, and features. The shipped catalog is data (``models.toml``,
read by ``core.catalog``); nothing here is specific to one model."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from imagegate.core.images import ASPECT_RATIOS
from imagegate.core.jobs import JobSpec, Usage

#: Every resolution any model may declare, smallest first, in Google's spelling (``imageSize``).
RESOLUTIONS = ("512", "1K", "2K", "4K")


class Feature:
    """Names of what a model (and a deployment) may support beyond making images from text and images."""

    SEED = "seed"
    THINKING = "thinking"
    GROUNDING = "grounding"
    # per-request diffusion knobs: what the upstream takes (``DeploymentCaps.diffusion``), whatever the model
    NEGATIVE_PROMPT = "negative_prompt"
    STEPS = "steps"
    GUIDANCE = "guidance"


@dataclass(frozen=True, slots=True)
class Resolution:
    """One output resolution of a model: its exact size per aspect ratio, output tokens and price per image."""

    name: str
    sizes: tuple[tuple[str, int, int], ...]  # (ratio, width, height), in the model's ratio order
    output_tokens: int
    price_per_image: int  # micro-units per delivered image

    def size(self, ratio: str) -> tuple[int, int] | None:
        for name, width, height in self.sizes:
            if name == ratio:
                return width, height
        return None

    @property
    def ratios(self) -> tuple[str, ...]:
        return tuple(name for name, _, _ in self.sizes)


@dataclass(frozen=True, slots=True)
class Prices:
    """What delivered work costs, in micro-units: per image (per resolution where it differs), and per million
    input / output (text) tokens."""

    per_image: int
    per_million_input_tokens: int
    per_million_output_tokens: int
    per_image_by_resolution: tuple[tuple[str, int], ...] = ()

    def image_price(self, resolution: str | None) -> int:
        for name, price in self.per_image_by_resolution:
            if name == resolution:
                return price
        return self.per_image


@dataclass(frozen=True, slots=True)
class ModelSpec:
    id: str
    display_name: str
    description: str = ""
    version: str = "001"
    aliases: tuple[str, ...] = ()
    aspect_ratios: tuple[str, ...] = tuple(ASPECT_RATIOS)
    max_input_images: int = 3
    output_tokens_per_image: int = 1290  # at the default resolution
    input_tokens_per_image: int = 258
    input_token_limit: int = 32768
    output_token_limit: int = 32768
    temperature: float = 1.0
    top_p: float = 0.95
    top_k: int = 64
    max_temperature: float = 1.0
    price_per_image: int = 39_000  # micro-units per delivered image at the default resolution ($0.039)
    price_per_million_input_tokens: int = 300_000  # micro-units ($0.30 per million input tokens)
    price_per_million_output_tokens: int = 0  # text output; images are priced per image above
    # Empty: one "1K" resolution with gemini-2.5-flash-image's sizes for ``aspect_ratios`` and the prices above.
    resolutions: tuple[Resolution, ...] = ()
    default_resolution: str = "1K"
    # Model ids that mean this model at one resolution (Pixapi's "gemini-3.1-flash-image-preview-2k").
    resolution_aliases: tuple[tuple[str, str], ...] = ()
    features: frozenset[str] = frozenset({Feature.SEED})

    @property
    def tiers(self) -> tuple[Resolution, ...]:
        """The resolutions this model makes, smallest first."""
        if self.resolutions:
            return self.resolutions
        sizes = tuple(
            (r, ASPECT_RATIOS[r].width, ASPECT_RATIOS[r].height) for r in self.aspect_ratios if r in ASPECT_RATIOS
        )
        return (Resolution("1K", sizes, self.output_tokens_per_image, self.price_per_image),)

    @property
    def resolution_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tiers)

    @property
    def default_tier(self) -> Resolution:
        return self.resolution(self.default_resolution) or self.tiers[0]

    def resolution(self, name: str | None) -> Resolution | None:
        """The resolution ``name`` (None: the model's default), or None when the model has no such resolution."""
        if name is None:
            return self.default_tier
        for tier in self.tiers:
            if tier.name == name:
                return tier
        return None

    def pixel_size(self, ratio: str, resolution: str | None = None) -> tuple[int, int] | None:
        tier = self.resolution(resolution)
        return tier.size(ratio) if tier is not None else None

    def delivered_resolution(self, width: int, height: int) -> str:
        """The resolution an image of this size was made at: the tier whose table has it, else the tier nearest
        in pixel count (an upstream that answers a few pixels off is still billed at the tier it made)."""
        for tier in self.tiers:
            if (width, height) in ((w, h) for _, w, h in tier.sizes):
                return tier.name
        area = max(1, width * height)

        def distance(tier: Resolution) -> float:
            _, w, h = tier.sizes[0]
            return abs(math.log(area / max(1, w * h)))

        return min(self.tiers, key=distance).name

    def output_tokens(self, resolution: str | None) -> int:
        tier = self.resolution(resolution)
        return tier.output_tokens if tier is not None else self.output_tokens_per_image

    @property
    def prices(self) -> Prices:
        return Prices(
            self.default_tier.price_per_image,
            self.price_per_million_input_tokens,
            self.price_per_million_output_tokens,
            tuple((t.name, t.price_per_image) for t in self.tiers),
        )

    def supports(self, feature: str) -> bool:
        return feature in self.features


@dataclass(frozen=True)
class ModelCatalog:
    """The models this server offers, looked up by id, alias or ``models/<id>``."""

    models: tuple[ModelSpec, ...]
    _index: dict[str, ModelSpec] = field(init=False, repr=False, compare=False)
    _sized: dict[str, tuple[ModelSpec, str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, ModelSpec] = {}
        sized: dict[str, tuple[ModelSpec, str]] = {}
        for spec in self.models:
            for name in (spec.id, *spec.aliases):
                index.setdefault(name.lower(), spec)
            for name, resolution in spec.resolution_aliases:
                sized.setdefault(name.lower(), (spec, resolution))
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_sized", sized)

    @classmethod
    def of(cls, models: Iterable[ModelSpec]) -> ModelCatalog:
        return cls(tuple(models))

    @staticmethod
    def _key(name: str) -> str:
        key = name.strip()
        if key.startswith("models/"):
            key = key[len("models/") :]
        return key.lower()

    def resolve(self, name: str) -> ModelSpec | None:
        """The model a caller means, tolerating ``models/`` prefixes and any letter case."""
        key = self._key(name)
        found = self._index.get(key)
        if found is None and key in self._sized:
            return self._sized[key][0]
        return found

    def resolution_of(self, name: str) -> str | None:
        """The resolution a model id implies (a resolution-suffixed alias), or None."""
        entry = self._sized.get(self._key(name))
        return entry[1] if entry is not None else None


def estimate_text_tokens(text: str) -> int:
    """Text tokens without the real tokenizer: about four UTF-8 bytes a token, as Gemini's docs estimate."""
    if not text:
        return 0
    return max(1, (len(text.encode("utf-8")) + 3) // 4)


def estimate_usage(
    spec: JobSpec,
    model: ModelSpec,
    *,
    output_images: int = 0,
    output_text: str = "",
    resolution: str | None = None,
) -> Usage:
    """The tokens a request costs by the model's accounting: every text and image of the conversation counts,
    and each output image counts the tokens of the resolution it was made at (default: the one asked)."""
    texts = [turn.text for turn in spec.turns]
    if spec.system_instruction:
        texts.append(spec.system_instruction)
    return Usage(
        input_text_tokens=sum(estimate_text_tokens(t) for t in texts),
        input_image_tokens=len(spec.context_images) * model.input_tokens_per_image,
        output_text_tokens=estimate_text_tokens(output_text),
        output_image_tokens=output_images * model.output_tokens(resolution or spec.image_size),
    )


def __getattr__(name: str) -> ModelSpec:
    # ``NANO_BANANA``: the shipped gemini-2.5-flash-image, read from the catalog data on first use (no import-time IO).
    if name == "NANO_BANANA":
        from imagegate.core.catalog import builtin_model

        return builtin_model("gemini-2.5-flash-image")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
