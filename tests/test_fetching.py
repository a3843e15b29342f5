"""Tests for ``imagegate.fetching``: real HTTP(S) servers on loopback, reached through an explicit allow-list.

Each test starts a tiny ``asyncio`` HTTP/1.1 server whose routes say exactly what to send (a PNG with the wrong
type, a redirect, a body that stops half-way and hangs). Hostnames go through an injected resolver, so DNS answers
that point inside the network are testable without DNS; the HTTPS server's certificate comes from a throwaway CA.
Nothing sleeps: a hanging server waits on an event that is never set, and only the fetcher's deadline ends it.
"""

from __future__ import annotations

import asyncio
import base64
import io
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from imagegate.errors import InvalidImage, InvalidRequest
from imagegate.fetching import FetchPolicy, ImageFetcher, Resolver, refusal_reason

LOOPBACK = ("127.0.0.1/32",)
HOST = "images.test"


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (2, 2), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


PNG = _png()


# --- a loopback HTTP/1.1 server -------------------------------------------------------------------------------


@dataclass
class Seen:
    target: str
    headers: dict[str, str]


Handler = Callable[[Seen, asyncio.StreamWriter], Awaitable[None]]


def respond(status: int, body: bytes = b"", headers: Sequence[tuple[str, str]] = (), *, length: bool = True) -> Handler:
    """A route answering ``status`` with ``body``; ``length=False`` sends no Content-Length (ends by closing)."""

    async def handler(seen: Seen, writer: asyncio.StreamWriter) -> None:
        lines = [
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
            "Connection: close",
            *(f"{k}: {v}" for k, v in headers),
        ]
        if length:
            lines.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await writer.drain()

    return handler


def redirect(location: str, status: int = 302) -> Handler:
    return respond(status, headers=[("Location", location)])


def hang(head: bytes = b"") -> Handler:
    """A route that sends ``head`` (maybe nothing) and then never another byte."""

    async def handler(seen: Seen, writer: asyncio.StreamWriter) -> None:
        writer.write(head)
        await writer.drain()
        await asyncio.Event().wait()

    return handler


@dataclass
class LoopbackServer:
    ssl_context: ssl.SSLContext | None = None
    routes: dict[str, Handler] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{'https' if self.ssl_context else 'http'}://{host}:{self.port}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            request_line, *header_lines = head.strip().split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in header_lines)}
            seen = Seen(target=request_line.split(" ")[1], headers=headers)
            self.seen.append(seen)
            await self.routes.get(seen.target, respond(404, b"secret internal detail"))(seen, writer)
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass  # the client went away (as it should, after refusing what it got)
        finally:
            self._tasks.discard(task)
            writer.close()
            with suppress(Exception):
                await writer.wait_closed()


@pytest.fixture
async def server() -> AsyncIterator[LoopbackServer]:
    srv = LoopbackServer()
    await srv.start()
    yield srv
    await srv.stop()


