"""The built-in emulator provider: stands in for gemini-2.5-flash-image when no upstream is configured.

It answers like the real model (the exact pixel size of each aspect ratio, the same token accounting, the
same refusal shapes and upstream errors) with a deterministic picture that shows what was asked (see
``emulator_canvas``) and never pretends to be the model: the image carries an "EMULATED" mark and the text
part says "imagegate emulator". Latency, random failures and refusals are configurable, and trigger words in a
prompt (``emulate:blocked``, ``emulate:timeout``…) reach every refusal and failure path on demand, so apps and
imagegate's own tests can exercise them for free.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from imagegate import imaging
from imagegate.core.capabilities import Feature, ModelSpec, estimate_text_tokens, estimate_usage
from imagegate.core.checks import DeploymentCaps
from imagegate.core.images import AspectRatio, ImageOutput
from imagegate.core.jobs import FinishReason, Generation, JobSpec, Modality, Thought
from imagegate.core.output_size import output_ratio
from imagegate.errors import (
    InvalidRequest,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from imagegate.providers.base import ProviderOptionsError
from imagegate.providers.emulator_canvas import Sketch, parse_edits, render

FailureKind = Literal["unavailable", "rate_limited", "timeout"]
Sleep = Callable[[float], Awaitable[object]]

#: Prompt words that make the emulator fail on demand, whatever ``failure_rate`` says.
FAILURE_TRIGGERS: dict[str, FailureKind] = {
    "emulate:unavailable": "unavailable",
    "emulate:rate_limited": "rate_limited",
    "emulate:timeout": "timeout",
}

SAFETY_MESSAGE = (
    "Unable to show the generated image. The imagegate emulator simulated a safety block for this prompt. "
    "You will not be charged for blocked images. Try rephrasing the prompt."
)


class EmulatorOptions(BaseModel):
    """A deployment's ``options`` for the emulator. Term lists also accept one comma-separated string."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_ms: float = Field(default=0, ge=0, description="time each call takes before answering")
    latency_jitter_ms: float = Field(default=0, ge=0, description="latency varies by up to this, either way")
    failure_rate: float = Field(default=0, ge=0, le=1, description="share of calls that fail (0..1)")
    failure: FailureKind = Field(default="unavailable", description="how a random failure fails")
    retry_after_s: float = Field(default=30, ge=0, description="retry delay a simulated rate limit reports")
    seed: int = Field(default=0, description="seed of the random failures and jitter, for reproducible runs")
    block_terms: list[str] = Field(default_factory=lambda: ["emulate:blocked"])
    safety_terms: list[str] = Field(default_factory=lambda: ["emulate:image_safety"])
    no_image_terms: list[str] = Field(default_factory=lambda: ["emulate:no_image"])

    @field_validator("block_terms", "safety_terms", "no_image_terms", mode="before")
    @classmethod
    def _split_string(cls, value: object) -> object:
        # Environment variables carry lists as "a,b"; a bare string would otherwise be rejected.
        if isinstance(value, str):
            return value.split(",")
        return value

    @field_validator("block_terms", "safety_terms", "no_image_terms")
    @classmethod
    def _clean_terms(cls, terms: list[str]) -> list[str]:
        cleaned = [t.strip().lower() for t in terms]
        if any(not t for t in cleaned):
            # An empty term is contained in every prompt and would refuse everything.
            raise ValueError("terms must not be empty")
        return cleaned


