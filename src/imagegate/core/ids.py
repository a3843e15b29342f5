"""Identifiers: a readable prefix, a millisecond timestamp (so ids sort by creation) and randomness."""

from __future__ import annotations

import secrets
import time
import uuid

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def base62(number: int, width: int = 0) -> str:
    digits = []
    while number:
        number, rem = divmod(number, 62)
        digits.append(_ALPHABET[rem])
    return "".join(reversed(digits)).rjust(width, "0")


def random_base62(length: int) -> str:
    """``length`` uniformly random base-62 digits, from one draw of the system's randomness (not one per digit:
    ids are made several times per request)."""
    space = 62**length
    while True:  # rejection sampling keeps every string equally likely; a draw is accepted at least half the time
        number = secrets.randbits(space.bit_length())
        if number < space:
            return base62(number, length)


def new_id(prefix: str) -> str:
    """``job_0h3kQ2x…``: sortable by time, 16 random characters (~95 bits) so unguessable."""
    return f"{prefix}_{base62(time.time_ns() // 1_000_000, 8)}{random_base62(16)}"


def new_uuid() -> str:
    """A UUID version 7 (RFC 9562): a millisecond timestamp then 74 random bits, so these sort by time too.

    For ids a client's schema says are UUIDs (request ids, linkmodel's task ids).
    """
    value = (time.time_ns() // 1_000_000 & (2**48 - 1)) << 80 | secrets.randbits(80)
    value = value & ~(0xF << 76) | (0x7 << 76)  # version 7
    value = value & ~(0x3 << 62) | (0x2 << 62)  # the RFC 4122/9562 variant
    return str(uuid.UUID(int=value))


_ORDER_NAMESPACE = uuid.UUID("5b0f6a4e-3c1d-4f0e-9a57-6c2b8e1d7f30")


def order_id_of(job_id: str) -> str:
    """A job's order id: a stable UUID derived from the job id, so it needs no table of its own."""
    return str(uuid.uuid5(_ORDER_NAMESPACE, job_id))
