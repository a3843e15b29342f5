"""What an image fetch may do: the limits of ``FetchPolicy`` and the rules for which IP addresses may be contacted.

An address is refused when it is anything but an ordinary public unicast address (loopback, private, link-local,
unspecified, multicast, reserved, carrier-grade NAT, or an IPv6 form that embeds such an IPv4 address), unless the
operator put it in ``allow_networks``. Cloud metadata endpoints are refused even then: an allow-list written for a
private network (say a VPN in 100.64.0.0/10) should not quietly open the credentials service that shares its range.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_MIB = 1024 * 1024
_SUPPORTED_SCHEMES = frozenset({"http", "https"})

#: Instance metadata services (AWS/GCP/Azure/OpenStack, AWS over IPv6, Alibaba) hand out credentials to anyone
#: on the machine who asks; they are the prize of most SSRF attacks.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
_SHARED_ADDRESS_SPACE = ipaddress.IPv4Network("100.64.0.0/10")  # RFC 6598, often a cloud's or a VPN's inside
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # a NAT64 gateway would forward these to the embedded IPv4


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """Limits for fetching one caller-supplied image URL; ``timeout_s`` covers the whole fetch, redirects included.

    ``allow_networks`` are CIDRs the operator trusts although they are not public (``"127.0.0.1/32"`` for a
    sidecar, or a test server); everything else non-public is refused.
    """

    max_bytes: int = 20 * _MIB
    max_redirects: int = 3
    timeout_s: float = 15.0
    connect_timeout_s: float = 5.0
    allow_networks: tuple[str, ...] = ()
    allowed_schemes: tuple[str, ...] = ("https", "http")

    def __post_init__(self) -> None:
        if self.max_bytes <= 0 or self.max_redirects < 0 or self.timeout_s <= 0 or self.connect_timeout_s <= 0:
            raise ValueError("fetch limits must be positive (max_redirects may be 0)")
        if not self.allowed_schemes or not set(self.allowed_schemes) <= _SUPPORTED_SCHEMES:
            raise ValueError(f"allowed_schemes must be a non-empty subset of {sorted(_SUPPORTED_SCHEMES)}")
        self.networks()  # a typo in a CIDR should fail at start-up, not on the first fetch

    def networks(self) -> tuple[IPNetwork, ...]:
        """``allow_networks`` parsed; raises ``ValueError`` naming an entry that is no CIDR."""
        parsed: list[IPNetwork] = []
        for cidr in self.allow_networks:
            try:
                parsed.append(ipaddress.ip_network(cidr, strict=False))
            except ValueError as exc:
                raise ValueError(f"allow_networks entry {cidr!r} is not an IP network: {exc}") from exc
        return tuple(parsed)


def parse_ip(text: str) -> IPAddress:
    """An address as a resolver or socket reports it; an IPv6 zone (``fe80::1%eth0``) is dropped."""
    return ipaddress.ip_address(text.split("%", 1)[0])


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, NAT64), which is what it would reach."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _kind(ip: IPAddress) -> str | None:
    """Why ``ip`` is no ordinary public address, in words, or None when it is one."""
    if ip in METADATA_ADDRESSES:
        return "cloud metadata"
    checks = (
        (ip.is_unspecified, "unspecified"),
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (ip in _SHARED_ADDRESS_SPACE, "shared (carrier-grade NAT)"),
        (ip.is_reserved, "reserved"),
        (ip.is_private, "private"),
        (not ip.is_global, "non-public"),
    )
    return next((kind for flagged, kind in checks if flagged), None)


def refusal_reason(ip: IPAddress, allowed: tuple[IPNetwork, ...] = ()) -> str | None:
    """Why ``ip`` must not be contacted (e.g. ``"a loopback address"``), or None when it may be."""
    embedded = _embedded_ipv4(ip)
    if ip in METADATA_ADDRESSES or (embedded is not None and embedded in METADATA_ADDRESSES):
        return "a cloud metadata address"
    if any(ip in net or (embedded is not None and embedded in net) for net in allowed):
        return None
    if embedded is not None and (kind := _kind(embedded)) is not None:
        return f"an IPv6 form of {embedded}, {_with_article(kind)} address"
    kind = _kind(ip)
    return None if kind is None else f"{_with_article(kind)} address"


def _with_article(word: str) -> str:
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"
