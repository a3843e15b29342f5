"""Connects to the database chosen by URL (SQLite or PostgreSQL) and brings its schema to the newest revision.

``create_engine`` turns a user's URL into a configured ``AsyncEngine`` (async driver, SQLite pragmas), and
``upgrade_database`` runs the Alembic migrations shipped inside the package, serialised so that several
processes starting at once are safe.
"""

from __future__ import annotations

import importlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

_SQLITE_PRAGMAS = (
    # Wait for a competing writer instead of failing: under a burst on a small machine (10,000 tasks on two
    # cores, see docs/benchmarks.md) 5 s was not always enough, and "database is locked" failed requests.
    "PRAGMA busy_timeout=30000",
    "PRAGMA foreign_keys=ON",  # SQLite ignores foreign keys unless asked, per connection
    "PRAGMA synchronous=NORMAL",  # durable enough under WAL, and much faster than FULL
)

# Any fixed 64-bit number, the same in every imagegate process: one migration at a time per database.
_PG_MIGRATION_LOCK_KEY = 0x696D67676174650A

# UPDATE ... RETURNING, which claim() relies on, arrived in SQLite 3.35.
_MIN_SQLITE_VERSION = (3, 35, 0)


def database_url(url: str) -> URL:
    """``url`` with the async driver filled in: sqlite -> aiosqlite, postgres(ql) -> asyncpg."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.drivername == "sqlite":
            parsed = parsed.set(drivername="sqlite+aiosqlite")
        if parsed.database and parsed.database.startswith("~"):
            parsed = parsed.set(database=str(Path(parsed.database).expanduser()))
        return parsed
    if backend in ("postgres", "postgresql"):
        _, _, driver = parsed.drivername.partition("+")
        # SQLAlchemy dropped the "postgres" alias that Heroku-style URLs still use.
        parsed = parsed.set(drivername=f"postgresql+{driver or 'asyncpg'}")
        if parsed.drivername == "postgresql+asyncpg" and "sslmode" in parsed.query and "ssl" not in parsed.query:
            # libpq spells it sslmode (as hosted providers' URLs do); asyncpg's own parameter is ssl.
            parsed = parsed.update_query_dict({"ssl": parsed.query["sslmode"]}).difference_update_query(["sslmode"])
        return parsed
    raise ValueError(
        f"unsupported database URL {parsed.render_as_string(hide_password=True)!r}: "
        "use sqlite:///PATH or postgresql://USER@HOST/DB"
    )


_POOL_WAIT_S = 300.0


def json_text(value: Any) -> str:
    """A JSON column's text: orjson's, several times faster than ``json.dumps`` (a spec is written per job)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # what orjson cannot write (an integer past 64 bits) the standard library can
        return json.dumps(value)


#: How every engine (async and inline) writes and reads JSON columns.
JSON_CODEC: dict[str, Any] = {"json_serializer": json_text, "json_deserializer": orjson.loads}


def create_engine(url: str, **engine_options: Any) -> AsyncEngine:
    """An ``AsyncEngine`` for ``url``; for SQLite the file's folder is created and every connection tuned."""
    parsed = database_url(url)
    engine_options = {**JSON_CODEC, **engine_options}
    if parsed.get_backend_name() == "sqlite":
        return _create_sqlite_engine(parsed, engine_options)
    if parsed.drivername == "postgresql+asyncpg":
        _require_asyncpg()
    engine_options.setdefault("pool_pre_ping", True)
    # A burst of finishing jobs (thousands of slots ending together) queues for the pool's connections; each
    # transaction is milliseconds, so waiting beats SQLAlchemy's 30 s default, which failed the finish of jobs
    # whose images were made (they ran again after their lease) in the 10,000-held fleet benchmark.
    engine_options.setdefault("pool_timeout", _POOL_WAIT_S)
    return _create_async_engine(parsed, **engine_options)


