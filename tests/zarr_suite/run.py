"""Run zarr-python's own test suite with voxcore's codec pipeline (voxcore.zarr.CodecPipeline).

    python3 tests/zarr_suite/run.py                    # the default subset (DEFAULT_TESTS)
    python3 tests/zarr_suite/run.py -x -k sharding     # the default subset, pytest options
    python3 tests/zarr_suite/run.py tests/test_v2.py   # zarr test paths of your choice

zarr-python's tests are not in its wheel: the sdist of the installed zarr version is fetched
once with ``pip download`` into a cache directory (VOXCORE_ZARR_SUITE_DIR, default
~/.cache/voxcore/zarr-suite) together with pytest-asyncio, which the suite needs, installed with
``pip install --target`` there (nothing is installed into the environment). The tests run from
the unpacked sdist with zarr's own pytest configuration (warnings are errors there too) and with
ZARR_CODEC_PIPELINE__PATH=voxcore.zarr.CodecPipeline, which zarr's autouse ``config.reset()``
fixture keeps in force. The pipeline is declared as a ``zarr.codec_pipeline`` entry point (as an
installed voxcore would declare it) so that processes the suite spawns find it too; ``plugin.py``
checks that new arrays get it and prints how many reads/writes the core did and how many went
to the fallback.
"""
from __future__ import annotations

import importlib.metadata as im
import os
import subprocess
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
# The tests that drive arrays through the codec pipeline.
DEFAULT_TESTS = [
    "tests/test_array.py",
    "tests/test_indexing.py",
    "tests/test_codecs",
    "tests/test_v2.py",
    "tests/test_api.py",
    "tests/test_properties.py",
]


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "voxcore" / "zarr-suite"
    return Path(os.environ.get("VOXCORE_ZARR_SUITE_DIR", default))


def fetch(version: str, cache: Path) -> Path:
    """The unpacked sdist of zarr==version (downloaded on first use)."""
    src = cache / f"zarr-{version}"
    if (src / "tests").is_dir():
        return src
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", f"zarr=={version}", "--no-binary",
                    ":all:", "--no-deps", "-d", str(cache)], check=True)
    with tarfile.open(cache / f"zarr-{version}.tar.gz") as tar:
        tar.extractall(cache, filter="data")
    return src


def test_deps(cache: Path) -> Path:
    """A directory holding pytest-asyncio (installed there unless importable already)."""
    deps = cache / "deps"
    try:
        import pytest_asyncio  # noqa: F401
    except ImportError:
        if not (deps / "pytest_asyncio").is_dir():
            subprocess.run([sys.executable, "-m", "pip", "install", "--target", str(deps),
                            "--no-deps", "pytest-asyncio"], check=True)
    return deps


def entry_point(cache: Path) -> Path:
    """A directory with distribution metadata declaring voxcore's pipeline as a zarr.codec_pipeline
    entry point (what an installed voxcore declares), so that every process, also the ones the
    suite spawns, finds the pipeline named in the configuration without importing it first."""
    where = cache / "entry-point"
    info = where / "voxcore_zarr_suite-0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: voxcore-zarr-suite\nVersion: 0\n")
    (info / "entry_points.txt").write_text(
        "[zarr.codec_pipeline]\nvoxcore = voxcore.zarr:CodecPipeline\n")
    return where


def main(argv: list[str]) -> int:
    version = im.version("zarr")
    cache = cache_dir()
    src = fetch(version, cache)
    deps = test_deps(cache)
    env = dict(os.environ)
    # The source tree when it holds a built _core (a development build), else the installed voxcore.
    tree = [str(ROOT / "python")] if any((ROOT / "python" / "voxcore").glob("_core*.so")) else []
    path = [*tree, str(HERE), str(deps), str(entry_point(cache)), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in path if p)
    env["ZARR_CODEC_PIPELINE__PATH"] = "voxcore.zarr.CodecPipeline"
    # Without a test path (anything under tests/), run the default subset with the options given.
    args = argv if any(a.startswith("tests") for a in argv) else [*DEFAULT_TESTS, *argv]
    cmd = [sys.executable, "-m", "pytest", "-p", "plugin", "-p", "no:cacheprovider", "-q",
           *args]
    print(f"zarr {version} tests from {src}:", " ".join(cmd[1:]), flush=True)
    return subprocess.call(cmd, cwd=src, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
