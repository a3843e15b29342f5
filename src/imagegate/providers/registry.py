"""Providers by name, found through the ``imagegate.providers`` entry-point group (built-ins included).

A third-party package adds a provider by declaring an entry point; nothing here names one.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any, cast

from imagegate.core.ports import ImageProvider, ProviderClass

GROUP = "imagegate.providers"


def available_providers() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=GROUP))


def load_provider_class(name: str) -> ProviderClass:
    matches = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not matches:
        known = ", ".join(available_providers()) or "none"
        raise ValueError(f"unknown provider {name!r}; installed providers: {known}")
    return cast(ProviderClass, matches[0].load())


def build_provider(name: str, options: Mapping[str, Any]) -> ImageProvider:
    return load_provider_class(name).from_options(options)


def is_emulated(name: str) -> bool:
    """Whether the provider registered as ``name`` draws stand-in images instead of calling a model."""
    return bool(getattr(load_provider_class(name), "emulated", False))
