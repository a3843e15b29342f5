"""The connection layer of image fetching: resolve a host once, vet every address, connect to a vetted one.

``VettingBackend`` is an ``httpcore`` network backend, so the check sits exactly where the socket is opened:
httpx never resolves the name itself, the address that was checked is the address that is connected to (a DNS
answer that changes between check and use, "DNS rebinding", cannot slip through), and TLS still sends SNI for and
verifies the certificate of the original hostname, because httpcore hands that name to ``start_tls`` separately.
``PinnedTransport`` is httpx's own transport running on that backend.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence

import httpcore
import httpx

from imagegate.fetching.policy import IPAddress, IPNetwork, parse_ip, refusal_reason

#: Maps a hostname to the IP addresses it stands for; sync or async. Tests inject one instead of DNS.
Resolver = Callable[[str], Awaitable[Sequence[str]] | Sequence[str]]

SocketOption = tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]


class HostRefused(Exception):
    """The host may not be contacted, or could not be resolved; ``str(exc)`` says why, for the caller."""


async def system_resolve(host: str) -> list[str]:
    """The operating system's answer for ``host`` (A and AAAA records, ``/etc/hosts``, numeric forms)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class VettingBackend(httpcore.AsyncNetworkBackend):
    """Resolves each host once, refuses it if any address is disallowed, and connects only to vetted addresses."""

    def __init__(
        self,
        *,
        allowed: tuple[IPNetwork, ...] = (),
        resolver: Resolver | None = None,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._allowed = allowed
        self._resolver: Resolver = resolver or system_resolve
        self._inner = inner or httpcore.AnyIOBackend()

    async def vetted_addresses(self, host: str) -> list[IPAddress]:
        """Every address ``host`` stands for, all of them allowed; raises ``HostRefused`` otherwise."""
        try:
            addresses = [parse_ip(host)]  # an IP literal needs no lookup (and must not get one)
        except ValueError:
            addresses = await self._resolve(host)
        unique = list(dict.fromkeys(addresses))
        if not unique:
            raise HostRefused(f"The image URL's host {host} does not resolve to any address.")
        # Any bad answer refuses the host: connecting to "the good one" would leave the choice to the attacker's
        # DNS, and a name that points inside the network on any answer is not a public image host.
        for ip in unique:
            if (reason := refusal_reason(ip, self._allowed)) is not None:
                is_literal = str(ip) == host
                where = f"is {reason}" if is_literal else f"resolves to {ip}, {reason}"
                raise HostRefused(
                    f"The image URL's host {host} {where}; images are only fetched from public addresses. "
                    "Use a publicly reachable URL or send the image inline."
                )
        return unique

    async def _resolve(self, host: str) -> list[IPAddress]:
        try:
            answer = self._resolver(host)
            texts = await answer if inspect.isawaitable(answer) else answer
        except (OSError, UnicodeError) as exc:  # UnicodeError: a name IDNA cannot encode (an empty or long label)
            raise HostRefused(f"The image URL's host {host} could not be resolved ({exc}).") from exc
        try:
            return [parse_ip(text) for text in texts]
        except ValueError as exc:  # a broken resolver; never guess what it meant
            raise HostRefused(f"The image URL's host {host} resolved to something that is no IP address.") from exc

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await self.vetted_addresses(host)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} took longer than {timeout} s") from None
        failure: Exception = httpcore.ConnectError(f"no address of {host} accepted a connection")
        for ip in addresses:
            try:
                stream = await self._inner.connect_tcp(
                    str(ip), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
                continue
            await self._check_peer(stream, host, ip)
            return stream
        raise failure

    async def _check_peer(self, stream: httpcore.AsyncNetworkStream, host: str, ip: IPAddress) -> None:
        """Belt and braces: the socket really is connected to the vetted address, and that address is allowed."""
        peer = stream.get_extra_info("server_addr")
        if peer is None:  # a backend that cannot tell; the address it was given was vetted
            return
        peer_ip = parse_ip(str(peer[0]))
        if peer_ip != ip or refusal_reason(peer_ip, self._allowed) is not None:
            await stream.aclose()
            raise HostRefused(f"The connection to the image URL's host {host} ended up at {peer_ip}, not {ip}.")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's HTTP/1.1 transport on a ``VettingBackend``; no proxies, no environment, no HTTP/2."""

    def __init__(self, backend: VettingBackend, *, ssl_context: ssl.SSLContext, limits: httpx.Limits) -> None:
        super().__init__(verify=ssl_context, trust_env=False, limits=limits)
        # httpx (through 0.28) has no public way to pass a network backend, so the pool it built is replaced by
        # the same pool on ours. Should a future httpx rename the attribute, fail here rather than fetch unvetted.
        if not isinstance(getattr(self, "_pool", None), httpcore.AsyncConnectionPool):
            raise RuntimeError("this httpx version's transport cannot be pinned; image fetching would be unsafe")
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=backend,
        )
