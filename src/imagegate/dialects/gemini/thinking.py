"""Gemini requests in, the thinking and grounding half: ``thinkingConfig`` and ``tools`` as the job asks them.

``includeThoughts``, ``thinkingLevel`` and ``googleSearch`` become the job's; whether the model (and a deployment)
can honour them is ``core.checks``' to say. ``thinkingBudget`` is taken by none of the image models (they take a
level), and the one tool an image model uses is ``googleSearch``: anything else is refused with a 400 naming the
field, never dropped. Pure functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from imagegate.core.capabilities import Feature, ModelSpec
from imagegate.core.jobs import SearchGrounding
from imagegate.dialects.gemini.wire import GenerationConfig
from imagegate.errors import InvalidRequest

_THINKING = "generation_config.thinking_config"
#: ``ThinkingConfig.ThinkingLevel`` of the API; which of them a model honours is the upstream's to say.
THINKING_LEVELS = ("MINIMAL", "LOW", "MEDIUM", "HIGH")
_SEARCH_TYPES = {"web_search": "web", "webSearch": "web", "image_search": "images", "imageSearch": "images"}


def thinks(model: ModelSpec) -> bool:
    """Whether ``model`` thinks (has thought parts and signatures, takes a thinking level)."""
    return model.supports(Feature.THINKING)


def thinking_level(config: GenerationConfig, model: ModelSpec) -> str | None:
    """The thinking level asked for (Google's enum name), or None for the model's own; refuses what cannot be."""
    thinking = config.thinking_config
    if thinking is None:
        return None
    budget = thinking.thinking_budget
    if budget is not None and not (budget == 0 and not thinks(model)):  # 0 asks for no thinking: what it does
        raise InvalidRequest(
            f"thinking_budget is not supported by {model.id}"
            + ("; set thinking_level instead." if thinks(model) else ": this model does not think."),
            field=f"{_THINKING}.thinking_budget",
        )
    level = (thinking.thinking_level or "").strip().upper()
    if not level or level == "THINKING_LEVEL_UNSPECIFIED":
        return None
    if level not in THINKING_LEVELS:
        raise InvalidRequest(
            f"Invalid value at '{_THINKING}.thinking_level' (type.googleapis.com/google.ai.generativelanguage."
            f'v1beta.ThinkingConfig.ThinkingLevel), "{thinking.thinking_level}"',
            field=f"{_THINKING}.thinking_level",
        )
    return level


def grounding(tools: Sequence[Mapping[str, Any]] | None) -> SearchGrounding | None:
    """The Search grounding ``tools`` ask for; any other tool is a 400 (whether the model grounds is for
    ``core.checks`` to say)."""
    found: SearchGrounding | None = None
    for i, tool in enumerate(tools or ()):
        for name, value in tool.items():
            where = f"tools[{i}].{name}"
            if name not in ("googleSearch", "google_search"):
                raise InvalidRequest(
                    f"Tool {name!r} is not supported for image generation: image models take only googleSearch.",
                    field=where,
                )
            found = _google_search(value, where)
    return found


def _google_search(value: object, where: str) -> SearchGrounding:
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise InvalidRequest(f"Invalid value at '{where}': googleSearch must be an object.", field=where)
    web, images, time_range = True, False, None
    for key, option in value.items():
        if key in ("searchTypes", "search_types"):
            web, images = _search_types(option, f"{where}.search_types")
        elif key in ("timeRangeFilter", "time_range_filter"):
            time_range = _time_range(option, f"{where}.time_range_filter")
        elif key in ("excludeDomains", "exclude_domains", "blockingConfidence", "blocking_confidence"):
            raise InvalidRequest(f"{key} parameter is not supported in Gemini API.", field=f"{where}.{key}")
        else:
            raise InvalidRequest(
                f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': Cannot find field.",
                field=f"{where}.{key}",
            )
    return SearchGrounding(web=web, images=images, time_range=time_range)


def _search_types(value: object, where: str) -> tuple[bool, bool]:
    if not isinstance(value, Mapping):
        raise InvalidRequest(f"Invalid value at '{where}': searchTypes must be an object.", field=where)
    chosen = set()
    for key in value:
        if key not in _SEARCH_TYPES:
            raise InvalidRequest(
                f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': Cannot find field.",
                field=f"{where}.{key}",
            )
        chosen.add(_SEARCH_TYPES[key])
    if not chosen:  # Google: "If not set, web search is enabled by default"
        return True, False
    return "web" in chosen, "images" in chosen


def _time_range(value: object, where: str) -> tuple[str, str]:
    start = end = None
    if isinstance(value, Mapping):
        start = value.get("startTime", value.get("start_time"))
        end = value.get("endTime", value.get("end_time"))
    if not (isinstance(start, str) and start and isinstance(end, str) and end):
        raise InvalidRequest("timeRangeFilter needs both startTime and endTime (RFC 3339 timestamps).", field=where)
    return start, end
