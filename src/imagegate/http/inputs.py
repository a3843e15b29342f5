"""Image URLs a caller sent, as images: this server's own signed file links read from the store, anything else
through the safe fetcher (``data:`` URLs decoded, ``http(s)`` fetched with its SSRF checks). Every dialect that
takes image URLs calls ``load_image_urls``, so the rule lives in one place.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from fastapi import Request

from imagegate.core.images import ImageInput
from imagegate.core.ports import ApiKey
from imagegate.http.deps import runtime_of, services_of
from imagegate.services.own_files import read_own_image


async def load_image_url(request: Request, principal: ApiKey, url: str, *, field: str | None) -> ImageInput:
    own = await read_own_image(services_of(request), principal, url, field=field)
    if own is not None:
        return own
    return await runtime_of(request).fetcher.fetch(url, field=field)


async def load_image_urls(
    request: Request, principal: ApiKey, urls: Sequence[str], fields: Sequence[str | None]
) -> list[ImageInput]:
    """The images of ``urls`` in order, concurrently; ``fields`` names each one's place in the request."""
    return list(
        await asyncio.gather(
            *(load_image_url(request, principal, url, field=field) for url, field in zip(urls, fields, strict=True))
        )
    )
