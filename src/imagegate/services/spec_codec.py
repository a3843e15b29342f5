"""Storing a ``JobSpec``: a JSON document for the database, its images in the object store.

Images are stored once by content hash (``inputs/<sha256>``), so a chat that re-sends its history does not
store the same picture again, and the job row stays small.
"""

from __future__ import annotations

import hashlib
from typing import Any

from imagegate.core.images import ImageInput
from imagegate.core.jobs import JobSpec, Modality, Part, Role, Turn
from imagegate.core.ports import ObjectStore

_INPUT_PREFIX = "inputs/"


def input_object_key(digest: str) -> str:
    """Where a spec's input image with this content hash is stored."""
    return _INPUT_PREFIX + digest


async def save_spec(spec: JobSpec, store: ObjectStore) -> dict[str, Any]:
    stored: set[str] = set()
    turns = []
    for turn in spec.turns:
        parts: list[dict[str, Any]] = []
        for part in turn.parts:
            if isinstance(part, str):
                parts.append({"text": part})
                continue
            digest = hashlib.sha256(part.data).hexdigest()
            if digest not in stored:
                key = _INPUT_PREFIX + digest
                if not await store.exists(key):
                    await store.put(key, part.data, content_type=part.mime_type)
                stored.add(digest)
            parts.append({"image": digest, "mime_type": part.mime_type})
        turns.append({"role": turn.role.value, "parts": parts})
    return {
        "model": spec.model,
        "turns": turns,
        "system_instruction": spec.system_instruction,
        "aspect_ratio": spec.aspect_ratio,
        "modalities": sorted(m.value for m in spec.modalities),
        "n": spec.n,
        "seed": spec.seed,
        "temperature": spec.temperature,
        "dialect": spec.dialect,
        "output_mime_type": spec.output_mime_type,
        "output_quality": spec.output_quality,
    }


async def load_spec(doc: dict[str, Any], store: ObjectStore) -> JobSpec:
    cache: dict[str, bytes] = {}
    turns = []
    for turn in doc["turns"]:
        parts: list[Part] = []
        for part in turn["parts"]:
            if "text" in part:
                parts.append(part["text"])
                continue
            digest = part["image"]
            if digest not in cache:
                cache[digest] = await store.get(_INPUT_PREFIX + digest)
            parts.append(ImageInput(data=cache[digest], mime_type=part["mime_type"]))
        turns.append(Turn(Role(turn["role"]), tuple(parts)))
    return JobSpec(
        model=doc["model"],
        turns=tuple(turns),
        system_instruction=doc.get("system_instruction"),
        aspect_ratio=doc.get("aspect_ratio"),
        modalities=frozenset(Modality(m) for m in doc.get("modalities", ["IMAGE", "TEXT"])),
        n=doc.get("n", 1),
        seed=doc.get("seed"),
        temperature=doc.get("temperature"),
        dialect=doc.get("dialect", "gemini"),
        output_mime_type=doc.get("output_mime_type", "image/png"),
        output_quality=doc.get("output_quality"),
    )
