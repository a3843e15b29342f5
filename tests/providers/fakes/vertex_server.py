"""A fake Google: an OAuth2 token endpoint (JWT-bearer grant) and Vertex AI ``generateContent``, as one Starlette app.

The token endpoint checks the service account's signed assertion the way Google does (RFC 7523: RS256 signed by
the key whose ``kid`` the header names, ``iss`` the account, ``aud`` Google's token URI, the cloud-platform
``scope``, an hour's lifetime) with ``cryptography`` alone, then issues ``ya29.fake-N`` tokens. The Vertex
endpoint accepts only tokens it issued and has not revoked (else Google's 401 UNAUTHENTICATED), or the express
key in ``x-goog-api-key``, and answers like Vertex: a real PNG of the asked aspect ratio, ``usageMetadata`` with
``trafficType``. Failures are scripted with ``fail``; ``token_requests`` and ``seen`` record what arrived.
"""

from __future__ import annotations

import base64
import itertools
import json
import time
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from imagegate.core.images import ASPECT_RATIOS

from .openai_server import solid_png

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
#: The audience Google requires of a service account's assertion, whichever URI the grant is posted to.
TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"

UNAUTHENTICATED = {
    "error": {
        "code": 401,
        "message": "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
        "or other valid authentication credential. See "
        "https://developers.google.com/identity/sign-in/web/devconsole-project.",
        "status": "UNAUTHENTICATED",
    }
}


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class FakeGoogle:
    def __init__(
        self,
        public_key: rsa.RSAPublicKey,
        *,
        client_email: str,
        key_id: str,
        project: str,
        api_key: str | None = None,
        expires_in: int = 3599,
    ) -> None:
        self.public_key = public_key
        self.client_email = client_email
        self.key_id = key_id
        self.project = project
        self.api_key = api_key
        self.expires_in = expires_in
        self.token_requests: list[dict[str, Any]] = []  # the verified claims of each assertion
        self.token_failures: list[tuple[int, Any]] = []  # scripted answers of the token endpoint
        self.issued: list[str] = []
        self.revoked: set[str] = set()
        self.seen: list[Seen] = []
        self.script: list[tuple[int, Any]] = []
        self._ids = itertools.count(1)
        self.app = Starlette(
            routes=[
                Route("/token", self._token, methods=["POST"]),
                Route("/{path:path}", self._vertex, methods=["POST"]),
            ]
        )

    def fail(self, status: int, body: Any) -> None:
        self.script.append((status, body))

    # -- OAuth2 ----------------------------------------------------------------------------------------

    async def _token(self, request: Request) -> Response:
        form = await request.form()
        if self.token_failures:
            status, body = self.token_failures.pop(0)
            return JSONResponse(body, status)
        if form.get("grant_type") != JWT_BEARER:
            return JSONResponse({"error": "unsupported_grant_type", "error_description": "Invalid grant_type."}, 400)
        claims = self._verify(str(form.get("assertion", "")))
        if claims is None:
            return JSONResponse({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}, 400)
        self.token_requests.append(claims)
        token = f"ya29.fake-{next(self._ids)}"
        self.issued.append(token)
        return JSONResponse({"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"})

    def _verify(self, assertion: str) -> dict[str, Any] | None:
        try:
            header_b64, claims_b64, signature_b64 = assertion.split(".")
            header = json.loads(_b64url_decode(header_b64))
            claims = json.loads(_b64url_decode(claims_b64))
            self.public_key.verify(
                _b64url_decode(signature_b64),
                f"{header_b64}.{claims_b64}".encode("ascii"),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (ValueError, InvalidSignature):
            return None
        now = time.time()
        valid = (
            header.get("alg") == "RS256"
            and header.get("kid") == self.key_id
            and claims.get("iss") == self.client_email
            and claims.get("aud") == TOKEN_AUDIENCE
            and claims.get("scope") == CLOUD_PLATFORM
            and abs(claims.get("iat", 0) - now) < 300
            and 0 < claims.get("exp", 0) - claims.get("iat", 0) <= 3600
        )
        return {"header": header, **claims} if valid else None

    # -- Vertex AI -------------------------------------------------------------------------------------

    async def _vertex(self, request: Request) -> Response:
        path = "/" + request.path_params["path"]
        body = await request.json()
        self.seen.append(Seen(path, dict(request.headers), body))
        express = path.startswith("/v1/publishers/")
        if express:
            if self.api_key is None or request.headers.get("x-goog-api-key") != self.api_key:
                return JSONResponse(
                    {
                        "error": {
                            "code": 400,
                            "message": "API key not valid. Please pass a valid API key.",
                            "status": "INVALID_ARGUMENT",
                            "details": [
                                {
                                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                    "reason": "API_KEY_INVALID",
                                    "domain": "googleapis.com",
                                    "metadata": {"service": "aiplatform.googleapis.com"},
                                }
                            ],
                        }
                    },
                    400,
                )
        else:
            token = request.headers.get("authorization", "").removeprefix("Bearer ")
            if token not in self.issued or token in self.revoked:
                return JSONResponse(UNAUTHENTICATED, 401)
        if self.script:
            status, answer = self.script.pop(0)
            return JSONResponse(answer, status)
        ratio = (body.get("generationConfig") or {}).get("imageConfig", {}).get("aspectRatio", "1:1")
        spec = ASPECT_RATIOS[ratio]
        png = solid_png(spec.width, spec.height)
        return JSONResponse(
            {
                "candidates": [
                    {
                        "content": {
                            "role": "model",
                            "parts": [
                                {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(png).decode()}}
                            ],
                        },
                        "finishReason": "STOP",
                    }
                ],
                "usageMetadata": {
                    "promptTokenCount": 12,
                    "candidatesTokenCount": 1290,
                    "totalTokenCount": 1302,
                    "trafficType": "ON_DEMAND",
                    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 12}],
                    "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1290}],
                },
                "modelVersion": "gemini-2.5-flash-image",
                "createTime": "2025-10-02T10:00:00.000000Z",
                "responseId": "fake-response-id",
            }
        )
