"""The Gemini ``generateContent`` dialect: wire types, request translation, response and error rendering.

``wire`` holds the pydantic request models, ``translate`` the pure request/response functions the HTTP
routes call (implemented in ``requests`` and ``responses``), and ``errors`` the ``google.rpc.Status`` bodies.
"""
