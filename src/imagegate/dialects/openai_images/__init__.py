"""The OpenAI Images dialect (``/v1/images/generations`` and ``/v1/images/edits``), with the AI/ML API's extensions.

``wire`` holds the pydantic request model, ``translate`` the pure request/response functions the HTTP routes
call (implemented in ``requests`` and ``responses``); the error bodies live in ``dialects.openai_common``.
"""
