"""Alembic's environment for imagegate: runs the migrations on the connection it is given, or on a URL.

``imagegate.persistence.db.upgrade_database`` hands over an open connection (already locked against other
migrating processes) through ``config.attributes["connection"]``; the developers' ``alembic`` command line
passes a URL (``-x url=...`` or ``IMAGEGATE_DATABASE_URL``) instead. Alembic executes this file as a script.
"""

from __future__ import annotations

import asyncio
import logging.config
import os

from alembic import context
from sqlalchemy import Connection

from imagegate.persistence.db import create_engine, database_url, lock_for_migrations
from imagegate.persistence.tables import metadata


def run_on_connection(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite can barely ALTER a table; batch mode rebuilds it, so later migrations work there too.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_on_url(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            await lock_for_migrations(connection)
            await connection.run_sync(run_on_connection)
            await connection.commit()
    finally:
        await engine.dispose()


def run_offline(url: str) -> None:
    context.configure(url=database_url(url), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def command_line_url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get("IMAGEGATE_DATABASE_URL")
    if not url:
        raise SystemExit("give the database as: alembic -x url=sqlite:///PATH ... (or set IMAGEGATE_DATABASE_URL)")
    return url


def main() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        run_on_connection(connection)
        return
    # Only the command line configures logging: doing it in-process would reset the application's loggers.
    if config.config_file_name is not None:
        logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)
    if context.is_offline_mode():
        run_offline(command_line_url())
    else:
        asyncio.run(run_on_url(command_line_url()))


main()