class EmulatorProvider:
    """An ``ImageProvider`` that draws instead of calling a model. Built from options by ``from_options``."""

    #: Its images are not a model's: the banner says so (see ``providers.registry.is_emulated``).
    emulated = True

    @classmethod
    def capabilities(cls, options: Mapping[str, Any]) -> DeploymentCaps:
        """It thinks (emulated thoughts and signatures) but cannot search: grounding goes to a real upstream,
        or is refused up front with a 400 naming tools."""
        return DeploymentCaps(features=frozenset({Feature.SEED, Feature.THINKING}))

    def __init__(self, options: EmulatorOptions | None = None, *, sleep: Sleep = asyncio.sleep) -> None:
        self.options = options or EmulatorOptions()
        self._sleep = sleep
        # Separate streams, so that turning jitter on does not change which calls fail.
        self._failures = random.Random(self.options.seed)
        self._jitter = random.Random(f"latency:{self.options.seed}")

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        """The provider for a deployment's options; ``ProviderOptionsError`` names every bad option."""
        try:
            parsed = EmulatorOptions.model_validate(dict(options))
        except ValidationError as exc:
            raise ProviderOptionsError(_explain(exc)) from exc
        return cls(parsed)

    async def generate(self, spec: JobSpec, model: ModelSpec, upstream_model: str) -> Generation:
        ratio = self._aspect_ratio(spec, model)  # a bad request is rejected at once, as the real API does
        resolution = spec.image_size or model.default_resolution
        await self._wait()
        prompt = spec.prompt.lower()
        self._maybe_fail(prompt)
        refusal = self._refusal(spec, model, upstream_model, prompt)
        if refusal is not None:
            return refusal

        images = spec.input_images or spec.context_images[-1:]  # a chat edits its most recent image
        edits = parse_edits(spec.prompt)
        if Modality.IMAGE not in spec.modalities:  # responseModalities ["TEXT"]: text only, nothing drawn
            text = describe(spec.prompt, ratio, len(images), edits.describe(), edited=bool(spec.input_images))
            return Generation(
                images=(),
                text=text.replace("imagegate emulator: ", "imagegate emulator (text only, no image drawn): ", 1),
                finish_reason=FinishReason.STOP,
                usage=estimate_usage(spec, model, output_text=text),
                model_version=upstream_model,
            )
        # Draw at most DRAWN_PIXELS and enlarge: the exact size of a 4K (or 12288x1536) image, quickly.
        scale = min(1.0, math.sqrt(DRAWN_PIXELS / (ratio.width * ratio.height)))
        sketch = Sketch(
            width=max(1, round(ratio.width * scale)),
            height=max(1, round(ratio.height * scale)),
            prompt=spec.prompt,
            images=tuple(image.data for image in images),
            edits=edits,
            label=f"{ratio.name} · {resolution} · {ratio.width}x{ratio.height}",
            seed=spec.seed or 0,
        )
        # Decoding and drawing take tens of milliseconds: keep them off the event loop.
        png = await asyncio.to_thread(_draw, sketch, ratio.width, ratio.height)
        output = ImageOutput(data=png, mime_type="image/png", width=ratio.width, height=ratio.height)
        text = ""
        if Modality.TEXT in spec.modalities:
            text = describe(spec.prompt, ratio, len(images), edits.describe(), edited=bool(spec.input_images))
        generation = Generation(
            images=(output,),
            text=text,
            finish_reason=FinishReason.STOP,
            usage=estimate_usage(spec, model, output_images=1, output_text=text, resolution=resolution),
            model_version=upstream_model,
        )
        return (
            thinking(generation, spec, f"a {ratio.name} {resolution} picture")
            if model.supports(Feature.THINKING)
            else generation
        )

    async def aclose(self) -> None:
        return None

    def _aspect_ratio(self, spec: JobSpec, model: ModelSpec) -> AspectRatio:
        """The ratio and Google's exact size for it at the resolution asked (the request was checked at submit;
        the size table is the model's)."""
        tier = model.resolution(spec.image_size) or model.default_tier
        name = output_ratio(spec, model)
        size = tier.size(name)
        if size is None:
            raise InvalidRequest(f"Aspect ratio {name} is not supported for this model", field="aspect_ratio")
        return AspectRatio(name, *size)

    async def _wait(self) -> None:
        delay_ms = self.options.latency_ms
        if self.options.latency_jitter_ms:
            jitter = self.options.latency_jitter_ms
            delay_ms += self._jitter.uniform(-jitter, jitter)
        if delay_ms > 0:
            await self._sleep(delay_ms / 1000)

    def _maybe_fail(self, prompt: str) -> None:
        for trigger, kind in FAILURE_TRIGGERS.items():
            if trigger in prompt:
                raise self._failure(kind, f"the prompt contains {trigger!r}")
        # Draw only when failures are on, so a zero rate leaves the stream (and any later run) untouched.
        if self.options.failure_rate and self._failures.random() < self.options.failure_rate:
            raise self._failure(self.options.failure, f"failure_rate={self.options.failure_rate}")

    def _failure(self, kind: FailureKind, why: str) -> Exception:
        note = f"(simulated by the imagegate emulator: {why})"
        if kind == "rate_limited":
            message = f"Resource has been exhausted (e.g. check quota). {note}"
            return UpstreamRateLimited(message, retry_after_s=self.options.retry_after_s)
        if kind == "timeout":
            return UpstreamTimeout(f"The upstream did not answer in time (DEADLINE_EXCEEDED). {note}")
        return UpstreamUnavailable(f"The model is overloaded. Please try again later. {note}")

    def _refusal(self, spec: JobSpec, model: ModelSpec, version: str, prompt: str) -> Generation | None:
        usage = estimate_usage(spec, model)  # the input was read, so it counts; nothing was produced
        if _contains_any(prompt, self.options.block_terms):
            return Generation(
                images=(),
                finish_reason=None,
                block_reason=FinishReason.PROHIBITED_CONTENT,
                usage=usage,
                model_version=version,
            )
        if _contains_any(prompt, self.options.safety_terms):
            return Generation(
                images=(),
                finish_reason=FinishReason.IMAGE_SAFETY,
                finish_message=SAFETY_MESSAGE,
                usage=usage,
                model_version=version,
            )
        # An empty request is not an image request: the real model answers NO_IMAGE too.
        empty = not prompt.strip() and not spec.input_images
        if empty or _contains_any(prompt, self.options.no_image_terms):
            return Generation(images=(), finish_reason=FinishReason.NO_IMAGE, usage=usage, model_version=version)
        return None


