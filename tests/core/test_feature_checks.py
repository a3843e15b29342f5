"""Thinking and Search grounding in the one capability check: by the model's features and a deployment's."""

from __future__ import annotations

from imagegate.core.capabilities import Feature
from imagegate.core.catalog import builtin_model
from imagegate.core.checks import DeploymentCaps, check_job
from imagegate.core.jobs import JobSpec, Role, SearchGrounding, Turn

PRO = builtin_model("gemini-3-pro-image")
FLASH = builtin_model("gemini-2.5-flash-image")
NO_THINKING = DeploymentCaps(features=frozenset({Feature.SEED, Feature.GROUNDING}))
NO_GROUNDING = DeploymentCaps(features=frozenset({Feature.SEED, Feature.THINKING}))


def job(**changes: object) -> JobSpec:
    return JobSpec(model=PRO.id, turns=(Turn(Role.USER, ("a chart",)),), **changes)  # type: ignore[arg-type]


def fields(spec: JobSpec, model=PRO, caps: DeploymentCaps | None = None) -> list[str]:  # type: ignore[no-untyped-def]
    return [v.field for v in check_job(spec, model, caps or DeploymentCaps())]


def test_pro_takes_grounding_thinking_and_thoughts() -> None:
    assert fields(job(grounding=SearchGrounding(), thinking_level="HIGH", include_thoughts=True)) == []


def test_a_model_without_the_features() -> None:
    assert fields(job(grounding=SearchGrounding()), FLASH) == ["grounding"]
    assert fields(job(thinking_level="HIGH"), FLASH) == ["thinking_level"]
    assert fields(job(include_thoughts=True), FLASH) == []  # no thoughts to return: nothing is lost


def test_a_deployment_without_the_features() -> None:
    assert fields(job(grounding=SearchGrounding()), caps=NO_GROUNDING) == ["grounding"]
    assert fields(job(thinking_level="HIGH", include_thoughts=True), caps=NO_THINKING) == [
        "thinking_level",
        "include_thoughts",
    ]
    message = check_job(job(grounding=SearchGrounding()), PRO, NO_GROUNDING)[0].message
    assert "here" in message and "gemini-3-pro-image" in message
