"""Start a real ``imagegate serve`` process on a loopback port, with its own home, and stop it afterwards."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli(home: Path, *args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "imagegate.cli", *args],
        env={**os.environ, "IMAGEGATE_HOME": str(home), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"imagegate {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


@dataclass
class Server:
    home: Path
    port: int
    key: str
    process: subprocess.Popen[bytes]
    log: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_server(home: Path, *, env: dict[str, str] | None = None, config: Path | None = None) -> Server:
    """A server on a free port, with a fresh non-admin key; raises with its log if it does not come up."""
    home.mkdir(parents=True, exist_ok=True)
    extra = {"IMAGEGATE_GEMINI_API_KEY": "", "GEMINI_API_KEY": "", **(env or {})}
    config_args = ["--config", str(config)] if config else []
    key = json.loads(cli(home, "keys", "create", "--name", "e2e", "--json", *config_args, env=extra))["key"]
    port = free_port()
    log = home / "server.log"
    env_all = {**os.environ, "IMAGEGATE_HOME": str(home), **extra}
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "imagegate.cli", "serve", "--port", str(port), *config_args],
            env=env_all,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    server = Server(home, port, key, process, log, extra)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"imagegate serve exited with {process.returncode}:\n{server.output()}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)  # waiting for a process to start listening, not for time to pass
    server.stop()
    raise RuntimeError(f"imagegate serve did not come up:\n{server.output()}")
