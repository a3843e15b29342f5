"""Local stand-ins for upstream APIs, served over real loopback HTTP for the provider tests.

``loopback.serve`` runs any ASGI app (Starlette here) with uvicorn in a background thread on a free port;
each fake upstream lives in a module of its own and records what reached it.
"""
