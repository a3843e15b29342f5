"""The Gemini dialect's translation surface: what the HTTP routes call, and nothing that does I/O.

Requests are parsed and turned into a ``JobSpec`` in ``requests``; finished jobs, token counts and models are
rendered in ``responses``. This module only gathers them so routes import one place.
"""

from __future__ import annotations

from imagegate.dialects.gemini.requests import (
    file_references,
    parse_count_tokens_request,
    parse_generate_request,
    to_job_spec,
)
from imagegate.dialects.gemini.responses import (
    render_count_tokens,
    render_model,
    render_model_list,
    render_response,
    render_stream_chunks,
)

__all__ = [
    "file_references",
    "parse_count_tokens_request",
    "parse_generate_request",
    "render_count_tokens",
    "render_model",
    "render_model_list",
    "render_response",
    "render_stream_chunks",
    "to_job_spec",
]
