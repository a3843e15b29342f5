"""On a CUDA GPU: the provider on the device, reproducible seeds there, and the benchmark's smallest run.

Skipped where torch sees no GPU (every CI machine of this project); run them on a GPU machine with
``pytest tests/providers/local/test_local_gpu.py``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_helpers import MODEL, ask

from conftest import Checkpoints
from imagegate.providers.local.provider import DiffusersProvider

torch = pytest.importorskip("torch", reason="needs the local extra")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def on_gpu() -> Iterator[DiffusersProvider]:
    import asyncio

    provider = DiffusersProvider.from_options({"devices": ["cuda:0"], "resolution": 512, "steps": 2})
    yield provider
    asyncio.run(provider.aclose())


async def test_the_provider_runs_on_the_gpu_and_seeds_reproduce(
    on_gpu: DiffusersProvider, checkpoints: Checkpoints
) -> None:
    first = await on_gpu.generate(ask("a lighthouse", seed=3), MODEL, checkpoints.sd_turbo)
    again = await on_gpu.generate(ask("a lighthouse", seed=3), MODEL, checkpoints.sd_turbo)
    assert (first.images[0].width, first.images[0].height) == (512, 512)
    assert first.images[0].data == again.images[0].data


async def test_qwen_edit_with_three_references_on_the_gpu(checkpoints: Checkpoints) -> None:
    from local_helpers import picture

    provider = DiffusersProvider.from_options({"devices": ["cuda"], "resolution": 256, "steps": 4})
    try:
        refs = [
            picture((300, 200), (200, 30, 30)),
            picture((256, 256), (30, 200, 30)),
            picture((200, 300), (30, 30, 200)),
        ]
        generation = await provider.generate(ask("combine", *refs, seed=1), MODEL, checkpoints.qwen_edit)
        assert len(generation.images) == 1
    finally:
        await provider.aclose()


def test_the_benchmark_measures_sd_turbo_on_random_weights() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
    import local_models

    result = local_models.measure("sd_turbo", 512, repeats=2, steps=2, batch=1)
    assert result["seconds_per_image"] > 0 and result["peak_memory_gib"] > 0
    assert result["gpu_utilisation_mean"] is None or 0 <= result["gpu_utilisation_mean"] <= 100