def alembic_config() -> Config:
    """Alembic's configuration, built in code so that it works from an installed package."""
    config = Config()
    # Config values pass through ConfigParser interpolation, where a bare % is an error.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return config


def head_revision() -> str | None:
    """The newest migration shipped with this version of imagegate."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The migration the database is at; None for an empty database."""
    async with engine.connect() as connection:
        return await connection.run_sync(_current_revision_sync)


async def upgrade_database(engine_or_url: AsyncEngine | str, revision: str = "head") -> None:
    """Run the migrations up to ``revision``; a database already there is left untouched."""
    if isinstance(engine_or_url, AsyncEngine):
        await _upgrade(engine_or_url, revision)
        return
    engine = create_engine(engine_or_url)
    try:
        await _upgrade(engine, revision)
    finally:
        await engine.dispose()


async def lock_for_migrations(connection: AsyncConnection) -> None:
    """Begin a transaction that no other migrating process can enter until it ends (also used by env.py)."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK_KEY})
    elif dialect == "sqlite":
        # The write lock up front: a second process waits here (busy_timeout) and then finds the work done.
        await connection.exec_driver_sql("BEGIN IMMEDIATE")


async def _upgrade(engine: AsyncEngine, revision: str) -> None:
    async with engine.connect() as connection:
        await lock_for_migrations(connection)
        await connection.run_sync(_upgrade_sync, revision)
        await connection.commit()


def _upgrade_sync(connection: Connection, revision: str) -> None:
    config = alembic_config()
    # env.py runs on this connection, inside the transaction (and lock) already open on it.
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def _current_revision_sync(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _create_sqlite_engine(url: URL, engine_options: dict[str, Any]) -> AsyncEngine:
    if sqlite3.sqlite_version_info < _MIN_SQLITE_VERSION:
        raise RuntimeError(
            f"SQLite {sqlite3.sqlite_version} is too old: imagegate needs 3.35 or newer (or use PostgreSQL)"
        )
    if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        # SQLAlchemy's default pool keeps 5 connections and closes every extra one on return: under a burst each
        # request opened a fresh one (a thread, the file, the pragmas). SQLite connections are cheap to keep.
        engine_options.setdefault("pool_size", 32)
        engine_options.setdefault("max_overflow", 32)
        engine_options.setdefault("pool_timeout", _POOL_WAIT_S)  # as for PostgreSQL: a burst waits, never fails
    # The driver's own transaction handling stays: Python's sqlite3 begins a transaction only before the first
    # write, so a competing writer waits (busy_timeout) there, instead of failing with SQLITE_BUSY as it would
    # when upgrading a read transaction begun earlier. Races are settled by conditional UPDATEs, not by reads.
    engine = _create_async_engine(url, **engine_options)
    event.listen(engine.sync_engine, "connect", set_sqlite_pragmas)
    return engine


def set_sqlite_pragmas(dbapi_connection: Any, _connection_record: Any) -> None:
    """Tune a new SQLite connection (a ``connect`` event listener), and make the file WAL if it is not yet."""
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
        _use_wal(cursor)
    finally:
        cursor.close()


def _use_wal(cursor: Any) -> None:
    """Switch the file to WAL (readers never block the writer, nor it them); it stays so once done."""
    cursor.execute("PRAGMA journal_mode")
    if cursor.fetchone()[0] == "wal":
        return
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError:
        # Another connection is converting this new file right now, and the switch does not honour
        # busy_timeout; BEGIN IMMEDIATE does, so it waits until the other one is done, then the switch is a no-op.
        cursor.execute("BEGIN IMMEDIATE")
        cursor.execute("ROLLBACK")
        cursor.execute("PRAGMA journal_mode=WAL")


def _require_asyncpg() -> None:
    try:
        importlib.import_module("asyncpg")
    except ImportError as exc:
        raise ModuleNotFoundError(
            "PostgreSQL support needs the asyncpg driver: pip install 'imagegate[postgres]'", name="asyncpg"
        ) from exc
