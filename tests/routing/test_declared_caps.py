"""What each provider declares its upstream can carry, and the router acting on it: a job an upstream cannot
express never reaches its provider; it goes to a deployment that can serve it, or is a 400 naming the field."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from imagegate.bootstrap import build_router
from imagegate.core.catalog import builtin_model
from imagegate.core.checks import DeploymentCaps, check_job
from imagegate.core.images import ImageInput
from imagegate.core.jobs import Modality, Role, SearchGrounding, Turn
from imagegate.errors import InvalidRequest, UpstreamUnavailable
from imagegate.providers.emulator import EmulatorProvider
from imagegate.providers.fal import FalProvider
from imagegate.providers.gemini import GeminiProvider
from imagegate.providers.local.provider import DiffusersProvider
from imagegate.providers.openai_compat import OpenAICompatProvider
from imagegate.providers.replicate import ReplicateProvider
from imagegate.routing.router import Deployment
from imagegate.settings import Settings

from .test_router import PNG, SPEC, Upstream, router

PRO = builtin_model("gemini-3-pro-image")
NB2 = builtin_model("gemini-3.1-flash-image")
NB = builtin_model("gemini-2.5-flash-image")
FOUR = tuple(ImageInput(PNG, "image/png") for _ in range(4))


def _caps(provider: Any, **options: Any) -> DeploymentCaps:
    declare = getattr(provider, "capabilities", None)
    return declare({"api_key": "k", **options}) if declare is not None else DeploymentCaps()


def _spec(**changes: Any) -> Any:
    return replace(SPEC, **{"model": PRO.id, **changes})


EARLIER_IMAGE = (
    Turn(Role.USER, ("a kite", FOUR[0])),
    Turn(Role.MODEL, (FOUR[1],)),
    Turn(Role.USER, ("now make it blue",)),
)
TIME_RANGE = SearchGrounding(time_range=("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"))

#: (provider, options, the job's changes, the model, the JobSpec field refused); None: it is served.
CASES: list[tuple[Any, dict[str, Any], dict[str, Any], Any, str | None]] = [
    (FalProvider, {}, {"include_thoughts": True}, PRO, "include_thoughts"),
    (FalProvider, {}, {"thinking_level": "LOW"}, PRO, "thinking_level"),
    (FalProvider, {}, {"thinking_level": "HIGH"}, PRO, None),
    (FalProvider, {}, {"grounding": SearchGrounding(images=True)}, NB2, "grounding"),
    (FalProvider, {}, {"grounding": SearchGrounding()}, NB2, None),
    (FalProvider, {}, {"modalities": frozenset({Modality.TEXT})}, PRO, "modalities"),
    (FalProvider, {}, {"seed": 7}, PRO, "seed"),
    (FalProvider, {}, {"temperature": 0.5}, PRO, "temperature"),
    (ReplicateProvider, {}, {"temperature": 0.5}, PRO, "temperature"),
    (OpenAICompatProvider, {}, {"temperature": 0.5}, NB, "temperature"),
    (FalProvider, {}, {"turns": (Turn(Role.USER, ("  ", FOUR[0])),)}, PRO, "prompt"),
    (ReplicateProvider, {}, {"include_thoughts": True}, PRO, "include_thoughts"),
    (ReplicateProvider, {}, {"thinking_level": "HIGH"}, PRO, "thinking_level"),
    (ReplicateProvider, {}, {"grounding": TIME_RANGE}, NB2, "grounding"),
    (ReplicateProvider, {}, {"grounding": SearchGrounding(images=True)}, NB2, None),
    (ReplicateProvider, {}, {"image_size": "512"}, NB2, "image_size"),
    (ReplicateProvider, {}, {"image_size": "4K"}, NB2, None),
    (OpenAICompatProvider, {}, {"include_thoughts": True}, PRO, "include_thoughts"),
    (OpenAICompatProvider, {}, {"thinking_level": "HIGH"}, PRO, "thinking_level"),
    (OpenAICompatProvider, {}, {"grounding": SearchGrounding()}, PRO, "grounding"),
    (OpenAICompatProvider, {}, {"seed": 7}, NB, "seed"),
    (OpenAICompatProvider, {}, {"modalities": frozenset({Modality.TEXT})}, NB, "modalities"),
    (
        OpenAICompatProvider,
        {"max_edit_images": 1},
        {"turns": (Turn(Role.USER, ("two", *FOUR[:2])),)},
        NB,
        "input_images",
    ),
    (OpenAICompatProvider, {"max_edit_images": 0}, {"turns": (Turn(Role.USER, ("one", FOUR[0])),)}, NB, "input_images"),
    (OpenAICompatProvider, {}, {"modalities": frozenset({Modality.IMAGE})}, NB, None),
    # no image in, so nothing can stand for what the earlier turns made
    (OpenAICompatProvider, {"max_edit_images": 0}, {"turns": EARLIER_IMAGE}, NB, "input_images"),
    (OpenAICompatProvider, {}, {"turns": EARLIER_IMAGE}, NB, None),
    # a resolution said only as a pixel size needs the ratio; without a field or a size it cannot be said
    (OpenAICompatProvider, {}, {"image_size": "2K"}, PRO, "image_size"),
    (OpenAICompatProvider, {}, {"image_size": "2K", "aspect_ratio": "16:9"}, PRO, None),
    (
        OpenAICompatProvider,
        {"size_style": "aspect_ratio"},
        {"image_size": "2K", "aspect_ratio": "16:9"},
        PRO,
        "image_size",
    ),
    (OpenAICompatProvider, {"size_style": "omit"}, {"image_size": "2K"}, PRO, "image_size"),
    (
        OpenAICompatProvider,
        {"size_style": "aspect_ratio", "resolution_field": "resolution"},
        {"image_size": "2K"},
        PRO,
        None,
    ),
    (DiffusersProvider, {}, {"temperature": 0.5}, NB, "temperature"),
    (DiffusersProvider, {}, {"modalities": frozenset({Modality.TEXT})}, NB, "modalities"),
    (DiffusersProvider, {}, {"seed": 7}, NB, None),
    (EmulatorProvider, {}, {"grounding": SearchGrounding()}, PRO, "grounding"),
    (EmulatorProvider, {}, {"include_thoughts": True, "seed": 7}, PRO, None),
    (GeminiProvider, {}, {"include_thoughts": True, "grounding": TIME_RANGE, "thinking_level": "LOW"}, PRO, None),
    (
        GeminiProvider,
        {},
        {"modalities": frozenset({Modality.TEXT}), "turns": (Turn(Role.USER, (FOUR[0],)),)},
        PRO,
        None,
    ),
]


@pytest.mark.parametrize(
    ("provider", "options", "changes", "model", "field"),
    CASES,
    ids=[f"{c[0].__name__}-{'+'.join(c[2])}-{c[4] or 'served'}" for c in CASES],
)
def test_what_each_upstream_can_carry(
    provider: Any, options: dict[str, Any], changes: dict[str, Any], model: Any, field: str | None
) -> None:
    spec = _spec(**{"model": model.id, **changes})
    assert not check_job(spec, model), "the model itself can do it: only the upstream may refuse"
    deployment = Deployment("d", provider.__name__, None, declared=_caps(provider, **options))
    violations = deployment.refusal_for(spec, model)
    assert [v.field for v in violations[:1]] == ([field] if field else [])


def test_a_deployment_can_only_narrow_what_its_provider_declares() -> None:
    declared = _caps(ReplicateProvider)
    deployment = Deployment(
        "d", "replicate", None, declared=declared, resolutions=frozenset({"512", "2K"}), max_input_images=2
    )
    assert deployment.caps.resolutions == frozenset({"2K"})  # 512 stays out: Replicate cannot make it
    assert deployment.caps.max_input_images == 2 and deployment.caps.text_answers is False


async def test_a_job_one_upstream_cannot_express_goes_to_one_that_can() -> None:
    fal_like, google_like = Upstream(), Upstream()
    r = router(
        Deployment("fal", "fal", fal_like, priority=1, declared=_caps(FalProvider)),  # type: ignore[arg-type]
        Deployment("google", "gemini", google_like, priority=2),  # type: ignore[arg-type]
    )
    thoughts = _spec(include_thoughts=True)
    assert (await r.generate(thoughts, PRO)).deployment == "google" and fal_like.calls == 0
    assert (await r.generate(_spec(), PRO)).deployment == "fal"
    only_fal = router(Deployment("fal", "fal", Upstream(), declared=_caps(FalProvider)))  # type: ignore[arg-type]
    assert [v.field for v in only_fal.violations(thoughts, PRO)] == ["include_thoughts"]
    with pytest.raises(InvalidRequest, match="thoughts"):
        await only_fal.generate(thoughts, PRO)


def test_only_a_deployment_that_sends_the_seed_reports_it() -> None:
    r = router(
        Deployment("fal", "fal", Upstream(), declared=_caps(FalProvider)),  # type: ignore[arg-type]
        Deployment("google", "gemini", Upstream()),  # type: ignore[arg-type]
    )
    assert r.takes_seed("google", PRO) and not r.takes_seed("fal", PRO) and not r.takes_seed("gone", PRO)


def test_a_local_checkpoint_declares_its_family_so_the_router_sends_what_it_cannot_do_elsewhere(
    tmp_path: Path,
) -> None:
    """sd-turbo takes one image and at most 1024 pixels a side (read from the checkpoint at start-up): two
    images, or 2K, go to the Google deployment of the same model; alone, it refuses them with a 400."""
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    settings = Settings(
        home=tmp_path / "home",
        deployments=[
            {"name": "gpu", "provider": "diffusers", "models": {PRO.id: str(tmp_path)}, "priority": 1},
            {"name": "google", "provider": "gemini", "api_key": "k", "priority": 2},
        ],
    )
    r = build_router(settings, run=())
    gpu = next(d for d in r.deployments if d.name == "gpu")
    assert gpu.caps_for(PRO.id).max_input_images == 1 and gpu.caps.max_input_images is None
    two = _spec(turns=(Turn(Role.USER, ("merge", *FOUR[:2])),))
    big = _spec(image_size="2K", aspect_ratio="1:1")
    assert [v.field for v in gpu.refusal_for(two, PRO)] == ["input_images"]
    assert [v.field for v in gpu.refusal_for(big, PRO)] == ["image_size"]
    assert gpu.refusal_for(_spec(image_size="1K", aspect_ratio="1:1"), PRO) == []
    assert r.violations(two, PRO) == [] and r.violations(big, PRO) == []  # google can
    alone = build_router(settings.model_copy(update={"deployments": settings.deployments[:1]}), run=())
    assert [v.field for v in alone.violations(two, PRO)] == ["input_images"]


def test_a_checkpoint_the_provider_cannot_run_stops_start_up_naming_the_deployment(tmp_path: Path) -> None:
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "FluxPipeline"}))
    settings = Settings(
        home=tmp_path / "home",
        deployments=[{"name": "gpu", "provider": "diffusers", "models": {PRO.id: str(tmp_path)}}],
    )
    with pytest.raises(ValueError, match=f"deployment gpu, model {PRO.id}: .*cannot run"):
        build_router(settings, run=())


def test_diffusion_knobs_go_only_to_a_deployment_whose_pipeline_honours_them(tmp_path: Path) -> None:
    """Qwen-Image takes steps, guidance and a negative prompt; SD-Turbo no negative prompt (its CFG is off);
    Google none of them. The router sends each job where it is honoured, or refuses it by field."""
    qwen, sd = tmp_path / "qwen", tmp_path / "sd"
    for folder, pipeline in ((qwen, "QwenImagePipeline"), (sd, "StableDiffusionPipeline")):
        folder.mkdir()
        (folder / "model_index.json").write_text(json.dumps({"_class_name": pipeline}))
    settings = Settings(
        home=tmp_path / "home",
        deployments=[
            {"name": "sd", "provider": "diffusers", "models": {NB.id: str(sd)}, "priority": 1},
            {"name": "qwen", "provider": "diffusers", "models": {NB.id: str(qwen)}, "priority": 2},
            {"name": "google", "provider": "gemini", "api_key": "k", "priority": 3},
        ],
    )
    r = build_router(settings, run=())
    by_name = {d.name: d for d in r.deployments}
    negative = replace(SPEC, model=NB.id, negative_prompt="blurry")
    steps = replace(SPEC, model=NB.id, steps=8, guidance=2.0)
    assert [v.field for v in by_name["sd"].refusal_for(negative, NB)] == ["negative_prompt"]
    assert by_name["qwen"].refusal_for(negative, NB) == [] and by_name["sd"].refusal_for(steps, NB) == []
    assert [v.field for v in by_name["google"].refusal_for(steps, NB)] == ["steps"]
    too_many = replace(steps, steps=51)  # SD-Turbo runs at most 50; Qwen-Image 100
    assert [v.field for v in by_name["sd"].refusal_for(too_many, NB)] == ["steps"]
    assert r.violations(too_many, NB) == []
    assert r.diffusion(NB.id) == (frozenset({"steps", "guidance", "negative_prompt"}), 100)
    google_only = build_router(settings.model_copy(update={"deployments": settings.deployments[2:]}), run=())
    refused = google_only.violations(negative, NB)
    assert [v.field for v in refused] == ["negative_prompt"] and "takes no negative prompt" in refused[0].message
    assert check_job(negative, NB) == []  # the model alone does not say: the deployments do


async def test_a_job_that_names_its_deployment_goes_there_only_and_never_fails_over() -> None:
    first, second = Upstream(), Upstream(UpstreamUnavailable("down"))
    r = router(
        Deployment("first", "gemini", first, priority=1),  # type: ignore[arg-type]
        Deployment("second", "gemini", second, priority=2),  # type: ignore[arg-type]
    )
    pinned = _spec(deployment="second")
    assert r.violations(pinned, PRO) == []
    with pytest.raises(UpstreamUnavailable):  # the other deployment would have answered: not asked
        await r.generate(pinned, PRO)
    assert (first.calls, second.calls) == (0, 1)
    assert (await r.generate(_spec(deployment="first"), PRO)).deployment == "first"
    [unknown] = r.violations(_spec(deployment="elsewhere"), PRO)
    assert (unknown.field, unknown.supported) == ("deployment", ("first", "second"))
    assert "No deployment named elsewhere serves" in unknown.message
