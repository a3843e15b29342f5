"""What each model can do: ids and aliases, aspect ratios, input-image limit and token accounting."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from imagegate.core.images import ASPECT_RATIOS
from imagegate.core.jobs import JobSpec, Usage


@dataclass(frozen=True, slots=True)
class Prices:
    """What delivered work costs, in micro-units: per image, and per million input / output (text) tokens."""

    per_image: int
    per_million_input_tokens: int
    per_million_output_tokens: int


@dataclass(frozen=True, slots=True)
class ModelSpec:
    id: str
    display_name: str
    description: str = ""
    version: str = "001"
    aliases: tuple[str, ...] = ()
    aspect_ratios: tuple[str, ...] = tuple(ASPECT_RATIOS)
    max_input_images: int = 3
    output_tokens_per_image: int = 1290
    input_tokens_per_image: int = 258
    input_token_limit: int = 32768
    output_token_limit: int = 32768
    temperature: float = 1.0
    top_p: float = 0.95
    top_k: int = 64
    max_temperature: float = 1.0
    price_per_image: int = 39_000  # micro-units per delivered image (Google's list price: $0.039)
    price_per_million_input_tokens: int = 300_000  # micro-units ($0.30 per million input tokens)
    price_per_million_output_tokens: int = 0  # text output; images are priced per image above

    @property
    def prices(self) -> Prices:
        return Prices(self.price_per_image, self.price_per_million_input_tokens, self.price_per_million_output_tokens)


NANO_BANANA = ModelSpec(
    id="gemini-2.5-flash-image",
    display_name="Nano Banana",
    description="Gemini 2.5 Flash Image: image generation and editing",
    version="2.0",
    aliases=(
        "gemini-2.5-flash-image-preview",
        "nano-banana",
        "google/gemini-2.5-flash-image",
        "google/nano-banana",
        # AIML names its edit endpoint as a model of its own; for us it is the same model with images.
        "google/gemini-2.5-flash-image-edit",
        "google/nano-banana-edit",
    ),
)


@dataclass(frozen=True)
class ModelCatalog:
    """The models this server offers, looked up by id, alias or ``models/<id>``."""

    models: tuple[ModelSpec, ...]
    _index: dict[str, ModelSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, ModelSpec] = {}
        for spec in self.models:
            for name in (spec.id, *spec.aliases):
                index.setdefault(name.lower(), spec)
        object.__setattr__(self, "_index", index)

    @classmethod
    def of(cls, models: Iterable[ModelSpec]) -> ModelCatalog:
        return cls(tuple(models))

    def resolve(self, name: str) -> ModelSpec | None:
        """The model a caller means, tolerating ``models/`` prefixes and any letter case."""
        key = name.strip()
        if key.startswith("models/"):
            key = key[len("models/") :]
        return self._index.get(key.lower())


def estimate_text_tokens(text: str) -> int:
    """Text tokens without the real tokenizer: about four UTF-8 bytes a token, as Gemini's docs estimate."""
    if not text:
        return 0
    return max(1, (len(text.encode("utf-8")) + 3) // 4)


def estimate_usage(spec: JobSpec, model: ModelSpec, *, output_images: int = 0, output_text: str = "") -> Usage:
    """The tokens a request costs by the model's accounting: every text and image of the conversation counts."""
    texts = [turn.text for turn in spec.turns]
    if spec.system_instruction:
        texts.append(spec.system_instruction)
    return Usage(
        input_text_tokens=sum(estimate_text_tokens(t) for t in texts),
        input_image_tokens=len(spec.context_images) * model.input_tokens_per_image,
        output_text_tokens=estimate_text_tokens(output_text),
        output_image_tokens=output_images * model.output_tokens_per_image,
    )
