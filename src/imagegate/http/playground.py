"""What the web playground needs beyond the public dialects: each model's resolutions (with their price per
image and pixel size per aspect ratio), aspect ratios, input-image limit and price
(``GET /v1/playground/models``), and what a job was asked, which task
objects leave out (``GET /v1/playground/jobs?ids=…``: prompt, aspect ratio, input images, turns)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from imagegate.core.capabilities import ModelSpec
from imagegate.core.money import format_amount
from imagegate.core.ports import ApiKey
from imagegate.errors import InvalidRequest
from imagegate.http.auth import require_principal
from imagegate.http.deps import mark_dialect, services_of
from imagegate.routing.router import Router
from imagegate.services.billing import dearest_prices, prices_of

MAX_IDS = 100


router = APIRouter(dependencies=[Depends(mark_dialect("openai"))], tags=["playground"], include_in_schema=False)


def describe_model(model: ModelSpec, router: Router | None = None) -> dict[str, Any]:
    """A model as the playground shows it: prices are the dearest a request may be held at over its
    deployments (each listed with its own, for a compare across them), with the diffusion knobs they take.
    ``aspect_ratios`` carries the sizes at the default resolution."""
    prices = dearest_prices(model, router)
    knobs, max_steps = router.diffusion(model.id) if router is not None else (frozenset(), None)
    deployments = [
        {
            "name": c.deployment.name,
            "prices": {
                tier.name: format_amount(prices_of(model, router, c.deployment.name).image_price(tier.name))
                for tier in model.tiers
            },
        }
        for c in (router.candidates(model.id) if router is not None else ())
    ]
    default = model.default_tier
    return {
        "id": model.id,
        "display_name": model.display_name,
        "description": model.description,
        "aliases": list(model.aliases),
        "aspect_ratios": [{"ratio": name, "width": w, "height": h} for name, w, h in default.sizes],
        "resolutions": [
            {
                "name": tier.name,
                "price_per_image": format_amount(prices.image_price(tier.name)),
                "output_tokens": tier.output_tokens,
                "sizes": [{"ratio": name, "width": w, "height": h} for name, w, h in tier.sizes],
            }
            for tier in model.tiers
        ],
        "default_resolution": default.name,
        "max_input_images": model.max_input_images,
        "features": sorted(model.features),
        "diffusion": sorted(knobs),  # steps, guidance, negative_prompt: shown only when a deployment takes them
        "max_steps": max_steps,
        "deployments": deployments,
        "price_per_image": format_amount(prices.image_price(default.name)),
    }


def describe_request(job_id: str, spec_doc: dict[str, Any]) -> dict[str, Any]:
    """The caller's side of a stored job: its last user turn's text and images, and the conversation's length."""
    turns = [t for t in spec_doc.get("turns") or () if isinstance(t, dict)]
    asked: dict[str, Any] = next((t for t in reversed(turns) if t.get("role") == "user"), {"parts": []})
    parts = [p for p in asked.get("parts") or () if isinstance(p, dict)]
    return {
        "id": job_id,
        "prompt": "\n".join(str(p["text"]) for p in parts if "text" in p),
        "input_images": sum(1 for p in parts if "image" in p),
        "aspect_ratio": spec_doc.get("aspect_ratio"),
        "n": spec_doc.get("n", 1),
        "turns": len(turns),
    }


@router.get("/v1/playground/models")
async def list_models(request: Request, _: ApiKey = Depends(require_principal)) -> JSONResponse:
    svc = services_of(request)
    data = [describe_model(m, svc.router) for m in svc.catalog.models]
    return JSONResponse({"object": "list", "data": data})


@router.get("/v1/playground/jobs")
async def describe_jobs(
    request: Request,
    ids: str = Query(..., description="comma-separated job ids"),
    principal: ApiKey = Depends(require_principal),
) -> JSONResponse:
    wanted = list(dict.fromkeys(i.strip() for i in ids.split(",") if i.strip()))
    if not wanted or len(wanted) > MAX_IDS:
        raise InvalidRequest(f"ids must name 1 to {MAX_IDS} jobs.", field="ids")
    found: list[dict[str, Any]] = []
    async with services_of(request).uow() as uow:
        for job_id in wanted:
            job = await uow.jobs.get(job_id)
            # Another key's job is left out, exactly like one that does not exist: ids must not leak.
            if job is None or (job.key_id != principal.id and not principal.is_admin):
                continue
            doc = await uow.jobs.get_spec_doc(job_id)
            if doc is not None:
                found.append(describe_request(job_id, doc))
    return JSONResponse({"object": "list", "data": found})
