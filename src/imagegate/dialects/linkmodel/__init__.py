"""The linkmodel-style task API: ``POST /api/v1/image-generation`` and ``GET /api/v1/tasks/{task_id}``.

``wire`` is the request body exactly as the linkmodel OpenAPI seed defines it, ``translate`` the pure mapping to a
``JobSpec`` and from a ``Job`` to the ``{code, data, msg, request_id}`` envelope, ``errors`` the seed's 400/401/500
bodies, and ``routes`` the thin HTTP glue. A task is an ordinary imagegate job: its ``task_id`` is the job id.
"""
