"""Data safety: thread-count changes under live handles, bounded thread pools, stores that
symlinks cannot escape, and read-modify-writes from several processes at once.

Overwrite safety lives in test_overwrite.py, NIfTI in test_nifti_safety.py, error classes and
`voxcore check` in test_errors_named.py.
"""
from __future__ import annotations

import multiprocessing
import os

import numpy as np
import pytest

import voxcore as vc
from voxcore import _core

# Partial-chunk writes are what these tests exercise; the warning itself is tested in
# test_errors_named.py.
pytestmark = pytest.mark.filterwarnings("ignore::voxcore.UnalignedWriteWarning")

# ---- thread pool: a handle keeps working whatever the order of set_num_threads --------------


def test_set_num_threads_after_open_keeps_handles_working(run_isolated):
    out = run_isolated("""
        import numpy as np, voxcore as vc
        a = np.arange(48 ** 3, dtype=np.uint16).reshape(48, 48, 48)
        img = vc.create_array("a.zarr", a.shape, a.dtype, chunks=16, shards=32)
        vc.set_num_threads(3)
        img.write(a)
        cached = vc.open("a.zarr", cache_bytes=1 << 24)
        vc.set_num_threads(2)
        assert (cached.read() == a).all()
        vc.set_num_threads(5)
        assert (cached.read() == a).all()          # cached read, new pool
        img = vc.open("a.zarr")
        vc.set_num_threads(1)
        assert (img.read() == a).all()
        vc.set_num_threads(4)
        import warnings
        warnings.simplefilter("ignore")           # the partial write below warns: unaligned
        img.write(a[:10, 3:20, 5:40] + 1, offset=(0, 3, 5))
        b = a.copy()
        b[:10, 3:20, 5:40] += 1
        assert (img.read() == b).all()
        print("ok")
    """)
    assert "ok" in out


def test_set_num_threads_while_other_threads_read_and_write(run_isolated):
    out = run_isolated("""
        import threading, warnings, numpy as np, voxcore as vc
        warnings.simplefilter("ignore")
        a = np.arange(64 ** 3, dtype=np.uint16).reshape(64, 64, 64)
        img = vc.create_array("a.zarr", a.shape, a.dtype, chunks=16, codec="zstd", durable=False)
        img.write(a)
        cached = vc.open("a.zarr", cache_bytes=1 << 24)
        errors, stop = [], threading.Event()

        def reader(h):
            try:
                while not stop.is_set():
                    assert (h.read() == a).all()
            except Exception as e:
                errors.append(e)

        def writer():
            try:
                w = vc.open("a.zarr", durable=False)
                while not stop.is_set():
                    w.write(a[:32], offset=(0, 0, 0))   # aligned, same values
            except Exception as e:
                errors.append(e)

        threads = [threading.Thread(target=reader, args=(h,)) for h in (img, cached, img)]
        threads.append(threading.Thread(target=writer))
        for t in threads:
            t.start()
        for n in [1, 3, 2, 8, 1, 4, 2] * 6:
            vc.set_num_threads(n)
        stop.set()
        for t in threads:
            t.join()
        assert not errors, errors
        assert (vc.open("a.zarr").read() == a).all()
        print("ok", vc._core.get_num_threads())
    """, timeout=120)
    assert "ok 2" in out


def test_set_num_threads_bounds():
    cap = _core.max_threads()
    assert cap >= 256 and cap >= 2 * (os.cpu_count() or 1)
    before = _core.get_num_threads()
    with pytest.raises(vc.LimitExceededError, match="at most"):
        vc.set_num_threads(cap + 1)
    with pytest.raises(vc.LimitExceededError):
        vc.set_num_threads(10 ** 6)
    with pytest.raises(vc.InvalidArgumentError):
        vc.set_num_threads(0)
    with pytest.raises(TypeError):
        vc.set_num_threads(2.5)
    assert _core.get_num_threads() == before  # refused counts change nothing


