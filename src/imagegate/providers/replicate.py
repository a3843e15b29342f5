"""The ``replicate`` provider: Replicate's predictions API (``google/nano-banana`` and similar) over ``httpx``.

``upstream_model`` ``owner/name`` creates ``POST {base_url}/v1/models/{owner}/{name}/predictions``;
``owner/name:version`` pins a version through ``POST {base_url}/v1/predictions``. The request asks to wait
(``Prefer: wait=N``); a prediction still ``starting``/``processing`` after that is polled at ``urls.get``
until it ends or ``timeout_s`` passes (then it is cancelled). ``Cancel-After`` gives Replicate the same
deadline, so a prediction is stopped upstream even if this process goes away without cancelling it. The
input is ``prompt``, ``image_input`` (data URIs), ``aspect_ratio`` and ``output_format``; the output (a URL
or a list of them) is downloaded without the key. A failed prediction whose error says the content was
flagged is a refusal; cancelling our call cancels the prediction. Errors come as problem JSON (``title``,
``detail``, ``status``).

Replicate reports run time, not tokens, so usage is estimated the way Google counts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Self

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from imagegate.core.capabilities import Feature, ModelSpec, estimate_usage
from imagegate.core.checks import DeploymentCaps
from imagegate.core.images import encode_base64
from imagegate.core.jobs import FinishReason, Generation, JobSpec
from imagegate.errors import (
    ImagegateError,
    InvalidRequest,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from imagegate.providers import mapping
from imagegate.providers.base import (
    HTTPUpstream,
    Sleep,
    json_object,
    parse_options,
    retry_after_header,
    unreadable,
)
from imagegate.providers.downloads import DEFAULT_MAX_BYTES, download_image
from imagegate.providers.flatten import flatten

UPSTREAM = "Replicate"
_FORMATS = {"image/png": "png", "image/jpeg": "jpg"}
_RUNNING = ("starting", "processing")
# Replicate's safety checker fails the prediction with messages like "...flagged as sensitive (E005)".
_FLAGGED = re.compile(r"\b(flagged|sensitive|nsfw|E005|safety)\b", re.IGNORECASE)
_MODEL = re.compile(r"^[\w.-]+/[\w.-]+(:[0-9a-f]{8,})?$")
# A 422's detail names the input it is about: "- input.aspect_ratio: aspect_ratio must be one of ..."
_INPUT_FIELD = re.compile(r"\binput\.([\w.]+)")


class ReplicateOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    api_key: SecretStr = Field(min_length=1)
    base_url: str = Field(default="https://api.replicate.com", pattern=r"^https?://")
    wait_s: int = Field(default=60, ge=1, le=60, description="Prefer: wait=N; Replicate allows at most 60")
    poll_interval_s: float = Field(default=1.0, gt=0)
    timeout_s: float = Field(default=300, gt=0, description="longest wait for one prediction")
    connect_timeout_s: float = Field(default=10, gt=0)
    max_retries: int = Field(default=2, ge=0)
    max_download_bytes: int = Field(default=DEFAULT_MAX_BYTES, gt=0)


class ReplicateProvider:
    def __init__(
        self,
        options: ReplicateOptions,
        *,
        client: httpx.AsyncClient | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._options = options
        self._http = HTTPUpstream(
            UPSTREAM,
            timeout_s=options.wait_s + 30,  # one call may hold the connection for the whole wait
            connect_timeout_s=options.connect_timeout_s,
            max_retries=options.max_retries,
            client=client,
            sleep=sleep,
            secrets=(options.api_key.get_secret_value(),),
        )
        self._client = self._http.client
        self._sleep = sleep
        self._clock = clock

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        return cls(parse_options(ReplicateOptions, options, provider="replicate"))

    @classmethod
    def capabilities(cls, options: Mapping[str, Any]) -> DeploymentCaps:
        """Replicate's google/nano-banana models: one prompt and images in, images out, at 1K, 2K or 4K; web and
        image search without a time range; no thinking level, no thoughts, no seed or temperature."""
        return DeploymentCaps(
            resolutions=mapping.REPLICATE_RESOLUTIONS,
            features=frozenset({Feature.GROUNDING}),
            text_answers=False,
            needs_prompt_text=True,
            returns_thoughts=False,
            search_time_range=False,
            temperature=False,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def generate(self, spec: JobSpec, model: ModelSpec, upstream_model: str) -> Generation:
        if not _MODEL.match(upstream_model):
            raise UpstreamRejected(
                f"Replicate model {upstream_model!r} is not 'owner/name' or 'owner/name:version'; "
                "fix the deployment's model mapping."
            )
        prompt, images = flatten(spec, None, model.max_input_images, upstream=UPSTREAM)
        inputs: dict[str, Any] = {"prompt": prompt, "output_format": _FORMATS.get(spec.output_mime_type, "png")}
        if images:
            inputs["image_input"] = [f"data:{i.mime_type};base64,{encode_base64(i.data)}" for i in images]
        if spec.aspect_ratio:
            inputs["aspect_ratio"] = spec.aspect_ratio
        elif images:
            inputs["aspect_ratio"] = "match_input_image"
        inputs |= _family_inputs(spec)
        if (resolution := mapping.replicate_resolution(spec, model)) is not None:
            inputs["resolution"] = resolution
        base = self._options.base_url.rstrip("/")
        name, _, version = upstream_model.partition(":")
        if version:
            url, body = f"{base}/v1/predictions", {"version": version, "input": inputs}
        else:
            url, body = f"{base}/v1/models/{name}/predictions", {"input": inputs}
        deadline = self._clock() + self._options.timeout_s
        headers = {
            **self._auth,
            "prefer": f"wait={self._options.wait_s}",
            "cancel-after": f"{math.ceil(self._options.timeout_s)}s",
        }
        prediction = await self._call("POST", url, upstream_model, json_body=body, headers=headers)
        prediction = await self._until_done(prediction, upstream_model, deadline)
        return await self._generation(prediction, spec, model)

    @property
    def _auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self._options.api_key.get_secret_value()}"}

    async def _until_done(self, prediction: dict[str, Any], name: str, deadline: float) -> dict[str, Any]:
        urls = prediction.get("urls")
        get_url, cancel_url = (urls.get("get"), urls.get("cancel")) if isinstance(urls, dict) else (None, None)
        try:
            while prediction.get("status") in _RUNNING:
                if not isinstance(get_url, str):
                    raise unreadable(UPSTREAM, "a running prediction has no urls.get")
                if self._clock() >= deadline:
                    await self._cancel(cancel_url)
                    raise UpstreamTimeout(
                        f"{UPSTREAM} did not finish prediction {prediction.get('id')} within "
                        f"{self._options.timeout_s:g} s; it was cancelled."
                    )
                await self._sleep(self._options.poll_interval_s)
                prediction = await self._call("GET", get_url, name, headers=self._auth)
        except asyncio.CancelledError:
            # shielded: the cancel must go out even though this task is being cancelled
            await asyncio.shield(self._cancel(cancel_url))
            raise
        return prediction

    async def _cancel(self, cancel_url: object) -> None:
        if isinstance(cancel_url, str):
            with contextlib.suppress(httpx.HTTPError):
                await self._client.post(cancel_url, headers=self._auth)

    async def _call(
        self,
        method: str,
        url: str,
        name: str,
        *,
        headers: dict[str, str],
        json_body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        response = await self._http.send(method, url, json=json_body, headers=headers)
        if response.status_code in (200, 201, 202):
            return json_object(response, UPSTREAM)
        raise _error_for(response, name, self._options.api_key.get_secret_value())

    async def _generation(self, prediction: Mapping[str, Any], spec: JobSpec, model: ModelSpec) -> Generation:
        status = prediction.get("status")
        error = str(prediction.get("error") or "").strip()
        if status == "failed":
            if _FLAGGED.search(error):
                return Generation(images=(), finish_reason=None, block_reason=FinishReason.SAFETY, finish_message=error)
            raise UpstreamUnavailable(f"{UPSTREAM} prediction {prediction.get('id')} failed: {error or 'no reason'}.")
        if status == "aborted":  # Cancel-After passed before the prediction started: it was never run
            raise UpstreamTimeout(f"{UPSTREAM} did not start prediction {prediction.get('id')} in time.")
        if status == "canceled":
            raise UpstreamUnavailable(f"{UPSTREAM} prediction {prediction.get('id')} was canceled upstream.")
        if status != "succeeded":
            raise unreadable(UPSTREAM, f"unknown prediction status {status!r}")
        output = prediction.get("output")
        urls = [output] if isinstance(output, str) else output if isinstance(output, list) else None
        if urls is None or not all(isinstance(u, str) for u in urls):
            raise unreadable(UPSTREAM, "'output' is neither a URL nor a list of URLs")
        images = [
            await download_image(
                self._client,
                url,
                upstream=UPSTREAM,
                allow_http=self._options.base_url.startswith("http://"),
                max_bytes=self._options.max_download_bytes,
                sleep=self._sleep,
            )
            for url in urls
        ]
        version = prediction.get("version")
        if not isinstance(version, str) or version in ("", "hidden"):  # official models hide their version
            version = prediction.get("model")
        return Generation(
            images=tuple(images),
            finish_reason=FinishReason.STOP if images else FinishReason.NO_IMAGE,
            usage=estimate_usage(spec, model, output_images=len(images)),
            model_version=version if isinstance(version, str) and version else None,
        )


def _error_for(response: httpx.Response, name: str, secret: str) -> ImagegateError:
    code = response.status_code
    detail = ""
    with contextlib.suppress(ValueError):
        body = json.loads(response.content)
        if isinstance(body, dict):
            detail = str(body.get("detail") or body.get("title") or "").strip()
    detail = detail.replace(secret, "***") if secret else detail
    said = f"HTTP {code}" + (f": {detail}" if detail else "")
    if code in (401, 403):
        return UpstreamRejected(f"{UPSTREAM} did not accept the replicate deployment's token ({said}).")
    if code == 402:
        return UpstreamRejected(f"{UPSTREAM} refused for billing reasons ({said}); check the account's credit.")
    if code == 404:
        return UpstreamRejected(f"{UPSTREAM} has no model {name!r} ({said}).")
    if code in (400, 422):
        field = match.group(1) if (match := _INPUT_FIELD.search(detail)) else None
        return InvalidRequest(f"{UPSTREAM} rejected the input: {detail or 'invalid'}", field=field)
    if code == 429:
        return UpstreamRateLimited(f"{UPSTREAM} is rate limiting ({said}).", retry_after_s=retry_after_header(response))
    if code in (408, 504):
        return UpstreamTimeout(f"{UPSTREAM} timed out ({said}).")
    if code >= 500:
        return UpstreamUnavailable(f"{UPSTREAM} is unavailable ({said}).")
    return UpstreamRejected(f"{UPSTREAM} refused the request ({said}).")


def _family_inputs(spec: JobSpec) -> dict[str, Any]:
    """Search grounding as ``google/nano-banana-2`` takes it (``google_search``, ``image_search``, which turns web
    search on by itself)."""
    web, images = mapping.search(spec)
    inputs: dict[str, Any] = {}
    if web:
        inputs["google_search"] = True
    if images:
        inputs["image_search"] = True
    return inputs
