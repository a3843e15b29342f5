"""The shipped catalog against Google's published tables, and the one capability check."""

from __future__ import annotations

import pytest

from imagegate.core.capabilities import ModelCatalog
from imagegate.core.catalog import CatalogError, builtin_models, model_from_table
from imagegate.core.checks import DeploymentCaps, check_job
from imagegate.core.images import ImageInput
from imagegate.core.jobs import JobSpec, Role, Turn

CATALOG = ModelCatalog.of(builtin_models())
PRO = CATALOG.resolve("gemini-3-pro-image")
NB2 = CATALOG.resolve("gemini-3.1-flash-image")
NB = CATALOG.resolve("gemini-2.5-flash-image")
PNG = ImageInput(b"\x89PNG\r\n\x1a\n" + b"0" * 16, "image/png")


def ask(*, images: int = 0, **fields: object) -> JobSpec:
    parts = ("a cat", *([PNG] * images))
    return JobSpec(model="m", turns=(Turn(Role.USER, parts),), **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "model_id", "resolution"),
    [
        ("gemini-3-pro-image-preview", "gemini-3-pro-image", None),
        ("models/nano-banana-pro", "gemini-3-pro-image", None),
        ("google/gemini-3-pro-image-preview", "gemini-3-pro-image", None),
        ("gemini-3.1-flash-image-preview", "gemini-3.1-flash-image", None),
        ("nano-banana-2", "gemini-3.1-flash-image", None),
        ("google/nano-banana-2", "gemini-3.1-flash-image", None),
        ("gemini-3.1-flash-image-preview-2k", "gemini-3.1-flash-image", "2K"),
        ("Gemini-3.1-Flash-Image-Preview-4K", "gemini-3.1-flash-image", "4K"),
        ("nano-banana", "gemini-2.5-flash-image", None),
        ("google/gemini-2.5-flash-image-edit", "gemini-2.5-flash-image", None),
    ],
)
def test_every_name_the_seeds_and_google_use_resolves(name: str, model_id: str, resolution: str | None) -> None:
    model = CATALOG.resolve(name)
    assert model is not None and model.id == model_id
    assert CATALOG.resolution_of(name) == resolution


def test_the_size_tables_are_googles() -> None:
    assert PRO is not None and NB2 is not None and NB is not None
    # Spot checks against https://ai.google.dev/gemini-api/docs/image-generation (aspect ratios and image size).
    assert PRO.pixel_size("16:9", "1K") == (1376, 768) and PRO.pixel_size("21:9", "4K") == (6336, 2688)
    assert PRO.pixel_size("2:3", "2K") == (1696, 2528) and PRO.pixel_size("1:4") is None
    assert NB2.pixel_size("1:8", "4K") == (1536, 12288) and NB2.pixel_size("21:9", "512") == (792, 168)
    assert NB2.pixel_size("9:16", "512") == (384, 688) and NB2.pixel_size("8:1", "2K") == (6144, 768)
    assert NB.pixel_size("16:9") == (1344, 768) and NB.resolution_names == ("1K",)
    assert "9:21" not in NB2.aspect_ratios and len(NB2.aspect_ratios) == 14 and len(PRO.aspect_ratios) == 10
    for model in (PRO, NB2):  # 2K and 4K are exactly twice and four times 1K in every ratio
        one_k = dict((r, (w, h)) for r, w, h in model.resolution("1K").sizes)  # type: ignore[union-attr]
        for tier, factor in (("2K", 2), ("4K", 4)):
            assert {r: (w // factor, h // factor) for r, w, h in model.resolution(tier).sizes} == one_k  # type: ignore[union-attr]


def test_tokens_and_prices_per_resolution() -> None:
    assert PRO is not None and NB2 is not None and NB is not None
    assert [PRO.output_tokens(r) for r in ("1K", "2K", "4K")] == [1120, 1120, 2000]
    assert [NB2.output_tokens(r) for r in ("512", "1K", "2K", "4K")] == [747, 1120, 1680, 2520]
    assert (PRO.input_tokens_per_image, NB.input_tokens_per_image, NB.output_tokens(None)) == (560, 258, 1290)
    assert [PRO.prices.image_price(r) for r in ("1K", "2K", "4K")] == [134_000, 134_000, 240_000]
    assert [NB2.prices.image_price(r) for r in ("512", "1K", "2K", "4K")] == [45_000, 67_000, 101_000, 151_000]
    assert NB.prices.per_image == 39_000
    assert PRO.delivered_resolution(5504, 3072) == "4K" and PRO.delivered_resolution(2050, 2046) == "2K"


def test_the_check_names_the_field_and_what_is_supported() -> None:
    assert PRO is not None and NB2 is not None and NB is not None
    assert check_job(ask(images=14, image_size="4K", aspect_ratio="21:9"), PRO) == []
    [too_many] = check_job(ask(images=15), PRO)
    assert too_many.field == "input_images" and "at most 14 input images" in too_many.message
    [too_many] = check_job(ask(images=4), NB)
    assert "at most 3" in too_many.message
    [size] = check_job(ask(image_size="512"), PRO)
    assert size.field == "image_size" and size.supported == ("1K", "2K", "4K")
    [ratio] = check_job(ask(aspect_ratio="1:8"), PRO)
    assert ratio.field == "aspect_ratio" and "21:9" in ratio.explained
    assert ratio.message == "Aspect ratio 1:8 is not supported for this model"  # Google's sentence
    assert check_job(ask(aspect_ratio="1:8", image_size="512"), NB2) == []
    [hot] = check_job(ask(temperature=2.5), PRO)
    assert hot.field == "temperature"
    # A deployment without 4K: the model has it, the deployment does not.
    no_4k = DeploymentCaps(resolutions=frozenset({"1K", "2K"}), max_input_images=5)
    found = check_job(ask(images=6, image_size="4K"), PRO, no_4k)
    assert [v.field for v in found] == ["image_size", "input_images"] and "not served at 4K" in found[0].message


def test_a_bad_table_is_named() -> None:
    with pytest.raises(CatalogError, match="resolution '3K'"):
        model_from_table({"id": "x", "display_name": "x", "resolutions": [{"name": "3K", "sizes": {"1:1": "1x1"}}]})
    with pytest.raises(CatalogError, match="default_resolution"):
        model_from_table(
            {"id": "x", "display_name": "x", "resolutions": [{"name": "2K", "sizes": {"1:1": "2048x2048"}}]}
        )
