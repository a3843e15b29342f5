"""Tiny random-weight checkpoints of every family (built once per session) and providers serving them on the CPU.

Each provider starts real worker processes that load the checkpoints with ``from_pretrained``; they are shared
by the tests of a session, because starting one costs a few seconds of imports. ``HF_HUB_OFFLINE`` is set for
the workers too, so a test that tried to download anything would fail instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from imagegate.providers.local.provider import DiffusersProvider

os.environ["HF_HUB_OFFLINE"] = "1"  # inherited by every worker process started below


def needs_local_extra() -> None:
    """Skip unless torch and diffusers are installed (the ``local`` extra)."""
    pytest.importorskip(
        "torch", reason="the diffusers provider's tests need the local extra: pip install -e '.[local]'"
    )
    pytest.importorskip("diffusers", reason="the diffusers provider's tests need the local extra")


@dataclass(frozen=True)
class Checkpoints:
    sd_turbo: str
    flux2_klein: str
    qwen_edit: str
    qwen_t2i: str  # the same weights declared as a plain Qwen-Image (text-to-image) checkpoint


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Checkpoints:
    needs_local_extra()
    import tiny_pipelines

    root = tmp_path_factory.mktemp("checkpoints")
    qwen_edit = tiny_pipelines.qwen_image_edit_plus(root / "qwen-edit")
    qwen_t2i = root / "qwen-t2i"
    shutil.copytree(qwen_edit, qwen_t2i)
    shutil.rmtree(qwen_t2i / "processor")
    index = json.loads((qwen_t2i / "model_index.json").read_text())
    index["_class_name"] = "QwenImagePipeline"
    del index["processor"]
    (qwen_t2i / "model_index.json").write_text(json.dumps(index))
    return Checkpoints(
        sd_turbo=str(tiny_pipelines.sd_turbo(root / "sd-turbo")),
        flux2_klein=str(tiny_pipelines.flux2_klein(root / "flux2-klein")),
        qwen_edit=str(qwen_edit),
        qwen_t2i=str(qwen_t2i),
    )


def _provider(**options: Any) -> Iterator[DiffusersProvider]:
    needs_local_extra()
    provider = DiffusersProvider.from_options({"devices": ["cpu"], "cpu_threads": 1, **options})
    yield provider
    asyncio.run(provider.aclose())


@pytest.fixture(scope="session")
def sd() -> Iterator[DiffusersProvider]:
    """SD-Turbo at 64 px, 2 steps; same-shape requests within 300 ms run as one batch."""
    yield from _provider(resolution=64, max_batch=4, batch_window_ms=300)


@pytest.fixture(scope="session")
def sd_slow() -> Iterator[DiffusersProvider]:
    """SD-Turbo at 128 px and 50 steps: slow enough to cancel mid-way; one running and one waiting at most."""
    yield from _provider(resolution=128, steps=50, max_batch=1, queue_size=1)


@pytest.fixture(scope="session")
def sd_large() -> Iterator[DiffusersProvider]:
    """SD-Turbo at 256 px, one step: big enough for the invisible watermark."""
    yield from _provider(resolution=256, steps=1)


@pytest.fixture(scope="session")
def flux2() -> Iterator[DiffusersProvider]:
    yield from _provider(resolution=32, steps=2)


@pytest.fixture(scope="session")
def qwen() -> Iterator[DiffusersProvider]:
    # references scaled to 32x32 for the VAE: the pipeline's ~1 MP default takes a minute with a tiny VAE on a CPU
    yield from _provider(resolution=32, steps=2, reference_area=32 * 32)
