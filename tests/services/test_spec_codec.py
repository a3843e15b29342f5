"""A stored ``JobSpec`` reads back the same, Google's options included, and a spec without them stays small."""

from __future__ import annotations

import dataclasses

from PIL import Image

from imagegate.core.images import ImageInput
from imagegate.core.jobs import GoogleOptions, JobSpec, Modality, PartInfo, Role, SafetyRule, SearchGrounding, Turn
from imagegate.imaging import encode
from imagegate.services.spec_codec import load_spec, save_spec
from imagegate.storage.obstore_store import open_object_store


async def test_google_options_survive_the_round_trip() -> None:
    store = open_object_store("memory://")
    options = GoogleOptions(
        safety=(SafetyRule("HARM_CATEGORY_HARASSMENT", "OFF"),),
        top_p=0.9,
        top_k=8,
        max_output_tokens=64,
        stop_sequences=("END",),
        presence_penalty=0.5,
        frequency_penalty=-1.0,
        media_resolution="MEDIA_RESOLUTION_LOW",
    )
    spec = JobSpec(model="gemini-3-pro-image", turns=(Turn(Role.USER, ("a cat",)),), google=options)
    assert await load_spec(await save_spec(spec, store), store) == spec


async def test_a_spec_without_options_stores_none() -> None:
    store = open_object_store("memory://")
    spec = JobSpec(model="gemini-3-pro-image", turns=(Turn(Role.USER, ("a cat",)),))
    doc = await save_spec(spec, store)
    assert doc["google"] is None and (await load_spec(doc, store)).google == GoogleOptions()


async def test_every_field_of_a_spec_survives_the_round_trip() -> None:
    """Each field differs from its default here, so a new field the codec does not store fails this test."""
    store = open_object_store("memory://")
    png = ImageInput(encode(Image.new("RGB", (4, 4), "red")), "image/png")
    spec = JobSpec(
        model="gemini-3-pro-image",
        turns=(
            Turn(Role.USER, ("a kite", png)),
            Turn(Role.MODEL, ("thinking", png), (PartInfo(thought=True), PartInfo(signature=b"sig"))),
            Turn(Role.USER, ("now blue",)),
        ),
        system_instruction="be brief",
        aspect_ratio="16:9",
        image_size="2K",
        modalities=frozenset({Modality.IMAGE}),
        n=3,
        seed=41,
        seed_drawn=True,
        temperature=0.4,
        dialect="openai",
        output_mime_type="image/jpeg",
        output_quality=80,
        include_thoughts=True,
        thinking_level="high",
        grounding=SearchGrounding(images=True, time_range=("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z")),
        google=GoogleOptions(top_k=4),
        end_user="customer-7",
        negative_prompt="fog",
        steps=12,
        guidance=3.5,
        deployment="gpu-box",
    )
    defaults = JobSpec(model="", turns=())
    unchanged = [f.name for f in dataclasses.fields(JobSpec) if getattr(spec, f.name) == getattr(defaults, f.name)]
    assert unchanged == [], f"set these to a value other than the default: {unchanged}"
    assert await load_spec(await save_spec(spec, store), store) == spec
