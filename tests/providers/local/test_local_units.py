"""The torch-free parts of the diffusers provider: sizes, options, request planning, start-up checks, lazy imports."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from local_helpers import MODEL, ask, picture

from imagegate.core.capabilities import ModelSpec
from imagegate.core.checks import DeploymentCaps, check_job
from imagegate.core.images import ASPECT_RATIOS, GEMINI_API_RATIOS
from imagegate.errors import InvalidRequest, UpstreamRejected
from imagegate.providers.base import ProviderOptionsError
from imagegate.providers.local.capabilities import Task, output_size, ratio_of
from imagegate.providers.local.families import FAMILIES, family_for_pipeline, family_named
from imagegate.providers.local.options import DiffusersOptions
from imagegate.providers.local.planning import plan
from imagegate.providers.local.provider import DiffusersProvider
from imagegate.providers.registry import available_providers, load_provider_class

RED = (220, 20, 20)


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("ratio", GEMINI_API_RATIOS)
def test_output_sizes_keep_the_ratio_and_area_on_the_family_grid(family: str, ratio: str) -> None:
    caps = family_named(family).capabilities
    width, height = output_size(ratio_of(ratio), caps.native_side, caps)
    rw, rh = ratio_of(ratio)
    assert width % caps.grid == 0 and height % caps.grid == 0
    assert caps.min_side <= min(width, height) and max(width, height) <= caps.max_side
    if max(width, height) < caps.max_side:  # not cut down to fit the longer side: the area is the native one
        assert abs(width * height / caps.native_side**2 - 1) < 0.1
    assert abs(math.log((width / height) / (rw / rh))) < 0.1


def test_qwen_native_sizes_match_the_vendor_table() -> None:
    caps = family_named("qwen_image").capabilities
    assert output_size((1, 1), 1328, caps) == (1328, 1328)
    assert output_size((16, 9), 1328, caps) == (1776, 992)  # the vendor lists 1664x928 (a bit under 1328²)
    assert output_size((9, 16), 1328, caps) == (992, 1776)


def test_a_very_wide_ratio_is_cut_down_to_the_longest_side() -> None:
    caps = family_named("sd_turbo").capabilities
    width, height = output_size((8, 1), 1024, caps)
    assert width == caps.max_side and height == 128


@pytest.mark.parametrize("bad", ["16x9", "0:1", "a:b", "16:", ""])
def test_ratio_names_are_parsed_strictly(bad: str) -> None:
    with pytest.raises(ValueError, match="not an aspect ratio"):
        ratio_of(bad)


def test_families_are_found_by_their_pipeline_classes() -> None:
    assert family_for_pipeline("QwenImageEditPlusPipeline") is FAMILIES["qwen_image"]
    assert family_for_pipeline("Flux2KleinPipeline") is FAMILIES["flux2_klein"]
    assert family_for_pipeline("StableDiffusionXLPipeline") is FAMILIES["sd_turbo"]
    assert family_for_pipeline("FluxPipeline") is None
    assert FAMILIES["qwen_image"].capabilities_for("QwenImagePipeline").tasks == {Task.GENERATE}
    assert FAMILIES["qwen_image"].capabilities_for("QwenImagePipeline").max_input_images == 0
    with pytest.raises(ValueError, match="unknown model family"):
        family_named("dall-e")


# ---- options -----------------------------------------------------------------------------------------------------


def test_the_provider_is_registered_as_diffusers() -> None:
    assert "diffusers" in available_providers()
    assert load_provider_class("diffusers") is DiffusersProvider


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"devices": ["gpu0"]}, "unknown device"),
        ({"devices": []}, "devices"),
        ({"dtype": "int8"}, "dtype"),
        ({"steps": 0}, "steps"),
        ({"queue_size": -1}, "queue_size"),
        ({"family": "dalle"}, "family"),
        ({"cpu_offload": "yes"}, "cpu_offload"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_options_are_refused_at_start_up(options: dict[str, object], problem: str) -> None:
    with pytest.raises(ProviderOptionsError, match=problem):
        DiffusersProvider.from_options(options)


def _checkpoint(tmp_path: Path, pipeline_class: str) -> str:
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": pipeline_class}))
    return str(tmp_path)


def _caps(source: str, **options: object) -> DeploymentCaps | None:
    return DiffusersProvider.model_capabilities(options, source)


def test_a_checkpoint_on_disk_declares_its_family_limits_at_start_up(tmp_path: Path) -> None:
    caps = _caps(_checkpoint(tmp_path, "StableDiffusionPipeline"))
    family = family_named("sd_turbo").capabilities
    assert caps is not None
    assert (caps.max_input_images, caps.needs_image, caps.max_side) == (1, False, family.max_side)
    assert caps.sizes_any_ratio and not caps.temperature and not caps.text_answers
    two = ask("merge", picture((8, 8), RED), picture((8, 8), RED))
    violations = check_job(two, ModelSpec(id="nb", display_name="nb", max_input_images=3), caps)
    assert [(v.field, v.supported) for v in violations] == [("input_images", ("1",))]


def test_a_text_only_qwen_checkpoint_takes_no_image_and_an_edit_only_one_needs_one(tmp_path: Path) -> None:
    caps = _caps(_checkpoint(tmp_path, "QwenImagePipeline"))
    assert caps is not None and caps.max_input_images == 0
    edit = ask("edit", picture((8, 8), RED))
    assert [v.field for v in check_job(edit, MODEL, caps)] == ["input_images"]
    edit_only = family_named("qwen_image").capabilities.restricted(frozenset({Task.EDIT})).deployment_caps()
    refused = check_job(ask("a cat"), MODEL, edit_only)
    assert [v.field for v in refused] == ["input_images"] and "only edits" in refused[0].message
    assert check_job(edit, MODEL, edit_only) == []


def test_start_up_check_refuses_unsupported_checkpoints_and_wrong_families(tmp_path: Path) -> None:
    source = _checkpoint(tmp_path, "FluxPipeline")
    with pytest.raises(ProviderOptionsError, match="cannot run"):
        _caps(source)
    with pytest.raises(ProviderOptionsError, match="qwen_image family serves"):
        _caps(source, family="qwen_image")


def test_start_up_check_refuses_too_many_steps_and_waits_for_unknown_checkpoints(tmp_path: Path) -> None:
    with pytest.raises(ProviderOptionsError, match="at most 50"):
        _caps(_checkpoint(tmp_path, "StableDiffusionPipeline"), steps=60)
    # not on this machine: nothing to read yet, so the first request's load checks the job (``plan``)
    assert _caps("some-org/not-downloaded", steps=60) is None
    assert _caps("some-org/not-downloaded", family="sd_turbo") is not None  # the family option says it


# ---- planning ------------------------------------------------------------------------------------------------


def test_plans_take_defaults_from_the_family_and_sizes_from_the_ratio() -> None:
    caps = family_named("flux2_klein").capabilities
    job = plan(ask("a cat", seed=5, aspect_ratio="16:9"), MODEL, caps, DiffusersOptions(), "bfl/klein")
    assert (job.task, job.steps, job.guidance, job.seed) == (Task.GENERATE, 4, 4.0, 5)
    assert (job.width, job.height) == output_size((16, 9), 1024, caps)
    edit = plan(ask("hat", picture((300, 200), RED)), MODEL, caps, DiffusersOptions(steps=8, resolution=512), "k")
    assert edit.task is Task.EDIT and edit.steps == 8 and len(edit.images) == 1
    assert (edit.width, edit.height) == output_size(ratio_of("3:2"), 512, caps)  # the input's ratio
    assert 0 <= edit.seed < 2**31  # none given: one is drawn


def test_a_resolution_asked_is_googles_size_on_the_family_grid() -> None:
    from imagegate.core.catalog import builtin_model

    pro = builtin_model("gemini-3-pro-image")
    caps = family_named("flux2_klein").capabilities  # grid 16, at most 2048 a side
    job = plan(ask("a cat", aspect_ratio="16:9", image_size="1K"), pro, caps, DiffusersOptions(resolution=512), "k")
    google = pro.pixel_size("16:9", "1K")
    assert google is not None and (job.width, job.height) == (round(google[0] / 16) * 16, round(google[1] / 16) * 16)
    assert job.width % 16 == 0 and job.height % 16 == 0  # the caller's resolution wins over the deployment's
    with pytest.raises(InvalidRequest, match="at most 2048 pixels a side") as caught:
        plan(ask("a cat", aspect_ratio="16:9", image_size="4K"), pro, caps, DiffusersOptions(), "k")
    assert caught.value.field == "image_size"


def test_plans_refuse_what_the_model_cannot_do() -> None:
    caps = family_named("qwen_image").capabilities
    with pytest.raises(InvalidRequest, match="at most 2 input images") as caught:
        plan(
            ask("x", *[picture((8, 8), RED)] * 3),
            ModelSpec(id="m", display_name="m", max_input_images=2),
            caps,
            DiffusersOptions(),
            "q",
        )
    assert caught.value.field == "input_images"
    with pytest.raises(InvalidRequest, match="Aspect ratio 4:1"):
        plan(ask("x", aspect_ratio="4:1"), MODEL, caps, DiffusersOptions(), "q")
    with pytest.raises(UpstreamRejected, match="at most 100"):
        plan(ask("x"), MODEL, caps, DiffusersOptions(steps=150), "q")


def test_every_gemini_ratio_the_model_lists_is_served() -> None:
    caps = family_named("sd_turbo").capabilities
    model = ModelSpec(id="m", display_name="m", aspect_ratios=GEMINI_API_RATIOS)
    for ratio in GEMINI_API_RATIOS:
        job = plan(ask("x", aspect_ratio=ratio), model, caps, DiffusersOptions(), "s")
        rw, rh = ratio_of(ratio)
        assert (job.width > job.height) == (rw > rh) or rw == rh
    assert set(ASPECT_RATIOS) <= set(GEMINI_API_RATIOS)


# ---- an install without the local extra ----------------------------------------------------------------------


def test_the_provider_module_imports_no_ml_library() -> None:
    """The API process loads the provider (and checks a model) without torch, diffusers or transformers."""
    code = (
        "import sys\n"
        "from imagegate.providers.registry import build_provider\n"
        "provider = build_provider('diffusers', {'devices': ['cuda:0'], 'family': 'qwen_image'})\n"
        "provider.model_capabilities({'family': 'qwen_image'}, 'Qwen/Qwen-Image-Edit-2509')\n"
        "names = ('torch', 'diffusers', 'transformers', 'numpy', 'imwatermark')\n"
        "heavy = sorted(m for m in names if m in sys.modules)\n"
        "print(','.join(heavy) or 'none')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "none", result.stderr


async def test_without_the_local_extra_a_request_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    provider = DiffusersProvider(DiffusersOptions())
    with pytest.raises(UpstreamRejected, match=r"needs torch.*pip install 'imagegate\[local\]'"):
        await provider.generate(ask("a fox"), MODEL, "some/checkpoint")


def test_a_request_sets_steps_guidance_and_a_negative_prompt_over_the_deployments() -> None:
    caps = family_named("qwen_image").capabilities
    options = DiffusersOptions(steps=30, guidance_scale=2.0)
    job = plan(ask("a cat", steps=12, guidance=5.5, negative_prompt="blurry"), MODEL, caps, options, "q")
    assert (job.steps, job.guidance, job.negative_prompt) == (12, 5.5, "blurry")
    default = plan(ask("a cat"), MODEL, caps, options, "q")
    assert (default.steps, default.guidance, default.negative_prompt) == (30, 2.0, None)
    # a family that would ignore a knob does not take it: refused, not dropped
    with pytest.raises(InvalidRequest, match="no negative prompt") as caught:
        plan(ask("a cat", negative_prompt="blurry"), MODEL, family_named("sd_turbo").capabilities, options, "s")
    assert caught.value.field == "negative_prompt"
    with pytest.raises(InvalidRequest, match="at most 100 steps"):
        plan(ask("a cat", steps=101), MODEL, caps, DiffusersOptions(), "q")
