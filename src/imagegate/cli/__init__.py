"""The ``imagegate`` command: serve, keys, generate, settings, db."""
