"""Fixtures and hooks for the benchmarks (``python3 -m pytest benchmarks --benchmark-enable``).

- Files named ``bench_*.py`` are collected as test modules (pytest's default pattern is test_*),
  and run grouped by operation and case (their module's RUN_ORDER).
- Session fixtures: the volume (VOXCORE_BENCH_SIZE, default 512), the stores every reader
  reads (written once by zarr-python, as in the peers harness), the random boxes.
- The benchmark JSON gets the machine (cores, memory, CPU, load average) and every peer's
  version, which ``benchmarks/report.py`` prints.
"""
from __future__ import annotations

import importlib.metadata as im
import os
import platform
from pathlib import Path

import pytest

pytest.register_assert_rewrite("bench_zarr", "_peers", "_pyramid_peers", "_floors", "_data")

import _data
import _peers

PACKAGES = ("voxcore", "numpy", "zarr", "zarrs", "tensorstore", "zarrista", "numcodecs",
            "zstandard", "scipy", "pytest-benchmark", "ngff-zarr", "itkwasm-downsample",
            "itk-filtering", "dask", "ome-zarr", "scikit-image", "nibabel", "indexed_gzip",
            "deflate", "distributed", "webknossos")


def pytest_collect_file(file_path: Path, parent):
    # Paths given on the command line are collected by pytest itself whatever their name.
    if (file_path.suffix == ".py" and file_path.name.startswith("bench_")
            and not parent.session.isinitpath(file_path)):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


def pytest_collection_modifyitems(items):
    """Benchmarks of a module with RUN_ORDER run grouped by (operation, case); other items keep
    their places. The sort is stable: within a group, the module's own order (voxcore first)."""
    def key(item):
        for g, names in enumerate(item.module.RUN_ORDER):
            if item.originalname in names:
                case = getattr(item, "callspec", None) and item.callspec.params.get("case")
                return (g, _data.CASES.index(case) if case else -1, names.index(item.originalname))
        return (len(item.module.RUN_ORDER), 0, 0)

    where = [i for i, it in enumerate(items)
             if hasattr(getattr(it, "module", None), "RUN_ORDER")]
    for i, it in zip(where, sorted((items[i] for i in where), key=key)):
        items[i] = it


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _version(name: str) -> str | None:
    try:
        return im.version(name)
    except im.PackageNotFoundError:
        return None


def _core_build(vc) -> str:
    """sha256 prefix and mtime of the loaded _core extension: which voxcore build was measured."""
    import hashlib
    import time

    so = Path(vc._core.__file__)
    digest = hashlib.sha256(so.read_bytes()).hexdigest()[:12]
    built = time.strftime("%Y-%m-%d %H:%M", time.localtime(so.stat().st_mtime))
    return f"{so.name} sha256:{digest} built {built}"


_START: dict = {}


def pytest_sessionstart(session):
    import voxcore as vc

    _START.update(loadavg=list(os.getloadavg()), core=_core_build(vc))


def pytest_benchmark_update_machine_info(config, machine_info):
    # Called when the JSON is saved, at the end of the run.
    import voxcore as vc

    machine_info["voxcore_bench"] = {
        "voxcore_core": _START.get("core", "?"),
        "size": _data.bench_size(),
        "nproc": len(os.sched_getaffinity(0)),
        "mem_total_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "cpu_model": _cpu_model(),
        "loadavg_start": _START.get("loadavg"),
        "loadavg_end": list(os.getloadavg()),
        "voxcore_threads": vc.get_num_threads(),
        "versions": {n: _version(n) for n in PACKAGES},
    }


@pytest.fixture(scope="session")
def size() -> int:
    return _data.bench_size()


@pytest.fixture(scope="session")
def volume(size):
    vol = _data.make_volume(size)
    vol.setflags(write=False)  # a writer that scribbles on its input fails loudly
    return vol


@pytest.fixture(scope="session")
def boxes(size):
    return _data.random_boxes(size)


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("zarr-bench")


@pytest.fixture(scope="session")
def stores(volume, workdir) -> dict[str, Path]:
    """case key -> store written by zarr-python's default pipeline (what every reader reads)."""
    out = {}
    for case in _data.CASES:
        path = workdir / "stores" / f"{case.key}.zarr"
        with _peers.quiet():
            _peers.zarr_create(path, case, volume)[...] = volume
        out[case.key] = path
    return out
