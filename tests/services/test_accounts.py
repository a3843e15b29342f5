"""API keys: creation, authentication, revocation, and refusal of malformed keys without a query."""

from __future__ import annotations

import pytest

from imagegate.core.keys import generate_key, hash_key, is_well_formed
from imagegate.errors import InvalidApiKey, MissingApiKey, NotFound
from imagegate.services import accounts


def test_generated_keys_are_well_formed_and_distinct() -> None:
    keys = {generate_key() for _ in range(200)}
    assert len(keys) == 200
    assert all(k.startswith("ig_") and is_well_formed(k) for k in keys)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda k: k[:-1],
        lambda k: k + "x",
        lambda k: k[:10] + ("A" if k[10] != "A" else "B") + k[11:],
        lambda k: "sk_" + k[3:],
        lambda k: k[:-1] + "!",
    ],
)
def test_a_typo_breaks_the_checksum(mangle) -> None:  # type: ignore[no-untyped-def]
    assert not is_well_formed(mangle(generate_key()))


async def test_create_authenticate_revoke(make_services) -> None:  # type: ignore[no-untyped-def]
    svc = make_services()
    created = await accounts.create_key(svc, name="alice", credits=5_000_000)
    assert created.record.key_hash == hash_key(created.key) and created.key not in repr(created.record)
    principal = await accounts.authenticate(svc, created.key)
    assert principal.id == created.record.id and principal.credits == 5_000_000

    await accounts.revoke_key(svc, created.record.id)
    with pytest.raises(InvalidApiKey):
        await accounts.authenticate(svc, created.key)
    with pytest.raises(NotFound):
        await accounts.revoke_key(svc, created.record.id)


async def test_unknown_but_well_formed_key_is_invalid(make_services) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidApiKey):
        await accounts.authenticate(make_services(), generate_key())


async def test_missing_and_malformed_keys_never_reach_the_database(make_services) -> None:  # type: ignore[no-untyped-def]
    svc = make_services()

    def no_database():  # type: ignore[no-untyped-def]
        raise AssertionError("the database was queried")

    svc.uow = no_database
    with pytest.raises(MissingApiKey):
        await accounts.authenticate(svc, None)
    with pytest.raises(InvalidApiKey):
        await accounts.authenticate(svc, "ig_not-a-key")
    key = generate_key()
    with pytest.raises(InvalidApiKey):
        await accounts.authenticate(svc, key[:-1] + ("0" if key[-1] != "0" else "1"))


async def test_first_admin_key_is_made_once(make_services) -> None:  # type: ignore[no-untyped-def]
    svc = make_services()
    first = await accounts.ensure_admin_key(svc)
    assert first is not None and first.record.is_admin
    assert await accounts.ensure_admin_key(svc) is None
    assert [k.name for k in await accounts.list_keys(svc)] == ["admin"]
