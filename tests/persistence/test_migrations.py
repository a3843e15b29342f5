"""The shipped migrations build exactly the schema of ``tables.py``, once, however many processes ask."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.core.jobs import JobStatus
from imagegate.core.ports import UnitOfWorkFactory
from imagegate.persistence.db import (
    alembic_config,
    create_engine,
    current_revision,
    head_revision,
    upgrade_database,
)
from imagegate.persistence.tables import JOB_STATUSES, metadata

from .records import make_key

TABLES = {
    "api_keys",
    "jobs",
    "files",
    "webhooks",
    "idempotency_keys",
    "ledger",
    "playground_history",
    "playground_hidden_jobs",
    "uploaded_files",
    "batches",
}


def _table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _schema_differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


def _downgrade_to_base(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, "base")


async def test_upgrade_builds_the_schema_on_an_empty_database(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        assert await current_revision(engine) is None
        await upgrade_database(engine)
        assert await current_revision(engine) == head_revision() == "0012"
        async with engine.connect() as connection:
            assert await connection.run_sync(_table_names) == TABLES | {"alembic_version"}
    finally:
        await engine.dispose()


async def test_upgrading_again_changes_nothing(engine: AsyncEngine, uow_factory: UnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        await uow.keys.add(make_key("key_1"))
        await uow.commit()

    await upgrade_database(engine)

    assert await current_revision(engine) == head_revision()
    async with uow_factory() as uow:
        assert await uow.keys.get("key_1") == make_key("key_1")


async def test_head_matches_the_tables(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        assert await connection.run_sync(_schema_differences) == []


async def test_downgrade_to_base_and_back(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.run_sync(_downgrade_to_base)
        await connection.commit()
        assert await connection.run_sync(_table_names) <= {"alembic_version"}
    assert await current_revision(engine) is None

    await upgrade_database(engine)
    assert await current_revision(engine) == head_revision()


async def test_concurrent_upgrades_run_the_migrations_once(database_url: str) -> None:
    # Separate engines stand for separate processes starting at the same moment.
    await asyncio.gather(*(upgrade_database(database_url) for _ in range(3)))

    engine = create_engine(database_url)
    try:
        assert await current_revision(engine) == head_revision()
        async with engine.connect() as connection:
            assert await connection.run_sync(_schema_differences) == []
    finally:
        await engine.dispose()


def test_the_status_check_allows_exactly_the_job_statuses() -> None:
    # A new JobStatus needs a migration that widens ck_jobs_status; this test is the reminder.
    assert set(JOB_STATUSES) == {status.value for status in JobStatus}
