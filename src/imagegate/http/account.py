"""Account, usage and admin endpoints: ``/v1/account``, ``/v1/usage`` (with key names), ``/v1/admin/keys`` and the
CSV exports ``/v1/admin/usage.csv`` and ``/v1/admin/ledger.csv`` (admin keys only)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from imagegate.core.money import format_amount, parse_amount
from imagegate.core.ports import ApiKey
from imagegate.errors import InvalidRequest, PermissionDenied
from imagegate.http.auth import require_principal
from imagegate.http.deps import mark_dialect, services_of
from imagegate.http.openapi_bodies import EMPTY_BODY
from imagegate.services import accounts
from imagegate.services.usage import account, ledger_entries, usage

router = APIRouter(dependencies=[Depends(mark_dialect("openai"))], tags=["account"])


def _key(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "admin": key.is_admin,
        "metered": key.metered,
        "balance": format_amount(key.credits) if key.metered else None,
        "created_at": int(key.created_at.timestamp()),
        "revoked_at": int(key.revoked_at.timestamp()) if key.revoked_at else None,
    }


@router.get("/v1/account")
async def get_account(request: Request, principal: ApiKey = Depends(require_principal)) -> JSONResponse:
    found = await account(services_of(request), principal)
    return JSONResponse(
        {
            "object": "account",
            **_key(found.key),
            "held": format_amount(found.held),
            "spent": format_amount(found.spent),
        }
    )


@router.get("/v1/usage")
async def get_usage(
    request: Request,
    days: int = Query(30, ge=1, le=366),
    key_id: str | None = Query(None, description="admins: one key only"),
    principal: ApiKey = Depends(require_principal),
) -> JSONResponse:
    svc = services_of(request)
    rows = await usage(svc, principal, since=svc.clock() - timedelta(days=days), key_id=key_id)
    names = await _key_names(request, principal)
    return JSONResponse(
        {
            "object": "list",
            "data": [
                {
                    "date": row.day,
                    "model": row.model,
                    "key_id": row.key_id,
                    "key_name": names.get(row.key_id),
                    "requests": row.requests,
                    "images": row.images,
                    "input_tokens": row.input_tokens,
                    "output_tokens": row.output_tokens,
                    "spend": format_amount(row.spend),
                }
                for row in rows
            ],
        }
    )


async def _key_names(request: Request, principal: ApiKey) -> dict[str, str]:
    if not principal.is_admin:
        return {principal.id: principal.name}
    return {key.id: key.name for key in await accounts.list_keys(services_of(request))}


def _csv(header: list[str], rows: list[list[object]], filename: str) -> Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def require_admin(request: Request) -> ApiKey:
    principal = await require_principal(request)
    if not principal.is_admin:
        raise PermissionDenied("This endpoint needs an admin key.")
    return principal


class NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    credits: str | None = None
    admin: bool = False


class Grant(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: str


def _amount(text: str, field: str) -> int:
    try:
        return parse_amount(text)
    except ValueError as exc:
        raise InvalidRequest(str(exc), field=field) from exc


@router.post("/v1/admin/keys")
async def create_key(body: NewKey, request: Request, _: ApiKey = Depends(require_admin)) -> JSONResponse:
    credits = _amount(body.credits, "credits") if body.credits is not None else None
    created = await accounts.create_key(services_of(request), name=body.name, credits=credits, is_admin=body.admin)
    return JSONResponse({**_key(created.record), "key": created.key})


@router.get("/v1/admin/keys")
async def list_keys(request: Request, _: ApiKey = Depends(require_admin)) -> JSONResponse:
    keys = await accounts.list_keys(services_of(request))
    return JSONResponse({"object": "list", "data": [_key(k) for k in keys]})


@router.post("/v1/admin/keys/{key_id}/revoke", openapi_extra=EMPTY_BODY)
async def revoke_key(key_id: str, request: Request, _: ApiKey = Depends(require_admin)) -> JSONResponse:
    await accounts.revoke_key(services_of(request), key_id)
    return JSONResponse({"id": key_id, "revoked": True})


@router.post("/v1/admin/keys/{key_id}/credits")
async def grant(key_id: str, body: Grant, request: Request, _: ApiKey = Depends(require_admin)) -> JSONResponse:
    balance = await accounts.add_credits(services_of(request), key_id, _amount(body.amount, "amount"))
    return JSONResponse({"id": key_id, "balance": format_amount(balance)})


@router.get("/v1/admin/usage.csv")
async def usage_csv(
    request: Request, days: int = Query(30, ge=1, le=366), principal: ApiKey = Depends(require_admin)
) -> Response:
    svc = services_of(request)
    rows = await usage(svc, principal, since=svc.clock() - timedelta(days=days))
    names = await _key_names(request, principal)
    header = ["date", "model", "key_id", "key_name", "requests", "images", "input_tokens", "output_tokens", "spend"]
    body = [
        [
            r.day,
            r.model,
            r.key_id,
            names.get(r.key_id, ""),
            r.requests,
            r.images,
            r.input_tokens,
            r.output_tokens,
            format_amount(r.spend),
        ]
        for r in rows
    ]
    return _csv(header, body, f"imagegate-usage-{days}d.csv")


@router.get("/v1/admin/ledger.csv")
async def ledger_csv(
    request: Request, days: int = Query(30, ge=1, le=366), principal: ApiKey = Depends(require_admin)
) -> Response:
    svc = services_of(request)
    entries = await ledger_entries(svc, principal, since=svc.clock() - timedelta(days=days))
    names = await _key_names(request, principal)
    header = [
        "created_at",
        "kind",
        "key_id",
        "key_name",
        "job_id",
        "model",
        "amount",
        "balance_after",
        "images",
        "input_tokens",
        "output_tokens",
        "id",
    ]
    body = [
        [
            e.created_at.isoformat(timespec="seconds"),
            e.kind,
            e.key_id,
            names.get(e.key_id, ""),
            e.job_id or "",
            e.model or "",
            format_amount(e.amount),
            "" if e.balance_after is None else format_amount(e.balance_after),
            e.images,
            e.input_tokens,
            e.output_tokens,
            e.id,
        ]
        for e in entries
    ]
    return _csv(header, body, f"imagegate-ledger-{days}d.csv")
