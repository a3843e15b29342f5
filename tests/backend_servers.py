"""Private Redis and S3 (moto server mode) instances for tests, each on its own free loopback port.

Tests that break a backend stop and restart *these* processes, never the machine's shared services. A server
can be stopped and started again on the same port, so a client that keeps its URL sees it come back.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, process: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)  # waiting for a process to start listening, not for time to pass
    process.kill()
    raise RuntimeError(f"{what} did not listen on {port}:\n{log.read_text(errors='replace')}")


@dataclass
class _Process:
    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    @property
    def name(self) -> str:
        return type(self).__name__

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.workdir / f"{self.name}.log"
        with log.open("ab") as sink:
            self.process = subprocess.Popen(self.command(), stdout=sink, stderr=subprocess.STDOUT, cwd=self.workdir)
        _wait_listening(self.port, self.process, self.name, log)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.kill()  # a crash, as far as clients can tell
        self.process.wait(timeout=10)


@dataclass
class RedisServer(_Process):
    def command(self) -> list[str]:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (Debian: apt-get install redis-server)")
        return [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@dataclass
class MotoS3Server(_Process):
    """moto's S3 in server mode: keeps its buckets in memory, so a restart starts empty (tests re-create)."""

    access_key_id: str = "testing"
    secret_access_key: str = "testing"
    region: str = "us-east-1"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def create_bucket(self, name: str) -> None:
        import boto3  # comes with moto

        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region,
        )
        client.create_bucket(Bucket=name)

    def list_keys(self, bucket: str) -> list[str]:
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region,
        )
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def env(self) -> dict[str, str]:
        """Settings for an imagegate process using this server."""
        return {
            "IMAGEGATE_S3__ENDPOINT": self.endpoint,
            "IMAGEGATE_S3__REGION": self.region,
            "IMAGEGATE_S3__ACCESS_KEY_ID": self.access_key_id,
            "IMAGEGATE_S3__SECRET_ACCESS_KEY": self.secret_access_key,
        }
