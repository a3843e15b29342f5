"""The OpenAI Images dialect's translation surface: what the HTTP routes call, and nothing that does I/O.

Requests are parsed and turned into a ``JobSpec`` in ``requests``; finished jobs are rendered in ``responses``.
This module only gathers them so routes import one place.
"""

from __future__ import annotations

from imagegate.dialects.openai_images.requests import (
    OutputOptions,
    check_input_limits,
    fields_for,
    output_options,
    parse_edit_form,
    parse_edit_json,
    parse_generation_request,
    to_job_spec,
)
from imagegate.dialects.openai_images.responses import (
    RenderedImage,
    hosted_images,
    inline_images,
    render_images_response,
    render_stream_events,
)
from imagegate.dialects.openai_images.wire import ImagesRequest

__all__ = [
    "ImagesRequest",
    "OutputOptions",
    "RenderedImage",
    "check_input_limits",
    "fields_for",
    "hosted_images",
    "inline_images",
    "output_options",
    "parse_edit_form",
    "parse_edit_json",
    "parse_generation_request",
    "render_images_response",
    "render_stream_events",
    "to_job_spec",
]