def test_threads_start_lazily_and_old_pool_exits(run_isolated):
    out = run_isolated("""
        import numpy as np, voxcore as vc

        def threads():
            with open("/proc/self/status") as f:
                return next(int(l.split()[1]) for l in f if l.startswith("Threads:"))

        base = threads()
        vc.set_num_threads(200)
        assert threads() < base + 5, (base, threads())     # nothing started yet
        a = np.arange(64 ** 3, dtype=np.uint16).reshape(64, 64, 64)
        img = vc.create_array("a.zarr", a.shape, a.dtype, chunks=8, durable=False)
        img.write(a)                                        # many chunks: the pool starts
        grown = threads()
        assert grown >= base + 150, (base, grown)
        vc.set_num_threads(2)
        assert (img.read() == a).all()
        assert threads() < base + 10, (base, threads())     # the old pool's threads are gone
        print("ok")
    """)
    assert "ok" in out


# ---- the store cannot be escaped by symbolic links ------------------------------------------


def _array(path, a, **kw):
    img = vc.create_array(path, a.shape, a.dtype, chunks=16, codec=None, **kw)
    img.write(a)
    return img


@pytest.fixture
def vol():
    return np.arange(32 ** 3, dtype=np.uint16).reshape(32, 32, 32)


def test_chunk_symlink_leaving_the_store_is_refused_for_reads(tmp_path, vol):
    root = tmp_path / "x.zarr"
    _array(root, vol)
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"\x07" * (16 ** 3 * 2))
    chunk = root / "c" / "0" / "0" / "0"
    chunk.unlink()
    chunk.symlink_to(secret)
    with pytest.raises(vc.UnsafePathError, match=r"key=c/0/0/0.*allow_external_links"):
        vc.open(root).read()
    # the explicit opt-in follows it
    out = vc.open(root, allow_external_links=True).read()
    assert (out[:16, :16, :16] == 0x0707).all()
    assert (out[16:] == vol[16:]).all()


@pytest.mark.parametrize("absolute", [False, True])
def test_symlinks_inside_the_store_are_followed(tmp_path, vol, absolute):
    root = tmp_path / "x.zarr"
    _array(root, vol)
    chunk = root / "c" / "0" / "0" / "0"
    chunk.unlink()
    target = root / "c" / "0" / "0" / "1"
    chunk.symlink_to(target if absolute else "1")
    out = vc.open(root).read()
    assert (out[:16, :16, :16] == vol[:16, :16, 16:]).all()


def test_write_through_symlinked_directory_is_refused(tmp_path, vol):
    root = tmp_path / "x.zarr"
    _array(root, vol)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "c" / "1").rename(outside / "1")
    (root / "c" / "1").symlink_to(outside / "1")
    before = sorted(p.name for p in (outside / "1" / "0").iterdir())
    img = vc.open(root)
    with pytest.raises(vc.UnsafePathError, match="outside the store"):
        img.write(np.zeros_like(vol))
    assert sorted(p.name for p in (outside / "1" / "0").iterdir()) == before
    assert (np.fromfile(outside / "1" / "0" / "0", np.uint16) != 0).any()  # not overwritten


def test_write_onto_symlinked_key_replaces_the_link_not_its_target(tmp_path, vol):
    root = tmp_path / "x.zarr"
    _array(root, vol)
    victim = tmp_path / "victim.bin"
    victim.write_bytes(b"keep me")
    chunk = root / "c" / "0" / "0" / "0"
    chunk.unlink()
    chunk.symlink_to(victim)
    vc.open(root).write(np.zeros((16, 16, 16), np.uint16), offset=(0, 0, 0))  # whole chunk
    assert victim.read_bytes() == b"keep me"
    assert not chunk.is_symlink()