#: The most pixels the emulator draws; larger outputs are drawn at this size and enlarged to the exact size.
DRAWN_PIXELS = 1_100_000  # 1K outputs are drawn as they are; larger ones at about 1K and enlarged


def _draw(sketch: Sketch, width: int, height: int) -> bytes:
    png = render(sketch)
    if (sketch.width, sketch.height) == (width, height):
        return png
    return imaging.enlarge_png(png, width, height)


def describe(prompt: str, ratio: AspectRatio, image_count: int, edits: list[str], *, edited: bool) -> str:
    """The text part: says it is the emulator and what it drew."""
    said = " ".join(prompt.split())
    if len(said) > 80:
        said = said[:79].rstrip() + "…"
    subject = f"for '{said}'" if said else "with no prompt"
    text = f"imagegate emulator: {ratio.name} image ({ratio.width}x{ratio.height}) {subject}"
    if edited:
        text += f", editing {image_count} input image{'s' if image_count > 1 else ''}"
    elif image_count:
        text += ", editing the previous image"
    if edits:
        text += f" ({', '.join(edits)})"
    return text + "."


def _contains_any(prompt: str, terms: list[str]) -> bool:
    return any(term in prompt for term in terms)


def _explain(exc: ValidationError) -> str:
    known = ", ".join(EmulatorOptions.model_fields)
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        name = ".".join(str(part) for part in error["loc"]) or "options"
        if error["type"] == "extra_forbidden":
            problems.append(f"unknown option {name!r} (known options: {known})")
        else:
            problems.append(f"{name}: {error['msg']}")
    return "invalid emulator options: " + "; ".join(problems)


def thinking(generation: Generation, spec: JobSpec, picture: str) -> Generation:
    """A thinking model's answer: a thought (returned when includeThoughts is set, as Google does), its tokens
    counted either way, and a thoughtSignature on the text and the image, as Nano Banana Pro puts them.

    The signatures are opaque bytes that say what they are; the emulator needs nothing back from them.
    """
    said = " ".join(spec.prompt.split())[:80]
    thought = f"**Planning the image**\n\nimagegate emulator: composing {picture} for '{said}'."
    digest = hashlib.sha256(f"{spec.prompt}\0{spec.seed}\0{picture}".encode()).digest()[:16]
    usage = replace(generation.usage, thoughts_tokens=estimate_text_tokens(thought))
    return replace(
        generation,
        thoughts=(Thought(text=thought),) if spec.include_thoughts else (),
        text_signature=b"imagegate-emulator:text:" + digest if generation.text else None,
        image_signatures=tuple(b"imagegate-emulator:image:" + digest for _ in generation.images),
        usage=usage,
    )
