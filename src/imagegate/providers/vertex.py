"""The ``vertex`` provider: Gemini image models on Vertex AI's ``generateContent``, over ``httpx``.

Vertex AI takes and gives the same GenerateContent JSON as Google AI Studio, so the body is built, the answer
read and the ``google.rpc.Status`` errors mapped by the ``gemini`` provider's own functions. What differs is
where the call goes and how it is authorised:

* with Google credentials (the default): ``POST https://{location}-aiplatform.googleapis.com/v1/projects/
  {project}/locations/{location}/publishers/google/models/{model}:generateContent`` (location ``global``:
  host ``aiplatform.googleapis.com``) with ``Authorization: Bearer <OAuth2 access token>``. The credentials
  are a service account key (``credentials_file``: its path, or ``credentials_json``: its text) or an
  ``authorized_user`` file, else Application Default Credentials, looked up at the first call (the lookup may
  ask the metadata server). ``project`` defaults to the credentials' own project.
* in express mode (``api_key``): ``POST https://aiplatform.googleapis.com/v1/publishers/google/models/
  {model}:generateContent`` with the key in ``x-goog-api-key`` (never in the URL, where proxies log it).

``base_url`` replaces the scheme and host (a proxy, or a test server). Access tokens come from ``google-auth``;
a refresh is a blocking HTTP call, so it runs in a worker thread, one at a time per deployment (an asyncio
lock: a hundred calls that find the token expired cause one refresh). A token Vertex rejects with 401 is
refreshed once and the call sent again; nothing was generated for a 401. Vertex's 429 is a rate, not a wall
(pay-as-you-go "dynamic shared quota": Google asks for truncated exponential backoff), so it is retried like
a 5xx and, when retries run out, raised as ``UpstreamRateLimited``.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Self

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from imagegate.core.capabilities import ModelSpec
from imagegate.core.jobs import Generation, JobSpec
from imagegate.errors import (
    ImagegateError,
    InvalidRequest,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamUnavailable,
)
from imagegate.providers.base import (
    HTTPUpstream,
    ProviderOptionsError,
    RetryPolicy,
    Sleep,
    json_object_lifting,
    parse_options,
)
from imagegate.providers.gemini import (
    INLINE_DATA_KEY,
    build_request_body,
    parse_generation,
    rpc_error,
    rpc_retry_delay,
    rpc_status,
)
from imagegate.providers.inline import GOOGLE_INLINE_IMAGE_BYTES, fit_inline_images

if TYPE_CHECKING:
    from google.auth.credentials import Credentials

UPSTREAM = "Vertex AI"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
EXPRESS_HOST = "https://aiplatform.googleapis.com"

_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@/-]*$")


class VertexOptions(BaseModel):
    """A ``vertex`` deployment's options (``[[deployments]] options`` in ``imagegate.toml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    project: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9.:-]*$")
    location: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]*$")  # None: global
    credentials_file: Path | None = None
    credentials_json: Annotated[SecretStr, Field(min_length=1)] | None = None
    api_key: Annotated[SecretStr, Field(min_length=1)] | None = None  # express mode
    base_url: str | None = Field(default=None, pattern=r"^https?://[^/\s]+")
    api_version: str = Field(default="v1", pattern=r"^v1[a-z0-9]*$")
    timeout_s: float = Field(default=120, gt=0)
    connect_timeout_s: float = Field(default=10, gt=0)
    token_timeout_s: float = Field(default=30, gt=0)  # one HTTP call to Google's token endpoint
    max_retries: int = Field(default=2, ge=0)
    # Larger input images are re-encoded to fit before they are sent (``providers.inline``).
    max_inline_image_bytes: int = Field(default=GOOGLE_INLINE_IMAGE_BYTES, ge=100_000)

    @model_validator(mode="after")
    def _one_way_in(self) -> Self:
        given = [name for name in ("credentials_file", "credentials_json", "api_key") if getattr(self, name)]
        if len(given) > 1:
            raise ValueError(f"give one of credentials_file, credentials_json or api_key, not {' and '.join(given)}")
        if self.api_key is not None and (self.project or self.location):
            raise ValueError("express mode (api_key) has no project or location; leave them out")
        return self

    @property
    def express(self) -> bool:
        return self.api_key is not None


