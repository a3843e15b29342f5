"""Alembic migrations of the imagegate database (a package so that installs ship env.py and the revisions)."""
