"""Submission takes one request from the key's quota, after validation (a malformed request costs none)."""

from __future__ import annotations

import pytest

from imagegate.errors import InvalidRequest, RateLimited
from imagegate.services import accounts
from imagegate.services.submit import submit_job
from imagegate.sharedstate import KeyQuota

from .conftest import text_spec


async def test_submit_applies_the_quota_after_validation(make_services) -> None:  # type: ignore[no-untyped-def]
    svc = make_services()
    svc.limiter = KeyQuota(1)
    principal = (await accounts.create_key(svc, name="q")).record
    with pytest.raises(InvalidRequest, match="not supported"):
        await submit_job(svc, principal, text_spec(aspect_ratio="1:4"))  # refused: costs no quota
    await submit_job(svc, principal, text_spec())
    with pytest.raises(RateLimited, match="quota of 1 requests per minute"):
        await submit_job(svc, principal, text_spec())
