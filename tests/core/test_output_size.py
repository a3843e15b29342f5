"""The one rule for an image's shape: the ratio asked, else the edited image's nearest, else 1:1; and the check
that a listed ratio has a size at the resolution asked."""

from __future__ import annotations

import io

from PIL import Image

from imagegate.core.capabilities import ModelSpec, Resolution
from imagegate.core.catalog import builtin_model
from imagegate.core.checks import DeploymentCaps, check_job
from imagegate.core.image_header import displayed_dimensions
from imagegate.core.images import ImageInput
from imagegate.core.jobs import JobSpec, Role, Turn
from imagegate.core.output_size import output_ratio, output_size
from imagegate.imaging import encode, probe

NB2 = builtin_model("gemini-3.1-flash-image")


def _png(width: int, height: int) -> ImageInput:
    return ImageInput(encode(Image.new("RGB", (width, height), "red")), "image/png")


def _spec(*turns: Turn, **changes: object) -> JobSpec:
    return JobSpec(model=NB2.id, turns=turns or (Turn(Role.USER, ("a kite",)),), **changes)


def test_the_ratio_asked_wins_and_none_asked_is_square() -> None:
    assert output_ratio(_spec(aspect_ratio="4:1"), NB2) == "4:1"
    assert output_ratio(_spec(), NB2) == "1:1"
    assert output_size(_spec(aspect_ratio="16:9", image_size="2K"), NB2) == NB2.pixel_size("16:9", "2K")


def test_an_edit_keeps_the_shape_of_the_image_it_edits() -> None:
    assert output_ratio(_spec(Turn(Role.USER, ("wider", _png(300, 200)))), NB2) == "3:2"
    assert output_ratio(_spec(Turn(Role.USER, ("tall", _png(40, 320)))), NB2) == "1:8"  # NB2 has 1:8
    conversation = (
        Turn(Role.USER, ("a kite", _png(64, 64))),
        Turn(Role.MODEL, (_png(160, 90),)),
        Turn(Role.USER, ("now blue",)),
    )
    assert output_ratio(_spec(*conversation), NB2) == "16:9"  # the conversation's latest image


def test_an_unreadable_header_is_as_no_image_and_a_model_without_square_takes_its_first_ratio() -> None:
    broken = ImageInput(b"\x89PNG\r\n\x1a\n" + b"\0" * 8, "image/png")
    assert output_ratio(_spec(Turn(Role.USER, ("edit", broken))), NB2) == "1:1"
    wide_only = ModelSpec(id="w", display_name="w", aspect_ratios=("16:9", "21:9"))
    assert output_ratio(_spec(), wide_only) == "16:9"


def test_a_listed_ratio_the_table_lacks_at_a_resolution_is_refused_unless_the_upstream_sizes_it_itself() -> None:
    model = ModelSpec(
        id="m",
        display_name="m",
        aspect_ratios=("1:1", "21:9"),
        resolutions=(
            Resolution("1K", (("1:1", 1024, 1024), ("21:9", 1536, 672)), 1290, 1),
            Resolution("2K", (("1:1", 2048, 2048),), 1290, 2),
        ),
    )
    wide_2k = _spec(aspect_ratio="21:9", image_size="2K")
    found = check_job(wide_2k, model)
    assert [(v.field, v.supported) for v in found] == [("aspect_ratio", ("1:1",))]
    assert "does not make 21:9 images at 2K" in found[0].message
    assert check_job(wide_2k, model, DeploymentCaps(sizes_any_ratio=True)) == []
    assert check_job(_spec(aspect_ratio="21:9", image_size="1K"), model) == []


def test_a_portrait_photo_stored_sideways_is_edited_as_a_portrait() -> None:
    """A phone's JPEG: 300x200 pixels with EXIF orientation 6 (turn 90 degrees) is shown 200x300."""
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    Image.new("RGB", (300, 200), "red").save(out, "JPEG", exif=exif.tobytes())
    photo = ImageInput(out.getvalue(), "image/jpeg")
    assert displayed_dimensions(photo.data, photo.mime_type) == probe(photo.data) == (200, 300)
    assert output_ratio(_spec(Turn(Role.USER, ("edit", photo))), NB2) == "2:3"
    damaged = photo.data.replace(b"Exif\0\0", b"Exif\0\0" + b"\xff" * 2, 1)[:40]
    assert displayed_dimensions(damaged, "image/jpeg") is None  # cut before the frame header: unreadable
