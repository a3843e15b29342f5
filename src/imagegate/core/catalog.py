"""The model catalog as data: ``models.toml`` shipped in the package, extended or overridden by the operator's
``[[models]]`` entries (a field given replaces the shipped one; a new id adds a model).

One reader turns a TOML/JSON table into a ``ModelSpec``, so the field list lives in ``ModelSpec`` alone: a table
key that is not a ``ModelSpec`` field is refused by name.
"""

from __future__ import annotations

import dataclasses
import functools
import tomllib
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any

from imagegate.core.capabilities import RESOLUTIONS, ModelSpec, Resolution
from imagegate.core.images import GEMINI_API_RATIOS
from imagegate.core.money import parse_amount

_FIELDS = {f.name for f in dataclasses.fields(ModelSpec)}
_AMOUNTS = {"price_per_image", "price_per_million_input_tokens", "price_per_million_output_tokens"}
_RESOLUTION_KEYS = {"name", "output_tokens", "price_per_image", "sizes"}


class CatalogError(ValueError):
    """A model table that does not describe a model; the message names the model and the key."""


@functools.cache
def builtin_tables() -> tuple[dict[str, Any], ...]:
    """The shipped model tables, as written in ``models.toml``."""
    text = resources.files("imagegate.core").joinpath("models.toml").read_text(encoding="utf-8")
    return tuple(tomllib.loads(text)["models"])


@functools.cache
def builtin_models() -> tuple[ModelSpec, ...]:
    return tuple(model_from_table(t) for t in builtin_tables())


def builtin_model(model_id: str) -> ModelSpec:
    for model in builtin_models():
        if model.id == model_id:
            return model
    raise KeyError(model_id)


def merged_tables(overrides: Iterable[Mapping[str, Any]], *, builtin: bool = True) -> list[dict[str, Any]]:
    """The shipped tables with the operator's merged in by id (their keys win; ``resolutions`` as a whole)."""
    tables = {t["id"]: dict(t) for t in builtin_tables()} if builtin else {}
    for override in overrides:
        if "id" not in override:
            raise CatalogError("a [[models]] entry needs an 'id'")
        base = tables.get(str(override["id"]))
        if base is None:
            tables[str(override["id"])] = dict(override)
            continue
        merged = {**base, **override}
        if "aspect_ratios" in override and "resolutions" not in override:
            # Narrowing the ratios of a shipped model keeps its size table, for those ratios only.
            keep = set(override["aspect_ratios"])
            merged["resolutions"] = [
                {**r, "sizes": {k: v for k, v in r["sizes"].items() if k in keep}} for r in base.get("resolutions", ())
            ]
        tables[str(override["id"])] = merged
    return list(tables.values())


def models_from_tables(tables: Iterable[Mapping[str, Any]]) -> list[ModelSpec]:
    return [model_from_table(t) for t in tables]


def model_from_table(table: Mapping[str, Any]) -> ModelSpec:
    """A ``ModelSpec`` from a table; amounts are decimal strings, sizes ``"WxH"`` by ratio."""
    name = str(table.get("id", "?"))
    unknown = set(table) - _FIELDS
    if unknown:
        raise CatalogError(f"model {name}: unknown fields {sorted(unknown)}; known: {sorted(_FIELDS)}")
    fields: dict[str, Any] = {}
    for key, value in table.items():
        if key in _AMOUNTS:
            fields[key] = _amount(name, key, value)
        elif key in ("aliases", "aspect_ratios"):
            fields[key] = tuple(str(v) for v in value)
        elif key == "features":
            fields[key] = frozenset(str(v) for v in value)
        elif key == "resolution_aliases":
            fields[key] = tuple((str(k), str(v)) for k, v in dict(value).items())
        elif key == "resolutions":
            fields[key] = tuple(sorted((_resolution(name, r) for r in value), key=lambda r: RESOLUTIONS.index(r.name)))
        else:
            fields[key] = value
    try:
        model = ModelSpec(**fields)
    except TypeError as exc:
        raise CatalogError(f"model {name}: {exc}") from exc
    return _consistent(model)


def _consistent(model: ModelSpec) -> ModelSpec:
    if not model.resolutions:
        return model
    names = [r.name for r in model.resolutions]
    if len(set(names)) != len(names):
        raise CatalogError(f"model {model.id}: a resolution is listed twice ({names})")
    if model.default_resolution not in names:
        raise CatalogError(f"model {model.id}: default_resolution {model.default_resolution!r} is not one of {names}")
    default = model.default_tier
    for alias, resolution in model.resolution_aliases:
        if resolution not in names:
            raise CatalogError(f"model {model.id}: resolution alias {alias} names {resolution!r}, not one of {names}")
    # The ratios are the size table's; the per-image figures at the default resolution stand for the model.
    return dataclasses.replace(
        model,
        aspect_ratios=default.ratios,
        price_per_image=default.price_per_image,
        output_tokens_per_image=default.output_tokens,
    )


def _resolution(model: str, table: Mapping[str, Any]) -> Resolution:
    unknown = set(table) - _RESOLUTION_KEYS
    if unknown or "name" not in table:
        raise CatalogError(f"model {model}: a resolution takes {sorted(_RESOLUTION_KEYS)}; got {sorted(table)}")
    name = str(table["name"])
    if name not in RESOLUTIONS:
        raise CatalogError(f"model {model}: resolution {name!r} is not one of {list(RESOLUTIONS)}")
    sizes = []
    for ratio, text in dict(table.get("sizes", {})).items():
        if ratio not in GEMINI_API_RATIOS:
            raise CatalogError(f"model {model}: {name} size for unknown aspect ratio {ratio!r}")
        try:
            width, height = (int(v) for v in str(text).lower().split("x"))
        except ValueError as exc:
            raise CatalogError(f"model {model}: {name} size {ratio} = {text!r} is not WIDTHxHEIGHT") from exc
        sizes.append((ratio, width, height))
    if not sizes:
        raise CatalogError(f"model {model}: resolution {name} lists no sizes")
    return Resolution(
        name=name,
        sizes=tuple(sizes),
        output_tokens=int(table.get("output_tokens", 1290)),
        price_per_image=_amount(model, f"{name}.price_per_image", table.get("price_per_image", "0")),
    )


def _amount(model: str, key: str, value: object) -> int:
    try:
        return parse_amount(str(value))
    except ValueError as exc:
        raise CatalogError(f"model {model}: {key}: {exc}") from exc
