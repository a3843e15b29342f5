"""The benchmark harness runs end to end on tiny numbers and writes well-formed reports (timings not judged)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"

pytestmark = pytest.mark.e2e


def test_run_measures_direct_and_through_imagegate(tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    subprocess.run(
        [
            sys.executable,
            str(BENCH / "run.py"),
            "--quick",
            "--no-litellm",
            "--rounds",
            "2",
            "--delay-ms",
            "5",
            "--out",
            str(out),
        ],
        check=True,
        timeout=300,
        capture_output=True,
    )
    report = json.loads(out.read_text())
    targets = ("direct", "imagegate", "imagegate-stream")
    assert {(r["target"], r["concurrency"]) for r in report["runs"]} == {(t, c) for t in targets for c in (1, 4)}
    assert report["rounds"] == 2  # each target's requests in two interleaved rounds, merged into one row
    assert all(r["requests"] == 8 and r["errors"] == 0 for r in report["runs"])
    assert all(r["p50_ms"] > 0 and r["throughput_rps"] > 0 for r in report["runs"])
    assert all(0 < r["ttfb_p50_ms"] <= r["p50_ms"] for r in report["runs"])
    assert all(r["client_cpu_ms_per_request"] > 0 for r in report["runs"])
    assert [(a["target"], a["concurrency"]) for a in report["added"]] == [
        ("imagegate", 1),
        ("imagegate-stream", 1),
        ("imagegate", 4),
        ("imagegate-stream", 4),
    ]
    assert report["peak_rss_mib"]["imagegate"] > 0
    gateways = [r for r in report["runs"] if r["target"].startswith("imagegate")]
    assert all(r["gateway_cpu_ms_per_request"] > 0 for r in gateways)
    # /proc counts in clock ticks (10 ms), rounded per thread and per process apart: on rows this short the main
    # thread's share can read a tick or two off the whole, so only its presence is checked here
    assert all(r["gateway_main_thread_cpu_ms_per_request"] >= 0 for r in gateways)
    assert any(r["gateway_main_thread_cpu_ms_per_request"] > 0 for r in gateways)


def test_tasks_holds_every_task_to_the_end(tmp_path: Path) -> None:
    out = tmp_path / "tasks.json"
    subprocess.run(
        [
            sys.executable,
            str(BENCH / "tasks.py"),
            "--tasks",
            "40",
            "--p50-ms",
            "50",
            "--p95-ms",
            "80",
            "--out",
            str(out),
        ],
        check=True,
        timeout=300,
        capture_output=True,
    )
    report = json.loads(out.read_text())
    assert report["submitted"] == 40 and report["submit_errors"] == 0
    assert report["statuses"] == {"succeeded": 40} and report["peak_rss_mib"] > 0
    assert report["gateway_cpu_ms_per_submission"] > 0 and report["peak_running"] >= 0
    assert report["gateway_cpu_ms_per_task_life"] is not None and report["client_cpu_ms_per_submission"] > 0


def test_a_memory_cgroup_is_filled_to_its_limit_and_removed_after(tmp_path: Path) -> None:
    sys.path.insert(0, str(BENCH))
    try:
        from harness import MemoryCgroup
    finally:
        sys.path.remove(str(BENCH))
    try:
        cgroup = MemoryCgroup(f"imagegate-test-{tmp_path.name}", 192)
    except RuntimeError as exc:
        pytest.skip(f"no writable memory cgroup here: {exc}")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        cgroup.add(sleeper.pid)
        assert str(sleeper.pid) in (cgroup.path / "cgroup.procs").read_text().split()
        cgroup.fill(tmp_path, 192, headroom_mib=32)
        assert 192 - 48 < cgroup.usage_mib() <= 192  # the ballast's page cache stays charged to it
    finally:
        sleeper.kill()
        sleeper.wait()
        cgroup.remove()
    assert not cgroup.path.exists()
