"""The ``imagegate`` command as a user runs it: keys, generate in-process, settings, db upgrade."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from imagegate.cli.main import app


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("IMAGEGATE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("IMAGEGATE_CONFIG", raising=False)
    return tmp_path / "home"


runner = CliRunner()


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_keys_create_list_revoke(home: Path) -> None:
    created = json.loads(invoke("keys", "create", "--name", "alice", "--credits", "12.5", "--json"))
    assert set(created) == {"id", "key", "name", "credits"}
    assert created["name"] == "alice" and created["credits"] == "12.5" and created["key"].startswith("ig_")
    listed = json.loads(invoke("keys", "list", "--json"))
    assert [(k["id"], k["credits"], k["admin"], k["revoked"]) for k in listed] == [(created["id"], "12.5", False, None)]
    assert created["key"] not in invoke("keys", "list")  # only a prefix is ever shown again
    invoke("keys", "revoke", created["id"])
    assert json.loads(invoke("keys", "list", "--json"))[0]["revoked"] is not None
    again = runner.invoke(app, ["keys", "revoke", created["id"]])
    assert again.exit_code == 2 and "no active key" in again.output  # an unknown id is a usage error


def test_admin_flag_and_bad_credits(home: Path) -> None:
    admin = json.loads(invoke("keys", "create", "--name", "root", "--admin", "--json"))
    assert json.loads(invoke("keys", "list", "--json"))[0]["admin"] is True
    assert admin["credits"] == "unlimited"  # no --credits: an unmetered key
    bad = runner.invoke(app, ["keys", "create", "--name", "x", "--credits", "-3"])
    assert bad.exit_code == 2 and "non-negative" in bad.output


def test_credits_add_meters_a_key(home: Path) -> None:
    created = json.loads(invoke("keys", "create", "--name", "bob", "--json"))
    assert created["credits"] == "unlimited"
    assert invoke("credits", "add", created["id"], "2.50").strip() == f"{created['id']}: balance 2.5"
    assert json.loads(invoke("keys", "list", "--json"))[0]["credits"] == "2.5"
    unknown = runner.invoke(app, ["credits", "add", "key_nope", "1"])
    assert unknown.exit_code == 2 and "no key" in unknown.output
    negative = runner.invoke(app, ["credits", "add", created["id"], "-1"])
    assert negative.exit_code == 2


def test_generate_in_process_writes_images(home: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.png"
    Image.new("RGB", (900, 1600), (200, 30, 30)).save(source)
    out = tmp_path / "out"
    written = invoke("generate", "make it blue", "-i", str(source), "-n", "2", "-o", str(out)).split()
    assert len(written) == 2
    for path in written:
        with Image.open(path) as image:
            assert image.size == (768, 1344)  # 9:16 from the input


def test_generate_single_file_and_aspect_ratio(home: Path, tmp_path: Path) -> None:
    target = tmp_path / "wide.png"
    assert invoke("generate", "a road", "--aspect-ratio", "21:9", "-o", str(target)).split() == [str(target)]
    with Image.open(target) as image:
        assert image.size == (1536, 672)


def test_generate_reports_refusals_and_errors(home: Path, tmp_path: Path) -> None:
    refused = runner.invoke(app, ["generate", "emulate:image_safety", "-o", str(tmp_path)])
    assert refused.exit_code == 3 and "IMAGE_SAFETY" in refused.output
    failed = runner.invoke(app, ["generate", "a cat", "--aspect-ratio", "7:3", "-o", str(tmp_path)])
    assert failed.exit_code == 2 and "7:3" in failed.output
    missing = runner.invoke(app, ["generate", "x", "-i", str(tmp_path / "nope.png")])
    assert missing.exit_code == 2 and "cannot read" in missing.output


def test_settings_are_printed_with_secrets_masked(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home.mkdir(parents=True)
    (home / "imagegate.toml").write_text(
        'database_url = "postgresql://app:hunter2@db/imagegate"\n'
        '[[deployments]]\nname = "g"\nprovider = "gemini"\n[deployments.options]\napi_key = "AIzaSECRET"\n'
    )
    monkeypatch.setenv("IMAGEGATE_WORKERS", "7")
    shown = invoke("settings")
    settings = json.loads(shown)
    assert settings["workers"] == 7
    assert "hunter2" not in shown and "AIzaSECRET" not in shown
    assert settings["deployments"][0]["options"]["api_key"] == "***"


def test_db_upgrade_creates_the_database(home: Path) -> None:
    assert "up to date" in invoke("db", "upgrade")
    assert (home / "imagegate.db").exists()


def test_missing_config_file_is_a_clear_error(home: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["settings", "--config", str(tmp_path / "absent.toml")])
    assert result.exit_code == 2 and "config file not found" in result.output


def test_providers_lists_the_configured_deployments(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "imagegate.toml").write_text(
        '[[deployments]]\nname = "main"\nprovider = "emulator"\nmodel = "gemini-2.5-flash-image"\n'
        "priority = 1\nmax_concurrency = 4\n"
        '[[deployments]]\nname = "spare"\nprovider = "emulator"\npriority = 2\nweight = 0.5\n'
    )
    rows = json.loads(invoke("providers", "--json"))
    assert [(r["name"], r["models"], r["priority"], r["weight"], r["concurrency_limit"]) for r in rows] == [
        ("main", ["gemini-2.5-flash-image"], 1, 1.0, 4),
        ("spare", ["*"], 2, 0.5, None),
    ]
    table = runner.invoke(app, ["providers"]).output  # the table on stdout, the installed providers on stderr
    assert "main" in table and "spare" in table and "installed providers: " in table and "gemini" in table


def test_providers_live_needs_a_key_and_explains_an_unreachable_server(home: Path) -> None:
    result = runner.invoke(app, ["providers", "--server", "http://127.0.0.1:9"], env={"IMAGEGATE_API_KEY": ""})
    assert result.exit_code == 2 and "--key" in result.output
    result = runner.invoke(app, ["providers", "--server", "http://127.0.0.1:9", "--key", "ig_x"])
    assert result.exit_code == 4 and "cannot reach http://127.0.0.1:9" in result.output
