"""Settings: defaults, the TOML file, environment variables and arguments, in that order of strength."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagegate.settings import load_settings


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("GEMINI_API_KEY", "IMAGEGATE_CONFIG", "IMAGEGATE_WORKERS", "IMAGEGATE_GEMINI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IMAGEGATE_HOME", str(tmp_path))
    return tmp_path


def test_embedded_defaults(tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.home == tmp_path
    assert settings.effective_database_url == f"sqlite+aiosqlite:///{tmp_path / 'imagegate.db'}"
    assert settings.effective_storage_url == (tmp_path / "files").as_uri()
    assert [(d.name, d.provider) for d in settings.effective_deployments] == [("emulator", "emulator")]
    assert settings.model_specs()[0].id == "gemini-2.5-flash-image"


def test_gemini_key_switches_the_default_to_google(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-test")
    [deployment] = load_settings().effective_deployments
    assert (deployment.provider, deployment.options["api_key"]) == ("gemini", "AIza-test")
    monkeypatch.setenv("GEMINI_API_KEY", "")
    assert load_settings().effective_deployments[0].provider == "emulator"


def test_toml_then_env_then_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "imagegate.toml").write_text("workers = 2\nport = 9000\n[emulator]\nlatency_ms = 5\n")
    assert (load_settings().workers, load_settings().port) == (2, 9000)
    monkeypatch.setenv("IMAGEGATE_WORKERS", "3")
    monkeypatch.setenv("IMAGEGATE_EMULATOR__LATENCY_MS", "7")
    settings = load_settings(port=9100)
    assert (settings.workers, settings.port) == (3, 9100)
    assert settings.effective_deployments[0].options == {"latency_ms": "7"}


def test_explicit_config_file_and_unknown_keys(tmp_path: Path) -> None:
    config = tmp_path / "other.toml"
    config.write_text("workers = 5\n")
    assert load_settings(config).workers == 5
    config.write_text("wrokers = 5\n")
    with pytest.raises(ValueError, match="wrokers"):
        load_settings(config)
    with pytest.raises(FileNotFoundError):
        load_settings(tmp_path / "absent.toml")


def test_models_are_configurable(tmp_path: Path) -> None:
    (tmp_path / "imagegate.toml").write_text(
        '[[models]]\nid = "gemini-2.5-flash-image"\ndisplay_name = "NB"\nmax_input_images = 5\n'
        "input_tokens_per_image = 300\n"
    )
    models = {m.id: m for m in load_settings().model_specs()}
    model = models["gemini-2.5-flash-image"]  # overridden field by field; the shipped ones stay
    assert (model.max_input_images, model.input_tokens_per_image, model.output_tokens_per_image) == (5, 300, 1290)
    assert model.display_name == "NB" and "nano-banana" in model.aliases
    assert {"gemini-3-pro-image", "gemini-3.1-flash-image"} <= set(models)


def test_a_new_model_is_configuration_and_mistakes_are_named(tmp_path: Path) -> None:
    (tmp_path / "imagegate.toml").write_text(
        'builtin_models = false\n[[models]]\nid = "house-model"\ndisplay_name = "H"\ndefault_resolution = "2K"\n'
        '[[models.resolutions]]\nname = "2K"\noutput_tokens = 100\nprice_per_image = "0.5"\n'
        'sizes = { "1:1" = "2048x2048", "16:9" = "2752x1536" }\n'
    )
    [model] = load_settings().model_specs()
    assert model.id == "house-model" and model.aspect_ratios == ("1:1", "16:9") and model.price_per_image == 500_000
    assert model.pixel_size("16:9") == (2752, 1536) and model.resolution_names == ("2K",)
    (tmp_path / "imagegate.toml").write_text('[[models]]\nid = "gemini-3-pro-image"\nmax_inputs = 3\n')
    with pytest.raises(ValueError, match="max_inputs"):
        load_settings()


def test_deployment_prices_override_the_models(tmp_path: Path) -> None:
    (tmp_path / "imagegate.toml").write_text(
        '[[deployments]]\nname = "cheap"\nprovider = "emulator"\n'
        '[deployments.prices."gemini-2.5-flash-image"]\nper_image = "0.02"\n'
    )
    settings = load_settings()
    [model] = [m for m in settings.model_specs() if m.id == "gemini-2.5-flash-image"]
    prices = settings.effective_deployments[0].prices_for(model)
    assert prices is not None and (prices.per_image, prices.per_million_input_tokens) == (20_000, 300_000)
    (tmp_path / "imagegate.toml").write_text(
        '[[deployments]]\nname = "x"\nprovider = "emulator"\n'
        '[deployments.prices."gemini-2.5-flash-image"]\nper_img = "1"\n'
    )
    with pytest.raises(ValueError, match="per_img"):
        load_settings().effective_deployments[0].prices_for(model)


DEPLOYMENTS_TOML = """
[routing]
breaker_failures = 2
breaker_cooldown_s = 5

[[deployments]]
name = "up-a"
model = "gemini-2.5-flash-image"
provider = "gemini"
base_url = "http://127.0.0.1:9001"
api_key = "env:UPSTREAM_A_KEY"
priority = 1

