"""A stored ``JobSpec`` reads back the same, Google's options included, and a spec without them stays small."""

from __future__ import annotations

from imagegate.core.jobs import GoogleOptions, JobSpec, Role, SafetyRule, Turn
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
