"""Storing a ``JobSpec``: a JSON document for the database, its images in the object store.

Scalar fields are written and read by name, so the document follows the dataclass. Images are stored once by
content hash (``inputs/<sha256>``), so a chat that re-sends its history does not
store the same picture again, and the job row stays small.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from typing import Any

from imagegate.core.images import ImageInput, decode_base64, encode_base64
from imagegate.core.jobs import (
    GoogleOptions,
    JobSpec,
    Modality,
    Part,
    PartInfo,
    Role,
    SafetyRule,
    SearchGrounding,
    Turn,
)
from imagegate.core.ports import ObjectStore

_INPUT_PREFIX = "inputs/"
# Fields stored in a shape of their own; every other field of JobSpec (and GoogleOptions) is a JSON scalar,
# stored and read back by its name, so a new scalar field needs no change here (tests/services hold it to that).
_SPEC_SHAPED = frozenset({"turns", "modalities", "grounding", "google"})
_GOOGLE_SHAPED = frozenset({"safety", "stop_sequences"})


def input_object_key(digest: str) -> str:
    """Where a spec's input image with this content hash is stored."""
    return _INPUT_PREFIX + digest


async def save_spec(spec: JobSpec, store: ObjectStore) -> dict[str, Any]:
    stored: set[str] = set()
    turns = []
    for turn in spec.turns:
        parts: list[dict[str, Any]] = []
        for index, part in enumerate(turn.parts):
            if isinstance(part, str):
                doc: dict[str, Any] = {"text": part}
            else:
                digest = hashlib.sha256(part.data).hexdigest()
                if digest not in stored:
                    key = _INPUT_PREFIX + digest
                    if not await store.exists(key):
                        await store.put(key, part.data, content_type=part.mime_type)
                    stored.add(digest)
                doc = {"image": digest, "mime_type": part.mime_type}
            info = turn.part_info(index)
            if info.thought:
                doc["thought"] = True
            if info.signature is not None:
                doc["signature"] = encode_base64(info.signature)
            parts.append(doc)
        turns.append({"role": turn.role.value, "parts": parts})
    return {
        **_scalars(spec, _SPEC_SHAPED),
        "turns": turns,
        "modalities": sorted(m.value for m in spec.modalities),
        "grounding": _grounding_doc(spec.grounding),
        "google": _google_doc(spec.google),
    }


async def load_spec(doc: dict[str, Any], store: ObjectStore) -> JobSpec:
    cache: dict[str, bytes] = {}
    turns = []
    for turn in doc["turns"]:
        parts: list[Part] = []
        infos: list[PartInfo] = []
        for part in turn["parts"]:
            signature = part.get("signature")
            infos.append(PartInfo(bool(part.get("thought")), decode_base64(signature) if signature else None))
            if "text" in part:
                parts.append(part["text"])
                continue
            digest = part["image"]
            if digest not in cache:
                cache[digest] = await store.get(_INPUT_PREFIX + digest)
            parts.append(ImageInput(data=cache[digest], mime_type=part["mime_type"]))
        marked = any(info != PartInfo() for info in infos)
        turns.append(Turn(Role(turn["role"]), tuple(parts), tuple(infos) if marked else ()))
    return JobSpec(
        **_scalar_fields(JobSpec, doc, _SPEC_SHAPED),
        turns=tuple(turns),
        modalities=frozenset(Modality(m) for m in doc.get("modalities", ["IMAGE", "TEXT"])),
        grounding=_grounding(doc.get("grounding")),
        google=_google(doc.get("google")),
    )


@functools.cache
def _scalar_names(cls: type, shaped: frozenset[str]) -> tuple[str, ...]:
    # dataclasses.fields() builds its tuple anew per call: a visible share of accepting a task, once per class here
    return tuple(f.name for f in dataclasses.fields(cls) if f.name not in shaped)


def _scalars(value: Any, shaped: frozenset[str]) -> dict[str, Any]:
    """The fields of dataclass ``value`` not in ``shaped``: JSON scalars, stored as they are."""
    return {name: getattr(value, name) for name in _scalar_names(value.__class__, shaped)}


def _scalar_fields(cls: Any, doc: dict[str, Any], shaped: frozenset[str]) -> dict[str, Any]:
    """Those fields of ``cls`` back from ``doc``; one a row written before the field existed lacks keeps its
    default."""
    return {name: doc[name] for name in _scalar_names(cls, shaped) if name in doc}


def _grounding_doc(grounding: SearchGrounding | None) -> dict[str, Any] | None:
    if grounding is None:
        return None
    return {
        "web": grounding.web,
        "images": grounding.images,
        "time_range": list(grounding.time_range) if grounding.time_range else None,
    }


def _grounding(doc: dict[str, Any] | None) -> SearchGrounding | None:
    if doc is None:
        return None
    time_range = doc.get("time_range")
    return SearchGrounding(
        web=bool(doc.get("web", True)),
        images=bool(doc.get("images", False)),
        time_range=(str(time_range[0]), str(time_range[1])) if time_range else None,
    )


def _google_doc(options: GoogleOptions) -> dict[str, Any] | None:
    if not options:
        return None  # most jobs set none: keep the row as it was before these options existed
    return {
        **_scalars(options, _GOOGLE_SHAPED),
        "safety": [[rule.category, rule.threshold] for rule in options.safety],
        "stop_sequences": list(options.stop_sequences),
    }


def _google(doc: dict[str, Any] | None) -> GoogleOptions:
    if not doc:
        return GoogleOptions()
    return GoogleOptions(
        **_scalar_fields(GoogleOptions, doc, _GOOGLE_SHAPED),
        safety=tuple(SafetyRule(str(category), str(threshold)) for category, threshold in doc.get("safety", ())),
        stop_sequences=tuple(doc.get("stop_sequences", ())),
    )
