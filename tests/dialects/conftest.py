"""Fixtures every dialect's tests share: the model and small real images."""

from __future__ import annotations

import pytest

from imagegate.core.capabilities import NANO_BANANA, ModelSpec

from .images import encode_image


@pytest.fixture
def model() -> ModelSpec:
    return NANO_BANANA


@pytest.fixture
def png() -> bytes:
    return encode_image("PNG")


@pytest.fixture
def jpeg() -> bytes:
    return encode_image("JPEG", color="blue")
