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
    [model] = load_settings().model_specs()
    assert (model.max_input_images, model.input_tokens_per_image, model.output_tokens_per_image) == (5, 300, 1290)


def test_deployment_prices_override_the_models(tmp_path: Path) -> None:
    (tmp_path / "imagegate.toml").write_text(
        '[[deployments]]\nname = "cheap"\nprovider = "emulator"\n'
        '[deployments.prices."gemini-2.5-flash-image"]\nper_image = "0.02"\n'
    )
    settings = load_settings()
    [model] = settings.model_specs()
    prices = settings.effective_deployments[0].prices_for(model)
    assert prices is not None and (prices.per_image, prices.per_million_input_tokens) == (20_000, 300_000)
    (tmp_path / "imagegate.toml").write_text(
        '[[deployments]]\nname = "x"\nprovider = "emulator"\n'
        '[deployments.prices."gemini-2.5-flash-image"]\nper_img = "1"\n'
    )
    with pytest.raises(ValueError, match="per_img"):
        load_settings().effective_deployments[0].prices_for(model)
