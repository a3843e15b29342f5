"""The SQL persistence adapter: the core's repositories and unit of work on SQLite or PostgreSQL.

Build it with ``create_engine(url)``, bring the schema up to date with ``await upgrade_database(engine)``,
and hand ``unit_of_work_factory(engine)`` to the services (see ``db.py`` and ``uow.py``).
"""
