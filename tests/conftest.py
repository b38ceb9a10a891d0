"""Shared fixtures for the voxcore test suite.

Fixtures only, no global state: every fixture hands out a fresh object or a pure function.

- ``make_volume(shape, dtype, seed)``: a seeded smooth random field plus Gaussian noise (the
  same recipe as the peers harness, numpy only, at any small shape and dtype), so that chunks
  compress like real images and neighbouring chunks differ.
- ``quiet_zarr()``: a context manager that silences zarr-python's own warnings while a test
  builds an oracle store (pytest runs with ``filterwarnings = error``; zarr warns about
  numcodecs codecs that are outside the v3 spec).
- ``run_isolated(code)``: runs Python code in a child interpreter and asserts that it exited
  normally, for inputs that could crash a broken decoder (segfault, abort, hang).
- ``bit_equal(a, b)``: asserts same shape, same dtype (native byte order) and identical bytes,
  NaN payloads included.
- ``xp``: the array module a parity test runs on, numpy and then cupy (the cupy case is marked
  ``gpu`` and skips without CuPy, a CUDA device or voxcore's CUDA build). ``cp`` is CuPy for
  tests that only make sense on a device (they carry ``@pytest.mark.gpu`` themselves);
  ``to_host(a)`` brings either kind of array back as numpy.
- ``fake_device_array(shape, typestr, readonly)``: an object with just enough
  ``__cuda_array_interface__`` to reach the CUDA bindings' argument checks (never dereferenced).
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest


def _smooth(a: np.ndarray, width: int) -> np.ndarray:
    """Box filter of the given width along every axis (edge-clamped), via cumulative sums."""
    for ax in range(a.ndim):
        n = a.shape[ax]
        w = min(width, n)
        if w <= 1:
            continue
        lo = w // 2
        hi = w - lo - 1
        pad = [(0, 0)] * a.ndim
        pad[ax] = (lo + 1, hi)
        c = np.cumsum(np.pad(a, pad, mode="edge"), axis=ax)
        upper = np.take(c, np.arange(w, w + n), axis=ax)
        lower = np.take(c, np.arange(0, n), axis=ax)
        a = (upper - lower) / w
    return a


def _field(shape, rng) -> np.ndarray:
    """Smooth field inside an ellipsoid 'body', ~1000 +- 300 inside, ~20 outside, plus noise."""
    shape = tuple(int(s) for s in shape)
    f = rng.standard_normal(shape)
    f = _smooth(f, 5)
    f /= f.std() + 1e-12
    f = f * 300.0 + 1000.0
    if len(shape) > 0 and all(s > 2 for s in shape):
        r2 = np.zeros(shape)
        for ax, n in enumerate(shape):
            c = (n - 1) / 2.0
            coord = (np.arange(n) - c) / (0.45 * n)
            r2 = r2 + np.expand_dims(coord**2, tuple(i for i in range(len(shape)) if i != ax))
        f = np.where(r2 > 1.0, 20.0, f)
    return f + rng.standard_normal(shape) * 15.0


def _make_volume(shape, dtype="u2", seed=0) -> np.ndarray:
    """Seeded, deterministic test volume of any small shape and numeric dtype (C order)."""
    dt = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    f = _field(shape, rng)  # roughly 0 .. 2300
    native = dt.newbyteorder("=")
    if dt.kind == "c":
        g = _field(shape, rng)
        out = (f / 7.0 - 100.0) + 1j * (g / 3.0 - 300.0)
        return np.ascontiguousarray(out.astype(dt))
    if dt.kind == "f":
        out = (f - 800.0) * 0.0123456789
        return np.ascontiguousarray(out.astype(native).astype(dt))
    if dt.kind == "b":
        return np.ascontiguousarray((f > 1000.0).astype(dt))
    info = np.iinfo(native)
    span = float(info.max) - float(info.min)
    # Map the field onto most of the type's range so that high bytes and signs are exercised.
    scaled = (f / 2300.0) * span * 0.9 + float(info.min) + span * 0.02
    scaled = np.clip(np.round(scaled), float(info.min), float(info.max))
    if native.itemsize == 8:
        # float64 cannot hold every 64-bit integer: add exact low bits from the RNG.
        hi = scaled.astype(np.float64)
        base = np.clip(hi, -(2.0**62), 2.0**62).astype(np.int64)
        low = rng.integers(0, 2**16, size=f.shape, dtype=np.int64)
        out = base + low
        if info.min == 0:
            out = np.abs(out).astype(np.uint64) * np.uint64(2)
        return np.ascontiguousarray(out.astype(native).astype(dt))
    return np.ascontiguousarray(scaled.astype(native).astype(dt))


@pytest.fixture(scope="module")
def s3():
    """(storage_options, s3fs filesystem) of a fresh S3 endpoint on 127.0.0.1 (moto's server
    mode) holding the bucket "bkt"; skipped without s3fs and moto."""
    pytest.importorskip("s3fs")
    moto_server = pytest.importorskip("moto.server")
    import botocore.session
    import s3fs

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    botocore.session.get_session().create_client(
        "s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
        region_name="us-east-1").create_bucket(Bucket="bkt")
    opts = {"endpoint_url": endpoint, "key": "testing", "secret": "testing"}
    yield opts, s3fs.S3FileSystem(**opts)
    server.stop()


@pytest.fixture(scope="session")
def make_volume():
    """Factory: ``make_volume(shape, dtype='u2', seed=0) -> np.ndarray`` (deterministic)."""
    return _make_volume


@contextlib.contextmanager
def _quiet_zarr():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture(scope="session")
def quiet_zarr():
    """Context manager factory silencing zarr-python's warnings while building oracles."""
    return _quiet_zarr