@dataclass
class Certificates:
    chain: Path
    key: Path
    ca_pem: str

    def server_context(self, sni_seen: list[str | None]) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.chain, self.key)
        context.sni_callback = lambda _sock, name, _ctx: sni_seen.append(name)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.ca_pem)


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A throwaway CA and a server certificate for ``images.test`` only (not for 127.0.0.1)."""
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "imagegate test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    (folder / "chain.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + ca_pem)
    (folder / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return Certificates(chain=folder / "chain.pem", key=folder / "key.pem", ca_pem=ca_pem.decode())


@pytest.fixture
async def tls_server(certificates: Certificates) -> AsyncIterator[tuple[LoopbackServer, list[str | None]]]:
    sni_seen: list[str | None] = []
    srv = LoopbackServer(ssl_context=certificates.server_context(sni_seen))
    await srv.start()
    yield srv, sni_seen
    await srv.stop()


FetcherFactory = Callable[..., ImageFetcher]


@pytest.fixture
async def make_fetcher() -> AsyncIterator[FetcherFactory]:
    """Fetchers allowed to reach 127.0.0.1 (unless told otherwise), closed after the test."""
    made: list[ImageFetcher] = []

    def make(
        *, resolver: Resolver | None = None, ssl_context: ssl.SSLContext | None = None, **policy: Any
    ) -> ImageFetcher:
        policy.setdefault("allow_networks", LOOPBACK)
        fetcher = ImageFetcher(FetchPolicy(**policy), resolver=resolver, ssl_context=ssl_context)
        made.append(fetcher)
        return fetcher

    yield make
    for fetcher in made:
        await fetcher.aclose()


def static_resolver(answers: dict[str, list[str]], calls: list[str] | None = None) -> Resolver:
    def resolve(host: str) -> list[str]:
        if calls is not None:
            calls.append(host)
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return answers[host]

    return resolve


# --- fetching what is allowed ---------------------------------------------------------------------------------


async def test_png_is_fetched_and_sniffed_whatever_its_content_type(
    server: LoopbackServer, make_fetcher: FetcherFactory
) -> None:
    server.routes["/img"] = respond(200, PNG, [("Content-Type", "text/html")])

    image = await make_fetcher().fetch(server.url("/img"), field="image")

    assert image.mime_type == "image/png" and image.data == PNG
    (seen,) = server.seen
    assert seen.headers["host"] == f"127.0.0.1:{server.port}"
    assert seen.headers["user-agent"].startswith("imagegate/")
    assert seen.headers["accept-encoding"] == "identity"


async def test_a_hostname_is_resolved_once_and_the_connection_pinned_to_the_vetted_address(
    server: LoopbackServer, make_fetcher: FetcherFactory
) -> None:
    # A rebinding resolver: the first answer is allowed, every later one points into the private network. The fetch
    # must use the answer it checked (one lookup; httpx never resolves "images.test" itself, which would fail).
    calls: list[str] = []
    answers = iter([["127.0.0.1"]])

    def rebinding(host: str) -> list[str]:
        calls.append(host)
        return next(answers, ["10.0.0.1"])

    server.routes["/img"] = respond(200, PNG)
    fetcher = make_fetcher(resolver=rebinding)

    image = await fetcher.fetch(server.url("/img", host=HOST))

    assert image.mime_type == "image/png"
    assert calls == [HOST]
    assert server.seen[0].headers["host"] == f"{HOST}:{server.port}"
    # The next connection resolves again and is checked again.
    with pytest.raises(InvalidRequest, match=r"images\.test resolves to 10\.0\.0\.1, a private address"):
        await fetcher.fetch(server.url("/img", host=HOST))
    assert len(server.seen) == 1


async def test_https_connects_to_the_pinned_address_with_sni_and_certificate_of_the_hostname(
    tls_server: tuple[LoopbackServer, list[str | None]], certificates: Certificates, make_fetcher: FetcherFactory
) -> None:
    server, sni_seen = tls_server
    server.routes["/img"] = respond(200, PNG)
    fetcher = make_fetcher(resolver=static_resolver({HOST: ["127.0.0.1"]}), ssl_context=certificates.client_context())

    image = await fetcher.fetch(server.url("/img", host=HOST))

    assert image.mime_type == "image/png"
    assert sni_seen == [HOST]


async def test_https_certificate_must_match_the_url_host(
    tls_server: tuple[LoopbackServer, list[str | None]], certificates: Certificates, make_fetcher: FetcherFactory
) -> None:
    server, _ = tls_server
    server.routes["/img"] = respond(200, PNG)
    fetcher = make_fetcher(
        resolver=static_resolver({"other.test": ["127.0.0.1"]}), ssl_context=certificates.client_context()
    )

    for url in (server.url("/img"), server.url("/img", host="other.test")):
        with pytest.raises(
            InvalidRequest, match=r"Could not connect to the image URL's host .*CERTIFICATE_VERIFY_FAILED"
        ):
            await fetcher.fetch(url)
    assert server.seen == []


async def test_cookies_a_server_sets_are_never_sent_back(server: LoopbackServer, make_fetcher: FetcherFactory) -> None:
    server.routes["/img"] = respond(200, PNG, [("Set-Cookie", "session=abc; Path=/")])
    fetcher = make_fetcher()

    await fetcher.fetch(server.url("/img"))
    await fetcher.fetch(server.url("/img"))

    assert all("cookie" not in seen.headers for seen in server.seen)


# --- addresses that are refused -------------------------------------------------------------------------------


async def test_loopback_is_refused_without_the_allow_list(server: LoopbackServer, make_fetcher: FetcherFactory) -> None:
    server.routes["/img"] = respond(200, PNG)
    fetcher = make_fetcher(allow_networks=())

    with pytest.raises(InvalidRequest) as caught:
        await fetcher.fetch(server.url("/img"), field="image")

    assert "host 127.0.0.1 is a loopback address" in caught.value.message
    assert "only fetched from public addresses" in caught.value.message
    assert caught.value.field == "image"
    assert server.seen == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://[::1]:{port}/img", "host ::1 is a loopback address"),
        ("http://2130706433:{port}/img", "resolves to 127.0.0.1, a loopback address"),  # the decimal spelling
        ("http://localhost:{port}/img", "a loopback address"),
        ("http://127.0.0.2:{port}/img", "a loopback address"),  # loopback, but outside the allowed /32
        ("http://[::ffff:127.0.0.1]:{port}/img", "an IPv6 form of 127.0.0.1, a loopback address"),
        ("http://0.0.0.0:{port}/img", "an unspecified address"),  # which Linux would connect to loopback
    ],
)
async def test_other_spellings_of_loopback_are_refused(
    server: LoopbackServer, make_fetcher: FetcherFactory, url: str, reason: str
) -> None:
    server.routes["/img"] = respond(200, PNG)
    fetcher = make_fetcher(allow_networks=())

    with pytest.raises(InvalidRequest, match=reason.replace(".", r"\.")):
        await fetcher.fetch(url.format(port=server.port))
    assert server.seen == []


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("10.0.0.1", "a private address"),
        ("172.16.5.4", "a private address"),
        ("192.168.1.10", "a private address"),
        ("fc00::1", "a private address"),
        ("169.254.10.1", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("100.100.100.200", "a cloud metadata address"),
        ("100.64.0.1", "a shared (carrier-grade NAT) address"),
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("::1", "a loopback address"),
        ("127.0.0.1", "a loopback address"),
        ("224.0.0.1", "a multicast address"),
        ("240.0.0.1", "a reserved address"),
        ("::ffff:127.0.0.1", "an IPv6 form of 127.0.0.1, a loopback address"),
        ("::ffff:10.0.0.1", "an IPv6 form of 10.0.0.1, a private address"),
        ("::ffff:169.254.169.254", "a cloud metadata address"),
        ("2002:7f00:1::1", "an IPv6 form of 127.0.0.1, a loopback address"),  # 6to4
        ("64:ff9b::a00:1", "an IPv6 form of 10.0.0.1, a private address"),  # NAT64
    ],
)
async def test_a_hostname_resolving_inside_the_network_is_refused(
    make_fetcher: FetcherFactory, address: str, reason: str
) -> None:
    fetcher = make_fetcher(allow_networks=(), resolver=static_resolver({HOST: [address]}))

    with pytest.raises(InvalidRequest) as caught:
        await fetcher.fetch(f"https://{HOST}/cat.png", field="images[0]")

    shown = ipaddress.ip_address(address)  # as Python spells it: ::ffff:10.0.0.1 is "::ffff:a00:1" on 3.11
    assert caught.value.message.startswith(f"The image URL's host {HOST} resolves to {shown}, {reason};")
    assert caught.value.field == "images[0]"


async def test_one_bad_answer_among_good_ones_refuses_the_host(make_fetcher: FetcherFactory) -> None:
    fetcher = make_fetcher(resolver=static_resolver({HOST: ["93.184.216.34", "10.0.0.1"]}))

    with pytest.raises(InvalidRequest, match=r"resolves to 10\.0\.0\.1, a private address"):
        await fetcher.fetch(f"https://{HOST}/cat.png")


async def test_an_unresolvable_host_is_the_callers_problem(make_fetcher: FetcherFactory) -> None:
    fetcher = make_fetcher(resolver=static_resolver({}))

    with pytest.raises(InvalidRequest, match=r"host nowhere\.test could not be resolved"):
        await fetcher.fetch("https://nowhere.test/cat.png")


@pytest.mark.parametrize("host", ["a" * 64 + ".test", "a..test"])
async def test_a_host_no_resolver_can_look_up_is_the_callers_problem(make_fetcher: FetcherFactory, host: str) -> None:
    with pytest.raises(InvalidRequest, match="could not be resolved"):
        await make_fetcher().fetch(f"https://{host}/cat.png")


async def test_the_allow_list_never_opens_cloud_metadata(make_fetcher: FetcherFactory) -> None:
    fetcher = make_fetcher(allow_networks=("169.254.0.0/16",), resolver=static_resolver({HOST: ["169.254.169.254"]}))

    with pytest.raises(InvalidRequest, match="a cloud metadata address"):
        await fetcher.fetch(f"http://{HOST}/latest/meta-data/")


def test_refusal_reason_honours_the_allow_list() -> None:
    allowed = FetchPolicy(allow_networks=("10.1.0.0/16", "127.0.0.1/32")).networks()

    assert refusal_reason(ipaddress.ip_address("10.1.2.3"), allowed) is None
    assert refusal_reason(ipaddress.ip_address("::ffff:127.0.0.1"), allowed) is None
    assert refusal_reason(ipaddress.ip_address("10.2.0.1"), allowed) == "a private address"
    assert refusal_reason(ipaddress.ip_address("93.184.216.34")) is None
    assert refusal_reason(ipaddress.ip_address("2606:4700::1111")) is None


async def test_a_refused_connection_names_the_host(make_fetcher: FetcherFactory) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago, and now has no listener
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(InvalidRequest, match=r"Could not connect to the image URL's host 127\.0\.0\.1"):
        await make_fetcher().fetch(f"http://127.0.0.1:{port}/img")


# --- redirects -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("http://10.0.0.1/img", r"host 10\.0\.0\.1 is a private address"),
        ("http://169.254.169.254/latest/meta-data/", "a cloud metadata address"),
        ("http://127.0.0.2:{port}/img", "a loopback address"),
        ("http://rebind.test:{port}/img", r"rebind\.test resolves to 10\.0\.0\.1"),
        ("file:///etc/passwd", r"The redirect from 127\.0\.0\.1 uses file:"),
        ("data:image/png;base64,AAAA", r"The redirect from 127\.0\.0\.1 uses data:"),
        ("http://user:secret@127.0.0.1:{port}/img", "contains credentials"),
    ],
)
async def test_a_redirect_is_checked_like_the_first_url(
    server: LoopbackServer, make_fetcher: FetcherFactory, location: str, reason: str
) -> None:
    server.routes["/start"] = redirect(location.format(port=server.port))
    server.routes["/img"] = respond(200, PNG)
    fetcher = make_fetcher(resolver=static_resolver({"rebind.test": ["10.0.0.1"]}))

    with pytest.raises(InvalidRequest, match=reason) as caught:
        await fetcher.fetch(server.url("/start"), field="image")

    assert "secret" not in caught.value.message and caught.value.field == "image"
    assert [seen.target for seen in server.seen] == ["/start"]


async def test_relative_redirects_are_followed_up_to_the_limit(
    server: LoopbackServer, make_fetcher: FetcherFactory
) -> None:
    server.routes["/a/r3"] = redirect("/a/r2", 301)
    server.routes["/a/r2"] = redirect("r1", 307)  # relative to /a/
    server.routes["/a/r1"] = redirect(f"//127.0.0.1:{server.port}/img", 308)  # scheme-relative
    server.routes["/img"] = respond(200, PNG)

    image = await make_fetcher(max_redirects=3).fetch(server.url("/a/r3"))
    assert image.mime_type == "image/png"
    assert [seen.target for seen in server.seen] == ["/a/r3", "/a/r2", "/a/r1", "/img"]

    with pytest.raises(InvalidRequest, match=r"redirects more than 2 times \(the limit"):
        await make_fetcher(max_redirects=2).fetch(server.url("/a/r3"))


async def test_a_redirect_loop_stops_at_the_limit(server: LoopbackServer, make_fetcher: FetcherFactory) -> None:
    server.routes["/loop"] = redirect("/loop")

    with pytest.raises(InvalidRequest, match=r"redirects more than 3 times .*from 127\.0\.0\.1"):
        await make_fetcher().fetch(server.url("/loop"))
    assert len(server.seen) == 4


async def test_a_redirect_without_location_is_refused(server: LoopbackServer, make_fetcher: FetcherFactory) -> None:
    server.routes["/img"] = respond(302)

    with pytest.raises(InvalidRequest, match=r"HTTP 302\) has no Location"):
        await make_fetcher().fetch(server.url("/img"))


async def test_https_to_http_downgrade_is_refused(
    tls_server: tuple[LoopbackServer, list[str | None]],
    server: LoopbackServer,
    certificates: Certificates,
    make_fetcher: FetcherFactory,
) -> None:
    secure, _ = tls_server
    secure.routes["/img"] = redirect(server.url("/img", host=HOST))
    server.routes["/img"] = respond(200, PNG)
    fetcher = make_fetcher(resolver=static_resolver({HOST: ["127.0.0.1"]}), ssl_context=certificates.client_context())

    with pytest.raises(InvalidRequest, match=r"redirect from images\.test downgrades https to plain http"):
        await fetcher.fetch(secure.url("/img", host=HOST))
    assert server.seen == []


# --- limits and answers that are not images ---------------------------------------------------------------------


async def test_a_declared_length_over_the_limit_is_refused_before_the_body(
    server: LoopbackServer, make_fetcher: FetcherFactory
) -> None:
    # Headers only, then silence: a fetcher that waited for the body would hit the deadline instead.
    server.routes["/big"] = hang(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n")

    with pytest.raises(InvalidImage, match=r"image at 127\.0\.0\.1 is 4\.9 KiB, over the 100 bytes limit"):
        await make_fetcher(max_bytes=100, timeout_s=5).fetch(server.url("/big"))


async def test_a_streamed_body_over_the_limit_is_cut_off(server: LoopbackServer, make_fetcher: FetcherFactory) -> None:
    # No Content-Length; 200 bytes and then silence. The fetcher must stop at byte 101, not wait for the end.
    server.routes["/big"] = hang(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + PNG[:8] + b"\0" * 192)

    with pytest.raises(InvalidImage, match=r"image at 127\.0\.0\.1 is larger than the 100 bytes limit"):
        await make_fetcher(max_bytes=100, timeout_s=5).fetch(server.url("/big"))


async def test_a_server_that_never_answers_hits_the_total_deadline(
    server: LoopbackServer, make_fetcher: FetcherFactory
) -> None:
    server.routes["/slow"] = hang()

    with pytest.raises(InvalidRequest, match=r"from 127\.0\.0\.1 took longer than the 0\.3 s limit") as caught:
        await make_fetcher(timeout_s=0.3).fetch(server.url("/slow"), field="image")
    assert caught.value.field == "image"


async def test_a_body_that_stalls_half_way_hits_the_total_deadline(
    server: LoopbackServer, make_fetcher: FetcherFactory
) -> None:
    server.routes["/trickle"] = hang(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + PNG[:10])

    with pytest.raises(InvalidRequest, match=r"took longer than the 0\.3 s limit"):
        await make_fetcher(timeout_s=0.3).fetch(server.url("/trickle"))


async def test_the_deadline_covers_the_redirects_too(server: LoopbackServer, make_fetcher: FetcherFactory) -> None:
    server.routes["/start"] = redirect("/slow")
    server.routes["/slow"] = hang()

    with pytest.raises(InvalidRequest, match=r"took longer than the 0\.3 s limit"):
        await make_fetcher(timeout_s=0.3).fetch(server.url("/start"))


async def test_bytes_that_are_no_image_are_invalid_image(server: LoopbackServer, make_fetcher: FetcherFactory) -> None:
    server.routes["/img"] = respond(200, b"<html>hello from inside</html>", [("Content-Type", "image/png")])

    with pytest.raises(InvalidImage, match="not a supported image") as caught:
        await make_fetcher().fetch(server.url("/img"), field="image")
    assert "hello" not in caught.value.message and caught.value.field == "image"


@pytest.mark.parametrize(
    ("status", "words"), [(404, "HTTP 404 (Not Found)"), (500, "HTTP 500 (Internal Server Error)")]
)
async def test_an_error_status_is_reported_without_the_body(
    server: LoopbackServer, make_fetcher: FetcherFactory, status: int, words: str
) -> None:
    server.routes["/img"] = respond(status, b"secret internal detail")

    with pytest.raises(InvalidRequest) as caught:
        await make_fetcher().fetch(server.url("/img"))

    assert not isinstance(caught.value, InvalidImage)
    assert f"host 127.0.0.1 answered {words}" in caught.value.message
    assert "secret" not in caught.value.message


async def test_a_compressed_body_is_refused(server: LoopbackServer, make_fetcher: FetcherFactory) -> None:
    server.routes["/img"] = respond(200, PNG, [("Content-Encoding", "gzip")])

    with pytest.raises(InvalidRequest, match="gzip-encoded"):
        await make_fetcher().fetch(server.url("/img"))


async def test_garbage_instead_of_http_is_reported_without_quoting_it(
    server: LoopbackServer, make_fetcher: FetcherFactory
) -> None:
    async def garbage(seen: Seen, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SECRET-BANNER not http at all\r\n\r\n")
        await writer.drain()

    server.routes["/img"] = garbage

    with pytest.raises(InvalidRequest, match="did not answer with valid HTTP") as caught:
        await make_fetcher().fetch(server.url("/img"))
    assert "SECRET" not in caught.value.message


# --- data: URLs -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "data:image/png;base64," + base64.b64encode(PNG).decode(),
        "data:image/png;base64," + base64.encodebytes(PNG).decode(),  # line breaks
        "data:text/plain;base64," + base64.urlsafe_b64encode(PNG).decode().rstrip("="),  # lies, URL-safe, unpadded
        "DATA:image/png;name=cat.png;BASE64," + base64.b64encode(PNG).decode().replace("+", "%2B"),
    ],
)
async def test_a_data_url_is_decoded_locally(make_fetcher: FetcherFactory, url: str) -> None:
    image = await make_fetcher(allow_networks=()).fetch(url)

    assert image.mime_type == "image/png" and image.data == PNG


@pytest.mark.parametrize(
    ("url", "error", "words"),
    [
        ("data:image/png;base64,***not base64***", InvalidImage, "not valid base64"),
        ("data:image/png;base64," + base64.b64encode(b"plain text").decode(), InvalidImage, "not a supported image"),
        ("data:image/png;base64,", InvalidImage, "empty"),
        ("data:image/png;base64," + "A" * 200, InvalidImage, r"is 150 bytes, over the 100 bytes limit"),
        ("data:image/png;base64," + "*" * 200, InvalidImage, "over the 100 bytes limit"),  # size before decoding
        ("data:image/png,%89PNG", InvalidRequest, "Only base64 data URLs"),
        ("data:image/png;base64", InvalidRequest, "no ','"),
    ],
)
async def test_a_bad_data_url_is_refused(
    make_fetcher: FetcherFactory, url: str, error: type[InvalidRequest], words: str
) -> None:
    with pytest.raises(error, match=words) as caught:
        await make_fetcher(max_bytes=100).fetch(url, field="image")
    assert caught.value.field == "image"


# --- URLs that are refused before any connection --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://example.com/cat.png", "uses ftp:, but only https or http URLs can be fetched"),
        ("file:///etc/passwd", "uses file:"),
        ("javascript:alert(1)", "uses javascript:"),
        ("gopher://example.com/", "uses gopher:"),
        ("example.com/cat.png", "has no scheme"),
        ("", "has no scheme"),
        ("http://user:hunter2@example.com/cat.png", "contains credentials"),
        ("https://user@example.com/cat.png", "contains credentials"),
        ("http:///cat.png", "has no host"),
        ("https://example.com/" + "a" * 9000, "longer than 8192 characters"),
    ],
)
async def test_urls_that_are_never_fetched(make_fetcher: FetcherFactory, url: str, words: str) -> None:
    def no_dns(host: str) -> list[str]:
        raise AssertionError(f"{host} must not even be resolved")

    with pytest.raises(InvalidRequest, match=words) as caught:
        await make_fetcher(resolver=no_dns).fetch(url, field="image")

    assert caught.value.field == "image"
    assert not isinstance(caught.value, InvalidImage)
    assert "hunter2" not in caught.value.message


async def test_an_https_only_policy_refuses_http(make_fetcher: FetcherFactory) -> None:
    with pytest.raises(InvalidRequest, match="uses http:, but only https URLs can be fetched"):
        await make_fetcher(allowed_schemes=("https",)).fetch("http://example.com/cat.png")


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"allow_networks": ("127.0.0.1/33",)}, "allow_networks entry '127.0.0.1/33'"),
        ({"allowed_schemes": ("ftp",)}, "allowed_schemes"),
        ({"max_bytes": 0}, "positive"),
        ({"timeout_s": 0}, "positive"),
    ],
)
def test_a_wrong_policy_fails_when_it_is_made(options: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        FetchPolicy(**options)