class VertexProvider:
    """Generates with a Gemini image model on Vertex AI; one instance per deployment."""

    def __init__(
        self,
        options: VertexOptions,
        *,
        credentials: Credentials | None = None,
        project: str | None = None,
        client: httpx.AsyncClient | None = None,
        sleep: Sleep = asyncio.sleep,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        """``credentials`` (and the ``project`` they belong to) as ``load_credentials`` made them; None: ADC."""
        self._options = options
        self._credentials = credentials
        self._project = options.project or project
        self._http = HTTPUpstream(
            UPSTREAM,
            timeout_s=options.timeout_s,
            connect_timeout_s=options.connect_timeout_s,
            max_retries=options.max_retries,
            client=client,
            policy=retry_policy,
            sleep=sleep,
            retryable=_retryable,
            retry_after=rpc_retry_delay,
        )
        self._lock = asyncio.Lock()
        self._pending: asyncio.Future[None] | None = None  # the refresh under way, if any
        self._auth_request: Any = None  # google-auth's transport (a requests session), made at the first refresh

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        parsed = parse_options(VertexOptions, options, provider="vertex")
        credentials, project = load_credentials(parsed)
        if credentials is not None and not (parsed.project or project):
            raise ProviderOptionsError(
                "invalid options for provider 'vertex': project: the credentials name no project; set 'project'"
            )
        return cls(parsed, credentials=credentials, project=project)

    async def aclose(self) -> None:
        await self._http.aclose()
        if self._auth_request is not None:
            self._auth_request.session.close()
            self._auth_request = None

    async def generate(self, spec: JobSpec, model: ModelSpec, upstream_model: str) -> Generation:
        if spec.grounding is not None and spec.grounding.time_range is not None:
            # Google's own types: GoogleSearch.time_range_filter "is not supported in Vertex AI"
            raise InvalidRequest(
                "Vertex AI does not support timeRangeFilter for Search grounding.",
                field="tools.googleSearch.time_range_filter",
            )
        spec = await fit_inline_images(spec, self._options.max_inline_image_bytes)
        body = build_request_body(spec)
        response = await self._post(upstream_model, "generateContent", body)
        return parse_generation(*json_object_lifting(response, UPSTREAM, INLINE_DATA_KEY), upstream=UPSTREAM)

    # -- the call --------------------------------------------------------------------------------------

    async def _post(self, upstream_model: str, method: str, body: dict[str, Any]) -> httpx.Response:
        if self._options.express:
            assert self._options.api_key is not None
            headers = {"x-goog-api-key": self._options.api_key.get_secret_value()}
            return await self._send(await self._url(upstream_model, method), body, headers, upstream_model)
        token = await self._token()
        url = await self._url(upstream_model, method)
        response = await self._send(url, body, {"authorization": f"Bearer {token}"}, upstream_model, raising=False)
        if response.status_code == 401:  # revoked or expired early: one fresh token, one more try
            token = await self._token(rejected=token)
            response = await self._send(url, body, {"authorization": f"Bearer {token}"}, upstream_model, raising=False)
        if response.status_code != 200:
            raise self._error_for(response, upstream_model, token)
        return response

    async def _send(
        self, url: str, body: dict[str, Any], headers: dict[str, str], model: str, *, raising: bool = True
    ) -> httpx.Response:
        response = await self._http.send("POST", url, json=body, headers=headers)
        if raising and response.status_code != 200:
            raise self._error_for(response, model, None)
        return response

    async def _url(self, upstream_model: str, method: str) -> str:
        options = self._options
        name = upstream_model.strip().removeprefix("models/")
        if not _MODEL_NAME.match(name) or ".." in name:
            raise UpstreamRejected(f"the vertex deployment's model name {upstream_model!r} is not a Vertex model name.")
        if options.express:
            if name.startswith("projects/"):
                raise UpstreamRejected(f"Vertex AI express mode cannot call {name!r}: it has no projects.")
            path = name if name.startswith("publishers/") else f"publishers/google/models/{name}"
            return f"{(options.base_url or EXPRESS_HOST).rstrip('/')}/{options.api_version}/{path}:{method}"
        location = options.location or "global"
        if name.startswith("projects/"):  # a full resource name: a tuned model's endpoint, another project
            path = name
        else:
            project = self._project or await self._adc_project()
            prefix = f"projects/{project}/locations/{location}"
            path = f"{prefix}/{name}" if name.startswith("publishers/") else f"{prefix}/publishers/google/models/{name}"
        host = options.base_url or (
            EXPRESS_HOST if location == "global" else f"https://{location}-aiplatform.googleapis.com"
        )
        return f"{host.rstrip('/')}/{options.api_version}/{path}:{method}"

    # -- credentials -----------------------------------------------------------------------------------

    async def _token(self, *, rejected: str | None = None) -> str:
        """A valid access token; ``rejected``: one Vertex refused, so anything but it (refreshing if need be)."""
        credentials = self._credentials
        if credentials is not None and rejected is None and credentials.valid:
            return str(credentials.token)
        async with self._lock:
            if self._credentials is None:
                await self._discover()
            credentials = self._credentials
            assert credentials is not None
            if credentials.valid and credentials.token != rejected:  # refreshed by another call meanwhile
                return str(credentials.token)
            if self._pending is None or self._pending.done():
                self._pending = asyncio.ensure_future(asyncio.to_thread(self._refresh, credentials))
                self._pending.add_done_callback(_consume)
            # shielded: a caller cancelled mid-refresh leaves the refresh to finish, and the next caller awaits it
            await asyncio.shield(self._pending)
            return str(credentials.token)

    def _refresh(self, credentials: Credentials) -> None:
        """Blocking: get a new access token (runs in a worker thread)."""
        from google.auth import exceptions

        try:
            credentials.refresh(self._google_request())  # type: ignore[no-untyped-call]
        except exceptions.TransportError as exc:
            raise UpstreamUnavailable(
                f"{UPSTREAM}: Google's token endpoint could not be reached ({_brief(exc)})."
            ) from exc
        except exceptions.RefreshError as exc:
            if getattr(exc, "retryable", False):
                raise UpstreamUnavailable(f"{UPSTREAM}: Google's token endpoint failed ({_brief(exc)}).") from exc
            raise UpstreamRejected(
                f"{UPSTREAM}: the vertex deployment's credentials could not get an access token ({_brief(exc)}); "
                "check the service account key configured for this deployment."
            ) from exc
        except exceptions.GoogleAuthError as exc:
            raise UpstreamRejected(
                f"{UPSTREAM}: the vertex deployment's credentials cannot be used ({_brief(exc)})."
            ) from exc
        if not credentials.token:
            raise UpstreamUnavailable(f"{UPSTREAM}: Google's token endpoint answered without an access token.")

    async def _discover(self) -> None:
        """Application Default Credentials, looked up once (in a thread: it may ask the metadata server)."""
        self._credentials, project = await asyncio.to_thread(self._default_credentials)
        self._project = self._project or project

    def _default_credentials(self) -> tuple[Credentials, str | None]:
        import google.auth
        from google.auth import exceptions

        try:
            credentials, project = google.auth.default(scopes=[SCOPE], request=self._google_request())
        except exceptions.GoogleAuthError as exc:
            raise UpstreamRejected(
                f"{UPSTREAM}: the vertex deployment has no credentials ({_brief(exc)}); set credentials_file, "
                "credentials_json or api_key in its options, or provide Application Default Credentials."
            ) from exc
        return credentials, project

    async def _adc_project(self) -> str:
        if self._credentials is None:
            async with self._lock:
                if self._credentials is None:
                    await self._discover()
        if not self._project:
            raise UpstreamRejected(f"{UPSTREAM}: no project is known for the vertex deployment; set 'project'.")
        return self._project

    def _google_request(self) -> Any:
        if self._auth_request is None:
            from google.auth.transport.requests import Request

            timeout = self._options.token_timeout_s

            class TimedRequest(Request):
                # google-auth's token calls pass no timeout, and its own default is two minutes
                def __call__(self, *args: Any, **kwargs: Any) -> Any:
                    kwargs.setdefault("timeout", timeout)
                    return super().__call__(*args, **kwargs)  # type: ignore[no-untyped-call]

            self._auth_request = TimedRequest()
        return self._auth_request

    # -- errors ----------------------------------------------------------------------------------------

    def _error_for(self, response: httpx.Response, model: str, token: str | None) -> ImagegateError:
        options = self._options
        secrets = tuple(s for s in (options.api_key.get_secret_value() if options.api_key else "", token) if s)
        if response.status_code == 429:
            status = rpc_status(response)
            message = str(status.get("message") or "").strip()
            for secret in secrets:
                message = message.replace(secret, "***")
            said = " ".join(filter(None, ("HTTP 429", str(status.get("status") or "")))) + (
                f": {message}" if message else ""
            )
            return UpstreamRateLimited(
                f"{UPSTREAM} rate limit reached ({said}).", retry_after_s=rpc_retry_delay(response)
            )
        if options.express:
            where, credentials = f"{options.api_version}, express mode", "the vertex deployment's API key"
            check = "check the express-mode key configured for this deployment"
        else:
            where = f"{options.api_version}, project {self._project}, location {options.location or 'global'}"
            credentials = "the vertex deployment's credentials"
            check = (
                f"check that they may use Vertex AI in project {self._project} (role Vertex AI User) "
                "and that the Vertex AI API is enabled there"
            )
        return rpc_error(
            response,
            upstream=UPSTREAM,
            model=model.removeprefix("models/"),
            where=where,
            secrets=secrets,
            credentials=credentials,
            check=check,
        )


def _retryable(response: httpx.Response) -> bool:
    # every Vertex 429 is a rate (shared capacity or a per-minute quota): back off and ask again
    return response.status_code in (429, 500, 502, 503, 504)


def _consume(future: asyncio.Future[None]) -> None:
    # a refresh whose callers were all cancelled must not log "exception was never retrieved"
    if not future.cancelled():
        future.exception()


def _brief(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:299] + "…"


# -- loading credentials ---------------------------------------------------------------------------------


def load_credentials(options: VertexOptions) -> tuple[Credentials | None, str | None]:
    """The credentials ``options`` name and their project; ``(None, None)`` for express mode or ADC.

    A key that cannot be read or parsed is a configuration mistake, raised as ``ProviderOptionsError``
    without quoting the key. Service account keys and ``authorized_user`` files are accepted; other kinds of
    credential configuration (external accounts, impersonation) go through Application Default Credentials.
    """
    if options.express:
        return None, None
    if options.credentials_json is not None:
        source, text = "credentials_json", options.credentials_json.get_secret_value()
    elif options.credentials_file is not None:
        source = "credentials_file"
        try:
            text = options.credentials_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise _options_error(
                source, f"cannot read {str(options.credentials_file)!r} ({type(exc).__name__})"
            ) from exc
    else:
        return None, None
    try:
        info = json.loads(text)
    except ValueError:
        raise _options_error(source, "is not JSON") from None
    if not isinstance(info, dict):
        raise _options_error(source, "is not a JSON object")
    kind = info.get("type")
    try:
        if kind == "service_account":
            from google.oauth2 import service_account

            credentials: Credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                info, scopes=[SCOPE]
            )
            project = info.get("project_id")
            return credentials, project if isinstance(project, str) and project else None
        if kind == "authorized_user":
            from google.oauth2 import credentials as user_credentials

            user = user_credentials.Credentials.from_authorized_user_info(  # type: ignore[no-untyped-call]
                info, scopes=[SCOPE]
            )
            return user, None
    except (ValueError, KeyError, TypeError) as exc:
        # google-auth names missing fields or says the key cannot be parsed; it never quotes the key
        secret = info.get("private_key")
        message = " ".join(str(exc).split())
        if isinstance(secret, str) and secret:
            message = message.replace(secret, "***")
        raise _options_error(
            source, f"cannot be used as Google credentials ({type(exc).__name__}: {message})"
        ) from None
    raise _options_error(
        source,
        f"is of type {kind!r}; give a service_account or authorized_user key, "
        "or use Application Default Credentials for other kinds",
    )


def _options_error(source: str, why: str) -> ProviderOptionsError:
    return ProviderOptionsError(f"invalid options for provider 'vertex': {source}: {why}")
