"""Who is calling: the key from any header a supported dialect uses, checked by the accounts service."""

from __future__ import annotations

from fastapi import Request

from imagegate.core.ports import ApiKey
from imagegate.http.deps import services_of
from imagegate.services.accounts import authenticate


def presented_key(request: Request) -> str | None:
    """Gemini's ``x-goog-api-key`` or ``?key=``, OpenAI's ``Authorization: Bearer``, fal's ``Authorization: Key``."""
    if key := request.headers.get("x-goog-api-key"):
        return key
    if key := request.query_params.get("key"):
        return key
    authorization = request.headers.get("authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() in ("bearer", "key") and credentials.strip():
        return credentials.strip()
    return None


async def require_principal(request: Request) -> ApiKey:
    principal = await authenticate(services_of(request), presented_key(request))
    request.state.principal = principal
    return principal
