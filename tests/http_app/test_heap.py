"""A serving app sets the garbage collector for serving once it is up (start-up's objects frozen out of
collections, the youngest generation collected less often); a test's app leaves the collector alone. Run in a
subprocess: freezing this test process would keep every later test's leftovers alive."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from imagegate.heap import YOUNG_GENERATION_THRESHOLD

_PROBE = """
import asyncio, gc, json, sys
from imagegate.http.app import create_app
from imagegate.settings import load_settings

async def main(serving):
    settings = load_settings(home=sys.argv[1], gemini_api_key=None,
                             deployments=[{"name": "emulator", "provider": "emulator"}])
    app = create_app(settings, serving=serving)
    before, default = gc.get_freeze_count(), gc.get_threshold()[0]
    async with app.router.lifespan_context(app):
        frozen = gc.get_freeze_count() - before
        threshold = gc.get_threshold()[0]
        class Cycle: pass
        a, b = Cycle(), Cycle()
        a.other, b.other = b, a
        del a, b
        collected = gc.collect()  # garbage made after the freeze is still collected
    print(json.dumps({"frozen": frozen, "threshold": threshold, "default": default, "collected": collected}))

asyncio.run(main(sys.argv[2] == "serving"))
"""


@pytest.mark.parametrize("mode", ["serving", "test"])
def test_only_a_serving_app_freezes_start_up_and_spaces_out_collections(tmp_path: Path, mode: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(tmp_path), mode], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["collected"] >= 2
    if mode == "serving":
        assert seen["frozen"] > 10_000  # routes, schemas, models, the runtime
        assert seen["threshold"] == YOUNG_GENERATION_THRESHOLD
    else:
        assert seen["frozen"] == 0
        assert seen["threshold"] == seen["default"]


# Allocations and frees in the order of an image request (answer, its base64, small objects, the image, the
# reply): with glibc's adaptive thresholds the heap's top went back to the kernel and came again each time.
_REQUEST_LIKE = """
import resource, sys
from imagegate.heap import keep_freed_memory

if sys.argv[1] == "serving" and not keep_freed_memory():
    print("unsupported")
    sys.exit(0)

def touched(size):
    block = bytearray(size)
    block[::4096] = b"x" * len(block[::4096])
    return block

def request():
    body = touched(2_100_000)
    text = bytes(body[10:2_090_000])
    small = [bytes(100) for _ in range(1000)]
    data = touched(1_550_000)
    del body
    reply = touched(2_100_000)
    del text, data, small
    kept = bytes(50_000)
    del reply
    return kept

kept = [request() for _ in range(3)]
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
kept += [request() for _ in range(40)]
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 40)
"""


def test_a_serving_process_keeps_freed_buffers_instead_of_faulting_them_in_again() -> None:
    faults = {}
    for mode in ("serving", "test"):
        done = subprocess.run([sys.executable, "-c", _REQUEST_LIKE, mode], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        faults[mode] = done.stdout.strip()
    if faults["serving"] == "unsupported":
        pytest.skip("not glibc: no malloc thresholds to set")
    assert float(faults["serving"]) < 100 < float(faults["test"])  # ~12 vs ~1,000 pages per request here
