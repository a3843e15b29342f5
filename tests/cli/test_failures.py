"""Every foreseeable failure of the CLI ends with one ``error:`` line (cause and what to do), no traceback, and
its documented exit code; output paths and the closing line (time, cost, provider) of a run that worked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from imagegate.cli import tables
from imagegate.cli.failures import (
    EXIT_AUTH,
    EXIT_CREDIT,
    EXIT_FAILED,
    EXIT_REFUSED,
    EXIT_UPSTREAM,
    EXIT_USAGE,
)
from imagegate.cli.main import app

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("IMAGEGATE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("IMAGEGATE_CONFIG", raising=False)
    monkeypatch.delenv("IMAGEGATE_API_KEY", raising=False)
    return tmp_path / "home"


def failed(args: list[str], code: int, *words: str, env: dict[str, str] | None = None) -> str:
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_setup_failures_name_their_cause_and_the_fix(home: Path, tmp_path: Path) -> None:
    failed(["keys", "list"], EXIT_FAILED, "IMAGEGATE_HOME is set but empty", env={"IMAGEGATE_HOME": ""})
    failed(
        ["keys", "list"],
        EXIT_FAILED,
        "database could not be",
        "IMAGEGATE_DATABASE_URL",
        env={"IMAGEGATE_DATABASE_URL": "postgresql://postgres@127.0.0.1:9/none"},
    )
    config = tmp_path / "g.toml"
    config.write_text('[[deployments]]\nname = "g"\nprovider = "gemini"\n[deployments.options]\napi_key = "env:NOPE"\n')
    failed(["generate", "a fox", "-c", str(config)], EXIT_FAILED, "NOPE", "not set", "imagegate.toml")


def test_the_command_line_is_checked_before_any_work(home: Path, tmp_path: Path) -> None:
    failed(["generate", "  "], EXIT_USAGE, "prompt is empty")
    failed(["generate", "a fox", "-i", str(tmp_path)], EXIT_USAGE, "folder")
    (tmp_path / "notes.txt").write_text("not an image")
    failed(["generate", "a fox", "-i", str(tmp_path / "notes.txt")], EXIT_USAGE, "notes.txt")
    failed(["generate", "a fox", "-o", str(tmp_path / "notes.txt")], EXIT_USAGE, "it is a file")
    failed(["generate", "a fox", "--server", "http://127.0.0.1:9"], EXIT_USAGE, "needs an API key")
    failed(["generate", "a fox", "--server", "localhost:8080", "--key", "k"], EXIT_USAGE, "not a URL")
    failed(["generate", "a fox", "-a", "7:3"], EXIT_USAGE, "7:3")
    failed(["generate", "a fox", "-m", "no-such-model"], EXIT_USAGE, "no-such-model")
    assert not (home / "imagegate.db").exists() or "local-cli" not in runner.invoke(app, ["keys", "list"]).output


def test_unreachable_server_is_an_upstream_failure(home: Path) -> None:
    failed(["generate", "a fox", "--server", "http://127.0.0.1:9", "--key", "k"], EXIT_UPSTREAM, "cannot reach")
    failed(["providers", "--server", "http://127.0.0.1:9", "--key", "k"], EXIT_UPSTREAM, "cannot reach")


def test_n_images_to_one_name_are_numbered_and_the_run_closes_with_cost_and_provider(
    home: Path, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["generate", "a fox", "-n", "2", "-o", str(tmp_path / "x.png")])
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == [str(tmp_path / "x-1.png"), str(tmp_path / "x-2.png")]
    closing = result.stderr.strip().splitlines()[-1]
    assert closing.startswith("2 images in ") and "cost 0.078002" in closing
    assert "provider emulator (emulated)" in closing
    assert "created the unmetered key local-cli" in result.stderr  # said once, not silently
    again = runner.invoke(app, ["generate", "a fox", "-o", str(tmp_path / "one.jpg")])
    assert "local-cli" not in again.stderr.splitlines()[0]
    with Image.open(tmp_path / "one.jpg") as image:
        assert image.format == "JPEG"  # the suffix chooses the format


def test_a_refusal_has_its_own_exit_code_and_costs_nothing(home: Path, tmp_path: Path) -> None:
    line = failed(["generate", "emulate:image_safety", "-o", str(tmp_path / "r.png")], EXIT_REFUSED, "IMAGE_SAFETY")
    assert "cost 0" in line and not (tmp_path / "r.png").exists()


def test_usage_names_keys_and_tables_fit_80_columns(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert runner.invoke(app, ["generate", "a fox"]).exit_code == 0
    rows = json.loads(runner.invoke(app, ["usage", "--json"]).stdout)
    assert rows[0]["key_name"] == "local-cli"
    assert "local-cli" in runner.invoke(app, ["usage"]).stdout.splitlines()[1].split("\t")
    monkeypatch.setattr(tables, "stdout_is_terminal", lambda: True)
    monkeypatch.setenv("COLUMNS", "200")
    for args in (["usage"], ["keys", "list"], ["providers"]):
        shown = runner.invoke(app, args).stdout
        assert shown and max(len(line) for line in shown.splitlines()) <= 80, shown


def test_remote_auth_and_credit_failures(home: Path, tmp_path: Path) -> None:
    from e2e.server import cli, start_server

    server = start_server(tmp_path / "server")
    try:
        poor = json.loads(cli(server.home, "keys", "create", "--name", "poor", "--credits", "0.01", "--json"))["key"]
        failed(["generate", "a fox", "--server", server.url, "--key", "ig_wrong"], EXIT_AUTH, "401")
        failed(["generate", "a fox", "--server", server.url, "--key", poor], EXIT_CREDIT, "402", "credit")
        failed(["generate", "a fox", "-a", "7:3", "--server", server.url, "--key", server.key], EXIT_USAGE, "7:3")
        result = runner.invoke(
            app,
            ["generate", "a fox", "-n", "2", "-o", str(tmp_path / "r.webp"), "--server", server.url],
            env={"IMAGEGATE_API_KEY": server.key},
        )
        assert result.exit_code == 0, result.output
        assert result.stdout.split() == [str(tmp_path / "r-1.webp"), str(tmp_path / "r-2.webp")]
        with Image.open(tmp_path / "r-1.webp") as image:
            assert image.format == "WEBP"
        assert "cost 0.078002" in result.stderr and "provider emulator" in result.stderr
        refused = failed(
            ["generate", "emulate:image_safety", "--server", server.url, "--key", server.key], EXIT_REFUSED
        )
        assert "nothing was charged" in refused
    finally:
        server.stop()
