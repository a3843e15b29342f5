"""Signed, expiring URLs for stored images.

A URL carries its expiry and an HMAC over (file id, expiry), so serving a file needs no API key and no
lookup beyond the file itself, and a URL cannot be stretched in time or pointed at another file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass, field
from datetime import datetime

from imagegate.errors import PermissionDenied


@dataclass(frozen=True)
class FileUrlSigner:
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    ttl_s: float = 3600.0

    def _signature(self, file_id: str, expires: int) -> str:
        digest = hmac.new(self.secret, f"{file_id}:{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def path(self, file_id: str, now: datetime) -> str:
        """``/v1/files/<id>?expires=<unix>&signature=<hmac>``, valid for ``ttl_s`` from ``now``."""
        expires = math.ceil(now.timestamp() + self.ttl_s)
        return f"/v1/files/{file_id}?expires={expires}&signature={self._signature(file_id, expires)}"

    def verify(self, file_id: str, expires: str | None, signature: str | None, now: datetime) -> int:
        """The expiry (unix seconds) of a valid, unexpired link; raises ``PermissionDenied`` otherwise."""
        # str.isdigit() is true for "²" and other digits int() refuses; a signature is URL-safe base64 (ASCII)
        if not expires or not signature or not _is_unix_time(expires):
            raise PermissionDenied("This file URL is not signed; use the URL the API returned.")
        expected = self._signature(file_id, int(expires))
        if not signature.isascii() or not hmac.compare_digest(expected, signature):
            raise PermissionDenied("This file URL's signature is not valid.")
        if int(expires) < now.timestamp():
            raise PermissionDenied("This file URL has expired; ask the API for the result again for a fresh link.")
        return int(expires)


def _is_unix_time(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 12
