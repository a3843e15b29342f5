"""Shared database fixtures: every database test runs once on SQLite and once on PostgreSQL.

``database_url`` is an empty database of each backend (a temp file; a fresh, uniquely named PostgreSQL database
dropped afterwards), ``engine`` the same database migrated to head, and ``uow_factory`` units of work over it.
PostgreSQL runs when ``IMAGEGATE_TEST_POSTGRES_URL`` names a server; otherwise its cases are skipped, except
under CI (env ``CI`` set), where a missing or unreachable server fails them instead.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from backend_servers import MotoS3Server, RedisServer
from imagegate.core.ports import UnitOfWorkFactory
from imagegate.persistence.db import create_engine, upgrade_database
from imagegate.persistence.uow import unit_of_work_factory

POSTGRES_URL_ENV = "IMAGEGATE_TEST_POSTGRES_URL"


def _asyncpg_dsn(url: str) -> str:
    """A libpq-style DSN for asyncpg itself, whatever spelling of the URL the user gave."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _asyncpg() -> Any:
    # Imported only when PostgreSQL tests run, so the suite still loads where the driver is not installed.
    return importlib.import_module("asyncpg")


async def _probe_postgres(url: str) -> None:
    connection = await _asyncpg().connect(_asyncpg_dsn(url), timeout=5)
    await connection.close()


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """The server's URL for creating test databases; skips (or fails under CI) when there is none."""
    url = os.environ.get(POSTGRES_URL_ENV)
    in_ci = bool(os.environ.get("CI"))
    if not url:
        reason = f"set {POSTGRES_URL_ENV} to run PostgreSQL tests"
        if in_ci:
            pytest.fail(f"CI is set but {POSTGRES_URL_ENV} is not: {reason}", pytrace=False)
        pytest.skip(reason)
    # A private loop: asyncio.run() would also reset the thread's current loop, which pytest-asyncio manages.
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(_probe_postgres(url))
    except Exception as exc:
        shown = make_url(url).render_as_string(hide_password=True)
        if in_ci:
            pytest.fail(f"PostgreSQL at {shown} is unreachable: {exc!r}", pytrace=False)
        pytest.skip(f"PostgreSQL at {shown} is unreachable ({exc!r}); fix {POSTGRES_URL_ENV} to run these tests")
    finally:
        loop.close()
    return url


@pytest.fixture
async def postgres_database_url(postgres_admin_url: str) -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"imagegate_test_{uuid.uuid4().hex[:16]}"
    # CREATE/DROP DATABASE cannot run in a transaction; a bare asyncpg connection is in autocommit.
    admin = await _asyncpg().connect(_asyncpg_dsn(postgres_admin_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield make_url(postgres_admin_url).set(database=name).render_as_string(hide_password=False)
        force = " WITH (FORCE)" if admin.get_server_version().major >= 13 else ""
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"{force}')
    finally:
        await admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database, once per backend."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'imagegate.db'}"
    url: str = request.getfixturevalue("postgres_database_url")
    return url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """The ``database_url`` database migrated to head."""
    engine = create_engine(database_url)
    try:
        await upgrade_database(engine)
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def uow_factory(engine: AsyncEngine) -> UnitOfWorkFactory:
    return unit_of_work_factory(engine)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3Server]:
    """One moto S3 server for the session (tests that stop a server start their own ``MotoS3Server``)."""
    server = MotoS3Server(tmp_path_factory.mktemp("moto"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private redis-server for the session, on its own port (never the machine's shared 6379)."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()
