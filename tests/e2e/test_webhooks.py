"""A task's webhook over real HTTP: a receiver on loopback gets the signed task when the job ends."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from .server import Server

pytestmark = pytest.mark.e2e


class Receiver:
    def __init__(self) -> None:
        self.calls: list[tuple[bytes, dict[str, str]]] = []
        self.failures_left = 1  # the first delivery is answered 503, to see a retry
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.calls.append((body, {k.lower(): v for k, v in self.headers.items()}))
                failing = receiver.failures_left > 0
                receiver.failures_left -= 1
                self.send_response(503 if failing else 204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hooks/imagegate"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.httpd.shutdown()


@pytest.fixture(scope="module")
def hooked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    from .server import start_server

    running = start_server(
        tmp_path_factory.mktemp("hooks"),
        env={
            "IMAGEGATE_FETCH_ALLOW_NETWORKS": '["127.0.0.1/32"]',
            "IMAGEGATE_WEBHOOK_RETRY_DELAYS_S": "[0.2, 0.2]",
            "IMAGEGATE_WEBHOOK_POLL_S": "0.1",
        },
    )
    yield running
    running.stop()


def test_webhook_is_signed_retried_and_carries_the_result(hooked: Server, receiver: Receiver) -> None:
    headers = {"Authorization": f"Bearer {hooked.key}"}
    secret = httpx.get(f"{hooked.url}/v1/webhooks/secret", headers=headers, timeout=30).json()["secret"]
    assert secret.startswith("whsec_")
    task = httpx.post(
        f"{hooked.url}/v1/async/images/generations",
        headers=headers,
        json={"model": "gemini-2.5-flash-image", "prompt": "a bell", "webhook_url": receiver.url},
        timeout=30,
    ).json()
    deadline = time.monotonic() + 30
    while len(receiver.calls) < 2:
        assert time.monotonic() < deadline, f"webhook not retried: {receiver.calls}"
        time.sleep(0.05)  # waiting for the server's deliverer
    (_, first_headers), (body, signed) = receiver.calls[:2]
    assert first_headers["webhook-id"] == signed["webhook-id"] == task["id"]  # one id across retries
    payload = Webhook(secret).verify(body, signed)
    assert payload["type"] == "image.task.succeeded"
    [item] = payload["data"]["result"]["data"]
    assert httpx.get(item["url"], timeout=30).status_code == 200


def test_a_bad_webhook_url_is_a_400(hooked: Server) -> None:
    response = httpx.post(
        f"{hooked.url}/v1/async/images/generations",
        headers={"Authorization": f"Bearer {hooked.key}"},
        json={"prompt": "x", "webhook_url": "ftp://example.com/hook"},
        timeout=30,
    )
    assert response.status_code == 400 and response.json()["error"]["param"] == "webhook_url"