def test_ome_level_and_labels_symlinked_outside_are_refused(tmp_path, vol):
    root = tmp_path / "img.ome.zarr"
    vc.save(vc.build_pyramid(vc.from_array(vol), [2]), root, labels={"cells": (vol % 3).astype(np.uint8)})
    elsewhere = tmp_path / "elsewhere"
    (root / "1").rename(elsewhere)
    (root / "1").symlink_to(elsewhere)
    with pytest.raises(vc.UnsafePathError, match="outside the store"):
        vc.open(root)
    img = vc.open(root, allow_external_links=True)
    assert img.levels[1].shape == (16, 16, 16)
    (root / "1").unlink()
    elsewhere.rename(root / "1")
    labels = tmp_path / "labels-elsewhere"
    (root / "labels").rename(labels)
    (root / "labels").symlink_to(labels)
    with pytest.raises(vc.UnsafePathError, match="outside the store"):
        vc.open(root)


def test_fifo_key_does_not_hang(run_isolated):
    out = run_isolated("""
        import os, numpy as np, voxcore as vc
        a = np.ones((16, 16), np.uint8)
        vc.create_array("x.zarr", a.shape, a.dtype, chunks=8, codec=None).write(a)
        os.remove("x.zarr/c/0/0")
        os.mkfifo("x.zarr/c/0/0")
        try:
            vc.open("x.zarr").read()
        except vc.CorruptDataError as e:
            assert "not a regular file" in str(e)
            print("ok")
    """, timeout=30)
    assert "ok" in out


def test_stale_chunk_temp_files_of_dead_writers_are_removed(tmp_path, vol):
    import subprocess
    import sys

    root = tmp_path / "x.zarr"
    _array(root, vol)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        d = root / "c" / "0" / "0"
        stale = d / f".0.vxtmp-{dead.pid}-1-0"
        alive = d / f".1.vxtmp-{live.pid}-1-0"
        stale.write_bytes(b"half")
        alive.write_bytes(b"busy")
        vc.open(root).write(vol[:16, :16, :16], offset=(0, 0, 0))
        assert not stale.exists()
        assert alive.exists()
    finally:
        live.kill()
        live.wait()


# ---- several processes writing disjoint, unaligned regions of one array ----------------------

_SHAPE = (48, 40, 40)


def _expected(trial: int) -> np.ndarray:
    return (np.arange(np.prod(_SHAPE), dtype=np.uint32).reshape(_SHAPE) * 7 + trial).astype(np.uint16)


def _writer(root: str, rank: int, nproc: int, trials: int, barrier) -> None:
    import warnings

    import voxcore

    warnings.simplefilter("ignore")
    for trial in range(trials):
        full = _expected(trial)
        img = voxcore.open(os.path.join(root, f"t{trial}.zarr"), durable=False)
        barrier.wait()
        for z in range(rank, _SHAPE[0], nproc):  # every chunk is shared by every process
            img.write(full[z:z + 1, 1:, :], offset=(z, 1, 0))
        img.write(full[:, :1, rank::nproc][:, :, :1], offset=(0, 0, rank))


@pytest.mark.parametrize("shards", [None, (16, 20, 20)], ids=["chunks", "shards"])
def test_processes_writing_disjoint_unaligned_regions_lose_nothing(tmp_path, shards):
    nproc, trials = 4, 20
    for trial in range(trials):
        chunks = (8, 10, 10) if shards else (16, 16, 16)
        vc.create_array(tmp_path / f"t{trial}.zarr", _SHAPE, np.uint16, chunks=chunks, shards=shards,
                        codec="zstd", durable=False)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(nproc)
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), r, nproc, trials, barrier))
             for r in range(nproc)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(180)
        assert p.exitcode == 0
    wrong = []
    for trial in range(trials):
        got = vc.open(tmp_path / f"t{trial}.zarr").read()
        exp = _expected(trial)
        exp[:, :1, nproc:] = 0  # row y=0 holds only the first voxel of each process's column
        if not np.array_equal(got, exp):
            wrong.append((trial, int((got != exp).sum())))
    assert not wrong, f"trials with lost updates (trial, voxels): {wrong}"
