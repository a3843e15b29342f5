"""Engines from URLs: the async driver is filled in, SQLite connections are tuned, a missing driver is explained."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from imagegate.persistence.db import create_engine, database_url, json_text


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///relative.db", "sqlite+aiosqlite:///relative.db"),
        ("sqlite:////abs/imagegate.db", "sqlite+aiosqlite:////abs/imagegate.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("postgres://u:p@db:5432/ig", "postgresql+asyncpg://u:p@db:5432/ig"),
        ("postgresql://u@db/ig", "postgresql+asyncpg://u@db/ig"),
        ("postgresql+asyncpg://u@db/ig", "postgresql+asyncpg://u@db/ig"),
        ("postgres+asyncpg://u@db/ig", "postgresql+asyncpg://u@db/ig"),
        ("postgres://u@db/ig?sslmode=require", "postgresql+asyncpg://u@db/ig?ssl=require"),
    ],
)
def test_database_url_names_the_async_driver(given: str, expected: str) -> None:
    assert database_url(given).render_as_string(hide_password=False) == expected


def test_home_relative_sqlite_path_is_expanded() -> None:
    parsed = database_url("sqlite:///~/imagegate/imagegate.db")
    assert parsed.database == str(Path("~/imagegate/imagegate.db").expanduser())


def test_unsupported_database_is_refused_without_showing_the_password() -> None:
    with pytest.raises(ValueError, match="unsupported database URL") as caught:
        database_url("mysql://user:secret@db/ig")
    assert "secret" not in str(caught.value)


def test_missing_asyncpg_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "asyncpg", None)  # makes `import asyncpg` fail
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'imagegate\[postgres\]'"):
        create_engine("postgres://u@db/ig")


async def test_sqlite_engine_creates_the_folder_and_tunes_every_connection(tmp_path: Path) -> None:
    path = tmp_path / "deeper" / "still" / "imagegate.db"
    engine = create_engine(f"sqlite:///{path}")
    try:
        assert path.parent.is_dir()
        async with engine.connect() as first, engine.connect() as second:
            for connection in (first, second):
                pragmas = {
                    name: (await connection.exec_driver_sql(f"PRAGMA {name}")).scalar_one()
                    for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
                }
                assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 30000, "synchronous": 1}
    finally:
        await engine.dispose()


async def test_in_memory_sqlite_works() -> None:
    engine = create_engine("sqlite://")
    try:
        async with engine.connect() as connection:
            assert (await connection.execute(text("SELECT 1"))).scalar_one() == 1
    finally:
        await engine.dispose()


@pytest.mark.parametrize("url", ["postgresql://user@localhost/none", "sqlite:///{home}/imagegate.db"])
def test_a_burst_waits_for_a_pooled_connection_instead_of_failing_after_30_s(url: str, tmp_path: Path) -> None:
    """Thousands of jobs finishing together queue for the pool; SQLAlchemy's 30 s default failed their finish."""
    engine = create_engine(url.format(home=tmp_path))
    assert engine.pool.timeout() == 300  # type: ignore[attr-defined]


async def test_json_columns_round_trip_what_json_can_hold(tmp_path: Path) -> None:
    """orjson writes them; an integer past 64 bits (which orjson refuses) still goes in, through json."""
    from sqlalchemy import JSON, Column, MetaData, Table, insert, select

    docs = Table("docs", MetaData(), Column("doc", JSON))
    engine = create_engine(f"sqlite:///{tmp_path / 'json.db'}")
    document = {"seed": 2**70, "text": "naïve ☃", "nested": [1, 2.5, None, True], "7": "a key that was an int"}
    try:
        async with engine.begin() as connection:
            await connection.run_sync(docs.metadata.create_all)
            await connection.execute(insert(docs), [{"doc": document}, {"doc": {7: "int key"}}])
        async with engine.connect() as connection:
            stored = (await connection.execute(select(docs.c.doc))).scalars().all()
    finally:
        await engine.dispose()
    assert stored == [document, {"7": "int key"}]
    assert json_text({"a": [1, "b"]}) == '{"a":[1,"b"]}'
