"""imagegate's own file links used as inputs: a signed ``/v1/files/{id}`` URL this server handed out is read
from the store directly, never fetched over the network.

A link is ours when its path ends in ``/v1/files/<id>`` and its signature verifies with this server's secret;
the host is not compared, because behind proxies and in local setups it says little. The signature and expiry
are checked as the file route checks them, and the file must belong to the caller's key (an admin may use any):
a link someone shared is a way to view an image, not to spend it as another key's input.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from imagegate.core.images import ImageInput
from imagegate.core.ports import ApiKey
from imagegate.errors import InvalidRequest, NotFound, PermissionDenied
from imagegate.services.context import Services
from imagegate.services.files import read_file

_FILE_PATH = re.compile(r"/v1/files/([A-Za-z0-9_-]{1,128})/?$")


def own_file_id(url: str) -> tuple[str, str | None, str | None] | None:
    """``(file id, expires, signature)`` when ``url`` looks like one of this server's file links, else None."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https"):
        return None
    match = _FILE_PATH.search(parts.path)
    if match is None:
        return None
    query = parse_qs(parts.query)
    if "signature" not in query:
        return None  # some other service's /v1/files/ path: fetched like any URL
    expires = query.get("expires", [None])[0]
    return match.group(1), expires, query["signature"][0]


async def read_own_image(svc: Services, principal: ApiKey, url: str, *, field: str | None) -> ImageInput | None:
    """The image behind one of our own signed links, checked for the caller; None when ``url`` is not ours.

    A link that is signed but wrong, expired, or another key's is refused here rather than fetched: fetching it
    would only reach this server again (or be refused as a loopback address).
    """
    found = own_file_id(url)
    if found is None:
        return None
    file_id, expires, signature = found
    try:
        svc.signer.verify(file_id, expires, signature, svc.clock())
    except PermissionDenied as exc:  # the caller's input is wrong: a 400 naming the field, not the file route's 403
        raise InvalidRequest(f"{exc.message} (the image link in {field or 'the request'})", field=field) from exc
    try:
        record, data = await read_file(svc, file_id)
    except NotFound:
        where = field or "the request"
        raise InvalidRequest(f"The image link in {where} points to a file that is gone.", field=field) from None
    if record.key_id != principal.id and not principal.is_admin:
        raise PermissionDenied(
            f"The image link in {field or 'the request'} is another API key's file; only the key that made an "
            "image can use its link as an input.",
            field=field,
        )
    return ImageInput.from_bytes(data, field=field)