[[deployments]]
name = "up-b"
model = "gemini-2.5-flash-image"
upstream_model = "gemini-2.5-flash-image-preview"
provider = "gemini"
base_url = "http://127.0.0.1:9002"
api_key = "literal-key-b"
priority = 2
weight = 3
max_concurrency = 8
timeout_s = 90
retries = 0
price_per_image = "0.05"
options = { api_version = "v1", max_retries = 0 }
"""


def test_the_flat_deployment_form_from_the_issue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from imagegate.bootstrap import build_router

    (tmp_path / "imagegate.toml").write_text(DEPLOYMENTS_TOML)
    monkeypatch.setenv("UPSTREAM_A_KEY", "key-from-env")
    settings = load_settings()
    a, b = settings.effective_deployments
    assert a.served_models == {"gemini-2.5-flash-image": "gemini-2.5-flash-image"}
    assert a.provider_options() == {"base_url": "http://127.0.0.1:9001", "api_key": "key-from-env"}
    assert b.served_models == {"gemini-2.5-flash-image": "gemini-2.5-flash-image-preview"}
    assert b.provider_options()["api_version"] == "v1"
    router = build_router(settings)
    up_a, up_b = router.deployments
    assert (up_a.priority, up_b.priority, up_b.weight, up_b.max_concurrency, up_b.timeout_s) == (1, 2, 3, 8, 90)
    assert up_b.retries == 0 and up_b.prices["gemini-2.5-flash-image"].per_image == 50_000
    assert "gemini-2.5-flash-image" not in up_a.prices
    assert router.policy.breaker_failures == 2 and router.policy.breaker_cooldown_s == 5
    masked = settings.masked()
    assert masked["deployments"][1]["api_key"] == "***" and "literal-key-b" not in str(masked)


def test_a_missing_environment_variable_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UPSTREAM_A_KEY", raising=False)
    (tmp_path / "imagegate.toml").write_text(DEPLOYMENTS_TOML)
    a = load_settings().effective_deployments[0]
    with pytest.raises(ValueError, match="deployment up-a: api_key names the environment variable UPSTREAM_A_KEY"):
        a.provider_options()


def test_env_references_inside_nested_options_are_resolved() -> None:
    from imagegate.settings import DeploymentSettings

    dep = DeploymentSettings(
        name="v", provider="vertex", options={"credentials": {"json": "env:SA_JSON"}, "scopes": ["env:SCOPE"]}
    )
    resolved = dep.provider_options({"SA_JSON": "{}", "SCOPE": "cloud"})
    assert resolved == {"credentials": {"json": "{}"}, "scopes": ["cloud"]}
    with pytest.raises(ValueError, match="followed by"):
        DeploymentSettings(name="v", provider="x", options={"k": "env:"}).provider_options({})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"model": "m", "models": {"m": "m"}}, "either 'model' or 'models'"),
        ({"upstream_model": "x"}, "'upstream_model' needs 'model'"),
        ({"price_per_image": "0.1"}, "'price_per_image' needs 'model'"),
        ({"weight": 0}, "greater than 0"),
        ({"max_concurrency": 0}, "greater than or equal to 1"),
        ({"batch_share": 0}, "batch_share\n  Input should be greater than 0"),
        ({"batch_share": 1.5}, "batch_share\n  Input should be less than or equal to 1"),
        ({"priorty": 1}, "Extra inputs are not permitted"),
    ],
)
def test_deployment_mistakes_are_explained(fields: dict[str, object], message: str) -> None:
    from pydantic import ValidationError

    from imagegate.settings import DeploymentSettings

    with pytest.raises(ValidationError, match=message):
        DeploymentSettings(name="d", provider="gemini", **fields)  # type: ignore[arg-type]


def test_batch_share_is_per_deployment_or_the_servers(tmp_path: Path) -> None:
    from imagegate.bootstrap import build_router

    (tmp_path / "imagegate.toml").write_text(
        "batch_share = 0.25\n"
        '[[deployments]]\nname = "own"\nprovider = "emulator"\nmax_concurrency = 4\nbatch_share = 1\n'
        '[[deployments]]\nname = "default"\nprovider = "emulator"\nmax_concurrency = 8\n'
    )
    slots = {d.name: d.batch_slots for d in build_router(load_settings()).deployments}
    assert slots == {"own": 4, "default": 2}
    (tmp_path / "imagegate.toml").write_text("batch_share = 2\n")
    with pytest.raises(ValueError, match="batch_share"):
        load_settings()


def test_duplicate_deployment_names_fail_at_start(tmp_path: Path) -> None:
    from imagegate.bootstrap import build_router

    (tmp_path / "imagegate.toml").write_text(
        '[[deployments]]\nname = "x"\nprovider = "emulator"\n[[deployments]]\nname = "x"\nprovider = "emulator"\n'
    )
    with pytest.raises(ValueError, match="unique"):
        build_router(load_settings())


def test_the_database_queue_is_refused_on_sqlite_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match='queue_url = "database" needs PostgreSQL'):
        load_settings(home=tmp_path, queue_url="database")


def test_workers_zero_needs_the_database_queue(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match='workers = 0 needs queue_url = "database"'):
        load_settings(home=tmp_path, workers=0)
    pg = "postgresql://u@db/imagegate"
    settings = load_settings(home=tmp_path, workers=0, queue_url="database", database_url=pg, storage_shared=True)
    assert settings.distributed and settings.workers == 0


def test_an_unknown_queue_url_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEGATE_QUEUE_URL", "kafka://broker")
    with pytest.raises(ValueError, match='queue_url must be "inprocess://" or "database"'):
        load_settings(home=tmp_path)
