"""What the OpenAI Images and Chat Completions dialects share: the ``{"error": {...}}`` body (``errors``) and the
wire helpers that word a bad field the way OpenAI does (``wire``).
"""
