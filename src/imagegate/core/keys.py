"""API key format: ``ig_`` + 32 random base62 characters + a 6-character CRC32 checksum.

The checksum lets a typo'd or truncated key be refused without touching the database (and lets secret
scanners recognise leaked keys); only a SHA-256 hash of a key is ever stored.
"""

from __future__ import annotations

import hashlib
import hmac
import zlib

from imagegate.core.ids import base62, random_base62

KEY_PREFIX = "ig_"
_RANDOM_LENGTH = 32
_CHECKSUM_LENGTH = 6
KEY_LENGTH = len(KEY_PREFIX) + _RANDOM_LENGTH + _CHECKSUM_LENGTH


def _checksum(body: str) -> str:
    return base62(zlib.crc32(body.encode("ascii")), _CHECKSUM_LENGTH)


def generate_key() -> str:
    body = random_base62(_RANDOM_LENGTH)
    return f"{KEY_PREFIX}{body}{_checksum(body)}"


def is_well_formed(key: str) -> bool:
    """Prefix, length, alphabet and checksum all right: worth a database lookup."""
    if len(key) != KEY_LENGTH or not key.startswith(KEY_PREFIX):
        return False
    rest = key[len(KEY_PREFIX) :]
    if not (rest.isascii() and rest.isalnum()):
        return False
    return hmac.compare_digest(_checksum(rest[:_RANDOM_LENGTH]), rest[_RANDOM_LENGTH:])


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def display_prefix(key: str) -> str:
    """What lists show of a key: enough to recognise it, far too little to use it."""
    return key[: len(KEY_PREFIX) + 6]
