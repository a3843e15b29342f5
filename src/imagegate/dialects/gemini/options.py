"""Gemini requests in, Google's own knobs: ``safetySettings``, the sampling fields of ``generationConfig`` and
its ``mediaResolution``.

They become the job's ``GoogleOptions`` and travel to a ``generateContent`` upstream as sent. The ranges are the
ones Google documents (``topP`` in [0, 1], ``topK`` and ``maxOutputTokens`` positive, at most five stop
sequences); a value outside them is a 400 naming the field, as Google answers, before any upstream is asked.
Google documents no range for the two penalties, so they travel as sent and Google's own answer decides.
The enums of a safety setting are checked by the wire types already. Pure functions.
"""

from __future__ import annotations

from collections.abc import Sequence

from imagegate.core.jobs import GoogleOptions, SafetyRule
from imagegate.dialects.gemini.wire import GenerationConfig, SafetySetting
from imagegate.errors import InvalidRequest

_CONFIG = "generation_config"
MAX_STOP_SEQUENCES = 5


def google_options(config: GenerationConfig, safety_settings: Sequence[SafetySetting] | None) -> GoogleOptions:
    """The ``GoogleOptions`` a request sets, range-checked as Google checks them."""
    top_p = config.top_p
    if top_p is not None and not 0 <= top_p <= 1:
        _refuse("top_p", f"top_p must be in the range [0.0, 1.0], got {top_p:g}")
    top_k = config.top_k
    if top_k is not None and top_k < 1:
        _refuse("top_k", f"top_k must be a positive integer, got {top_k}")
    max_tokens = config.max_output_tokens
    if max_tokens is not None and max_tokens < 1:
        _refuse("max_output_tokens", f"max_output_tokens must be positive, got {max_tokens}")
    stops = tuple(config.stop_sequences or ())
    if len(stops) > MAX_STOP_SEQUENCES:
        _refuse("stop_sequences", f"at most {MAX_STOP_SEQUENCES} stop sequences are allowed, got {len(stops)}")
    resolution = config.media_resolution
    return GoogleOptions(
        safety=_safety(safety_settings or ()),
        top_p=top_p,
        top_k=top_k,
        max_output_tokens=max_tokens,
        stop_sequences=stops,
        presence_penalty=config.presence_penalty,
        frequency_penalty=config.frequency_penalty,
        media_resolution=None if resolution in (None, "MEDIA_RESOLUTION_UNSPECIFIED") else resolution,
    )


def _safety(settings: Sequence[SafetySetting]) -> tuple[SafetyRule, ...]:
    rules: list[SafetyRule] = []
    seen: set[str] = set()
    for i, setting in enumerate(settings):
        where = f"safety_settings[{i}]"
        if not setting.category or setting.category == "HARM_CATEGORY_UNSPECIFIED":
            raise InvalidRequest(
                f"* GenerateContentRequest.{where}.category: category is required.", field=f"{where}.category"
            )
        if not setting.threshold:
            raise InvalidRequest(
                f"* GenerateContentRequest.{where}.threshold: threshold is required.", field=f"{where}.threshold"
            )
        if setting.category in seen:  # two thresholds for one category: which one Google applies is undefined
            raise InvalidRequest(
                f"* GenerateContentRequest.safety_settings: category {setting.category} is set more than once.",
                field=f"{where}.category",
            )
        seen.add(setting.category)
        rules.append(SafetyRule(setting.category, setting.threshold))
    return tuple(rules)


def _refuse(name: str, why: str) -> None:
    field = f"{_CONFIG}.{name}"
    raise InvalidRequest(f"* GenerateContentRequest.{field}: {why}.", field=field)
