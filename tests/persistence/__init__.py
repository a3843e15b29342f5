"""Tests of the SQL persistence adapter, on SQLite and PostgreSQL alike."""
