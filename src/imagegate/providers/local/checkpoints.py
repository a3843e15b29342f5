"""What a checkpoint is, read without torch: the pipeline class its model_index.json names, if it is on disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from imagegate.providers.local.options import DiffusersOptions


def pipeline_class_on_disk(source: str, options: DiffusersOptions) -> str | None:
    """``_class_name`` of the checkpoint's model_index.json from a directory or the Hugging Face cache.

    None when it is not on this machine yet (nothing is downloaded here) or cannot be read; the worker that
    loads the model reports a precise error then.
    """
    index_file = _index_file(source, options)
    if index_file is None:
        return None
    try:
        index: Any = json.loads(index_file.read_text())
    except (OSError, ValueError):
        return None
    name = index.get("_class_name") if isinstance(index, dict) else None
    return name if isinstance(name, str) else None


def _index_file(source: str, options: DiffusersOptions) -> Path | None:
    path = Path(source).expanduser()
    if path.is_dir():
        candidate = path / "model_index.json"
        return candidate if candidate.is_file() else None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # the local extra is not installed: nothing can be cached either
        return None
    try:
        found = try_to_load_from_cache(
            source, "model_index.json", cache_dir=options.cache_dir, revision=options.revision
        )
    except ValueError:  # not a valid repository id
        return None
    return Path(found) if isinstance(found, str) else None
