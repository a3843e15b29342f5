"""Where ``generate`` writes its images: ``-o x.png`` is x.png for one image and x-1.png, x-2.png… for more;
a folder (or no ``-o``) gets ``imagegate-<time>-<i>.<ext>`` files. The format follows the file's suffix."""

from __future__ import annotations

import time
from pathlib import Path

from imagegate.cli.failures import EXIT_USAGE, fail

IMAGE_SUFFIXES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}
_SUFFIX_OF = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}


def mime_for_suffix(path: Path) -> str:
    return IMAGE_SUFFIXES.get(path.suffix.lower(), "image/png")


def plan_outputs(out: Path | None, count: int, mime: str, *, mimes: list[str] | None = None) -> list[Path]:
    """The files ``count`` images go to; refuses (usage error) an ``out`` that cannot be used."""
    kinds = mimes or [mime] * count
    if out is not None and out.suffix.lower() in IMAGE_SUFFIXES and not out.is_dir():
        if out.parent.exists() and not out.parent.is_dir():
            fail(f"cannot write {out}: {out.parent} is not a folder", code=EXIT_USAGE, hint="check -o")
        if count == 1:
            return [out]
        return [out.with_name(f"{out.stem}-{i}{out.suffix}") for i in range(1, count + 1)]
    if out is not None and out.exists() and not out.is_dir():
        fail(
            f"cannot write into {out}: it is a file",
            code=EXIT_USAGE,
            hint="give -o a folder or an image name like x.png",
        )
    folder = out or Path.cwd()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return [folder / f"imagegate-{stamp}-{i}{_SUFFIX_OF.get(kind, '.png')}" for i, kind in enumerate(kinds, start=1)]
