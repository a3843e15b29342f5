"""The web playground at ``/`` and its files under ``/static/``, straight from the installed package.

``/`` is never cached (``no-cache``) and names its assets under ``/static/v/<hash>/``, where the hash covers
every shipped file; those URLs are immutable for a year, and ES-module imports inherit the prefix because they
are relative. ``/static/<path>`` (no version) revalidates by ETag. Every page response carries a strict CSP:
scripts, styles and connections from this origin only, images also from ``data:`` and ``blob:``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable

from fastapi import APIRouter, Request
from fastapi.responses import Response

from imagegate.errors import NotFound

_PACKAGE = "imagegate.web"
_INDEX = "index.html"
_STATIC_PLACEHOLDER = "__STATIC__"
_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".png": "image/png",
    ".webmanifest": "application/manifest+json",
}
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
_SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


@dataclass(frozen=True, slots=True)
class Bundle:
    """Every shipped file by its path under ``static/``, and one hash over them all (the asset version)."""

    files: dict[str, Asset]
    version: str
    index: Asset


def _asset(body: bytes, name: str) -> Asset:
    suffix = name[name.rfind(".") :] if "." in name else ""
    media_type = _MEDIA_TYPES.get(suffix, "application/octet-stream")
    return Asset(body, media_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


def _walk(folder: Traversable, prefix: str = "") -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for entry in folder.iterdir():
        name = prefix + entry.name
        if entry.is_dir():
            found.update(_walk(entry, name + "/"))
        elif entry.is_file() and not entry.name.startswith("."):
            found[name] = entry.read_bytes()
    return found


@cache
def bundle() -> Bundle:
    """The files, read once on first use (never at import): they do not change while the server runs."""
    raw = _walk(resources.files(_PACKAGE) / "static")
    digest = hashlib.sha256()
    for name in sorted(raw):
        digest.update(name.encode() + b"\0" + raw[name] + b"\0")
    version = digest.hexdigest()[:16]
    index_body = raw[_INDEX].replace(_STATIC_PLACEHOLDER.encode(), f"/static/v/{version}".encode())
    files = {name: _asset(body, name) for name, body in raw.items() if name != _INDEX}
    return Bundle(files, version, _asset(index_body, _INDEX))


def _respond(request: Request, asset: Asset, cache_control: str) -> Response:
    headers = {**_SECURITY_HEADERS, "Cache-Control": cache_control, "ETag": asset.etag}
    if asset.etag in _etags(request.headers.get("if-none-match", "")):
        return Response(status_code=304, headers=headers)
    body = b"" if request.method == "HEAD" else asset.body
    return Response(body, media_type=asset.media_type, headers={**headers, "Content-Length": str(len(asset.body))})


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


def _file(path: str) -> Asset:
    # Only names found in the package are served: a lookup in that table cannot wander out of static/.
    asset = bundle().files.get(path)
    if asset is None:
        raise NotFound(f"/static/{path} does not exist.")
    return asset


router = APIRouter(include_in_schema=False)


@router.api_route("/", methods=["GET", "HEAD"])
async def index(request: Request) -> Response:
    return _respond(request, bundle().index, REVALIDATE)


@router.api_route("/favicon.ico", methods=["GET", "HEAD"])
async def favicon(request: Request) -> Response:
    return _respond(request, _file("favicon.svg"), REVALIDATE)


@router.api_route("/static/v/{version}/{path:path}", methods=["GET", "HEAD"])
async def versioned_file(version: str, path: str, request: Request) -> Response:
    # An old version (a page loaded before an upgrade) still gets today's file, just not cached for good.
    cache_control = IMMUTABLE if version == bundle().version else REVALIDATE
    return _respond(request, _file(path), cache_control)


@router.api_route("/static/{path:path}", methods=["GET", "HEAD"])
async def static_file(path: str, request: Request) -> Response:
    return _respond(request, _file(path), REVALIDATE)
