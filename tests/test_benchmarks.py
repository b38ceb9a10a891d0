"""Every benchmark still runs: benchmarks/ is smoke-run at a tiny size so it cannot rot.

The benchmarks run in a child pytest (the project's own config: --benchmark-disable, warnings
as errors, strict markers) at VOXCORE_BENCH_SIZE=64, so each benchmark body runs once and its
correctness checks (reads compared with the source volume, writes read back by zarr-python)
still apply. Timings are never looked at. A peer that is not installed (tensorstore, zarrs,
zarrista) may skip its own tests; nothing else may skip.
"""
from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
ALWAYS_PRESENT = ("voxcore", "zarr-python-")  # peers whose tests must never skip


def test_benchmarks_smoke(tmp_path):
    files = sorted(BENCH.glob("bench_*.py"))
    assert files, f"no bench_*.py in {BENCH}"
    report = tmp_path / "junit.xml"
    env = dict(os.environ, VOXCORE_BENCH_SIZE="64")
    env.pop("PYTEST_ADDOPTS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(BENCH), "-q", "-p", "no:cacheprovider",
         "--benchmark-disable", f"--junitxml={report}", f"--basetemp={tmp_path / 'work'}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"benchmarks failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"

    cases = list(ET.parse(report).getroot().iter("testcase"))
    ran_files = {c.get("classname", "").split(".")[-1] for c in cases}
    assert {f.stem for f in files} <= ran_files, f"benchmark files not collected: {ran_files}"
    skipped = []
    for c in cases:
        skip = c.find("skipped")
        if skip is None:
            continue
        name, msg = c.get("name"), skip.get("message", "")
        assert "could not import" in msg, f"{name} skipped, and not for a missing peer: {msg}"
        params = name.partition("[")[2]
        assert not params.startswith(ALWAYS_PRESENT), f"{name} must not skip: {msg}"
        skipped.append(name)
    ran = len(cases) - len(skipped)
    assert ran >= 30, f"only {ran} benchmarks ran ({len(skipped)} skipped)"
