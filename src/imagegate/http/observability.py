"""Fleet health and metrics: ``GET /v1/providers`` (any key) and ``GET /metrics`` (Prometheus; admin key).

``/v1/providers`` shows each deployment's breaker state, load and rolling p50/p95/mean latency, time to first
byte and success rate, the way public gateways publish per-provider performance. ``/metrics`` is for
Prometheus scrapers (``authorization: Bearer <admin key>``), or open when ``metrics_public`` is set.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from imagegate.core.ports import ApiKey
from imagegate.errors import PermissionDenied
from imagegate.http.auth import require_principal
from imagegate.http.deps import mark_dialect, runtime_of, services_of
from imagegate.metrics import CONTENT_TYPE

router = APIRouter(dependencies=[Depends(mark_dialect("openai"))], tags=["observability"])


@router.get("/v1/providers")
async def list_providers(request: Request, _: ApiKey = Depends(require_principal)) -> JSONResponse:
    # With shared state (rate_limit_url = redis://...) the figures are every process's ("scope": "fleet").
    fleet = runtime_of(request).fleet
    if fleet is not None:
        rows, scope = await fleet.snapshot()
    else:
        rows, scope = services_of(request).router.snapshot(), "process"
    return JSONResponse({"object": "list", "data": rows, "scope": scope})


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    runtime = runtime_of(request)
    if not runtime.settings.metrics_public:
        principal = await require_principal(request)
        if not principal.is_admin:
            raise PermissionDenied("/metrics needs an admin key (or set metrics_public = true).")
    registry = runtime.services.metrics
    if runtime.fleet is not None:
        await runtime.fleet.update_metrics()
    body = registry.render() if registry is not None else b""
    return Response(body, media_type=CONTENT_TYPE)