def _native(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.byteorder not in ("=", "|"):
        a = a.astype(a.dtype.newbyteorder("="))
    return np.array(a, order="C")  # keeps 0-d results 0-d (ascontiguousarray would not)


def _bit_equal(got, want, what: str = "array") -> None:
    got = np.asarray(got)
    want = _native(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != expected {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != expected {want.dtype}"
    g = np.array(got, order="C")
    if g.tobytes() != want.tobytes():
        if want.dtype.kind in "fc":
            bad = ~((g == want) | (np.isnan(g) & np.isnan(want)))
        else:
            bad = g != want
        idx = np.argwhere(bad)
        first = tuple(int(i) for i in idx[0]) if len(idx) else None
        detail = f"first at {first}: got {g[first]!r} want {want[first]!r}" if first else ""
        raise AssertionError(
            f"{what}: {int(bad.sum()) if len(idx) else 'bit-level'} element(s) differ; {detail}"
        )


@pytest.fixture(scope="session")
def bit_equal():
    """``bit_equal(got, want, what='array')``: same shape, native dtype, identical bytes."""
    return _bit_equal


@pytest.fixture
def run_isolated(tmp_path):
    """Run ``code`` in a fresh interpreter (cwd = a temp dir); assert a normal exit.

    A crash (negative return code: SIGSEGV, SIGABRT, ...), a hang past ``timeout`` seconds or a
    non-zero exit status fails the calling test with the child's output. Returns stdout.
    ``limit_as`` caps the child's address space in bytes (a decoder that trusts a size claim
    then fails with MemoryError instead of swapping the machine).
    """

    counter = [0]

    def run(code: str, *, timeout: float = 60.0, limit_as: int | None = None) -> str:
        prelude = ""
        if limit_as is not None:
            prelude = (
                "import resource\n"
                f"resource.setrlimit(resource.RLIMIT_AS, ({int(limit_as)}, {int(limit_as)}))\n"
            )
        counter[0] += 1
        script = tmp_path / f"isolated_{counter[0]}.py"
        script.write_text(prelude + textwrap.dedent(code))
        env = dict(os.environ)
        env.setdefault("VOXCORE_NUM_THREADS", "2")
        env["PYTHONFAULTHANDLER"] = "1"
        try:
            proc = subprocess.run(
                [sys.executable, str(script)],
                cwd=str(tmp_path),
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,  # the return code is checked below, with the output
            )
        except subprocess.TimeoutExpired as e:
            raise AssertionError(
                f"child hung for more than {timeout} s\nstdout:\n{e.stdout}\nstderr:\n{e.stderr}"
            ) from None
        assert proc.returncode >= 0, (
            f"child was killed by signal {-proc.returncode} (crash)\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
        assert proc.returncode == 0, (
            f"child exited with status {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
        return proc.stdout

    return run


@pytest.fixture(scope="session")
def chunk_files():
    """``chunk_files(root) -> set[str]``: every file under root as a '/'-joined relative key."""

    def list_files(root) -> set[str]:
        root = Path(root)
        return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}

    return list_files


@pytest.fixture
def small_tmpfs(tmp_path):
    """``small_tmpfs(size)``: a tmpfs of that size (e.g. "2m") mounted in a temp dir, unmounted
    after the test; skips the test where it cannot be mounted (not root, no mount rights)."""
    mounted = []

    def mount(size: str) -> Path:
        mnt = tmp_path / f"tmpfs-{len(mounted)}"
        mnt.mkdir()
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip() or proc.returncode}")
        mounted.append(mnt)
        return mnt

    yield mount
    for mnt in mounted:
        subprocess.run(["umount", str(mnt)], capture_output=True, check=False)


def _cupy_or_skip():
    """CuPy, when it imports, sees a device and voxcore was built with CUDA; else skip the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # CuPy may warn at import about its CUDA setup
        cupy = pytest.importorskip("cupy")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except cupy.cuda.runtime.CUDARuntimeError:
        count = 0
    if count == 0:
        pytest.skip("no CUDA device")
    from voxcore import _core

    if not _core.cuda_is_available():
        pytest.skip("voxcore was built without CUDA")
    return cupy


@pytest.fixture(params=["numpy", pytest.param("cupy", marks=pytest.mark.gpu)])
def xp(request):
    """The array module of a parity test: the same assertions run on numpy and on CuPy input."""
    if request.param == "numpy":
        return np
    return _cupy_or_skip()


@pytest.fixture
def cp(request):
    """CuPy for device-only tests, which must carry ``@pytest.mark.gpu`` (so ``-m "not gpu"``
    deselects them); skips like the cupy case of ``xp``."""
    assert request.node.get_closest_marker("gpu"), "a test using cp needs @pytest.mark.gpu"
    return _cupy_or_skip()


def _to_host(a) -> np.ndarray:
    return a.get() if hasattr(a, "__cuda_array_interface__") else np.asarray(a)


@pytest.fixture(scope="session")
def to_host():
    """``to_host(a) -> np.ndarray``: a device (CuPy) array copied to the host, numpy as is."""
    return _to_host


class _FakeDeviceArray:
    def __init__(self, shape, typestr="<u2", readonly=False):
        self.__cuda_array_interface__ = {
            "shape": tuple(shape),
            "typestr": typestr,
            "data": (0, readonly),
            "strides": None,
            "version": 3,
        }


@pytest.fixture(scope="session")
def fake_device_array():
    """Factory: ``fake_device_array(shape, typestr='<u2', readonly=False)``, a null device
    pointer behind ``__cuda_array_interface__``, for checks that run before any memory is
    touched (and so need no device)."""
    return _FakeDeviceArray
