"""Storing a ``JobSpec``: a JSON document for the database, its images in the object store.

Images are stored once by content hash (``inputs/<sha256>``), so a chat that re-sends its history does not
store the same picture again, and the job row stays small.
"""

from __future__ import annotations

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
        "model": spec.model,
        "turns": turns,
        "system_instruction": spec.system_instruction,
        "aspect_ratio": spec.aspect_ratio,
        "image_size": spec.image_size,
        "modalities": sorted(m.value for m in spec.modalities),
        "n": spec.n,
        "seed": spec.seed,
        "seed_drawn": spec.seed_drawn,
        "temperature": spec.temperature,
        "dialect": spec.dialect,
        "output_mime_type": spec.output_mime_type,
        "output_quality": spec.output_quality,
        "include_thoughts": spec.include_thoughts,
        "thinking_level": spec.thinking_level,
        "grounding": _grounding_doc(spec.grounding),
        "google": _google_doc(spec.google),
        "end_user": spec.end_user,
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
        model=doc["model"],
        turns=tuple(turns),
        system_instruction=doc.get("system_instruction"),
        aspect_ratio=doc.get("aspect_ratio"),
        image_size=doc.get("image_size"),
        modalities=frozenset(Modality(m) for m in doc.get("modalities", ["IMAGE", "TEXT"])),
        n=doc.get("n", 1),
        seed=doc.get("seed"),
        seed_drawn=doc.get("seed_drawn", False),
        temperature=doc.get("temperature"),
        dialect=doc.get("dialect", "gemini"),
        output_mime_type=doc.get("output_mime_type", "image/png"),
        output_quality=doc.get("output_quality"),
        include_thoughts=bool(doc.get("include_thoughts", False)),
        thinking_level=doc.get("thinking_level"),
        grounding=_grounding(doc.get("grounding")),
        google=_google(doc.get("google")),
        end_user=doc.get("end_user"),
    )


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
        "safety": [[rule.category, rule.threshold] for rule in options.safety],
        "top_p": options.top_p,
        "top_k": options.top_k,
        "max_output_tokens": options.max_output_tokens,
        "stop_sequences": list(options.stop_sequences),
        "presence_penalty": options.presence_penalty,
        "frequency_penalty": options.frequency_penalty,
        "media_resolution": options.media_resolution,
    }


def _google(doc: dict[str, Any] | None) -> GoogleOptions:
    if not doc:
        return GoogleOptions()
    return GoogleOptions(
        safety=tuple(SafetyRule(str(category), str(threshold)) for category, threshold in doc.get("safety", ())),
        top_p=doc.get("top_p"),
        top_k=doc.get("top_k"),
        max_output_tokens=doc.get("max_output_tokens"),
        stop_sequences=tuple(doc.get("stop_sequences", ())),
        presence_penalty=doc.get("presence_penalty"),
        frequency_penalty=doc.get("frequency_penalty"),
        media_resolution=doc.get("media_resolution"),
    )
