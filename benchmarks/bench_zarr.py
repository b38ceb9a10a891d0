"""Zarr read and write throughput: voxcore against the fastest peers, in one process and one run.

What: a seeded 512^3 uint16 volume (256 MiB; VOXCORE_BENCH_SIZE changes the edge) in three
layouts with 64^3 chunks: Zarr v3 + zstd-1, Zarr v2 + blosc(lz4, shuffle), Zarr v3 sharded
(256^3 shards, 64^3 inner chunks) + zstd-1. Operations: open + whole-array read; 100 random
unaligned 64^3 boxes through one handle; the same boxes through a fresh handle with a 1 GiB
decoded-chunk cache (voxcore cache_bytes vs tensorstore cache_pool, cold each round); create +
whole-array write. Peers: zarr-python 3 (default pipeline), zarr-python with the zarrs pipeline,
tensorstore, zarrista, each with its default threading.

Why: voxcore exists to be faster than these tools, so every number is a median throughput
(extra_info MiB_per_s) next to theirs under the same conditions: same data, same files, page
cache warm, and ``floor:`` rows (codec + copy in plain Python threads, no I/O, see _floors.py)
for how much is left to win. Every test checks what it read against the source volume, and
every written store is read back by zarr-python and compared. ``benchmarks/report.py`` turns
the --benchmark-json output into ratio tables; benchmarks/RESULTS.md has a run.
"""
from __future__ import annotations

import contextlib
import os
import shutil

import _peers
import numpy as np
import pytest
from _data import CASES, Case, MiB
from _floors import Floors, chunk_set

ROUNDS = {"read": 7, "boxes": 7, "boxes-cached": 7, "write": 5, "floor": 7, "downsample": 7,
          "pyramid": 5, "durable-scaling": 5}
# Run order (conftest.py sorts by it): per operation and case, voxcore, the peers and the floor
# run back to back, so rows that are compared with each other see the same machine load.
RUN_ORDER = (("test_floor_memcpy",), ("test_read_whole", "test_floor_read"),
             ("test_read_boxes", "test_floor_boxes"), ("test_read_boxes_cached",),
             ("test_write_whole", "test_floor_durable_write", "test_floor_write"),
             ("test_durable_scaling",))

PEERS = {
    "voxcore": _peers.Voxcore,
    "zarr-python": _peers.ZarrPython,
    "zarr-python+zarrs": _peers.ZarrPythonZarrs,
    "tensorstore": _peers.Tensorstore,
    "zarrista": _peers.Zarrista,
}
CASE_IDS = [c.key for c in CASES]


def make_peer(name: str, **kw):
    cls = PEERS[name]
    pytest.importorskip(cls.module)
    return cls(**kw)


def run(benchmark, fn, *, op: str, case: Case | None, size: int, peer: str, nbytes: int,
        setup=None, quiet: bool = False, rounds: int | None = None, **info):
    """benchmark.pedantic with one warm-up round (rounds: ROUNDS[op] unless given); records
    what report.py needs."""
    case_name = case.name(size) if case else "-"
    benchmark.group = f"{op} {case_name}"
    benchmark.extra_info.update(op=op, case=case_name, peer=peer, size=size, nbytes=nbytes,
                                floor=peer.startswith("floor:"), **info)
    rounds = rounds or ROUNDS["floor" if peer.startswith("floor:") else op]
    with quieted(quiet):
        result = benchmark.pedantic(fn, setup=setup, rounds=rounds, warmup_rounds=1)
    if benchmark.stats is not None:  # None when pytest-benchmark is disabled (smoke runs)
        benchmark.extra_info["MiB_per_s"] = nbytes / MiB / benchmark.stats.stats.median
    benchmark.extra_info["loadavg_1m"] = round(os.getloadavg()[0], 2)  # the machine is shared
    return result


def cleared(path):
    """A setup that removes path and syncs, untimed: every round writes from nothing, with no
    dirty pages of earlier rounds still being written back."""
    def clear():
        shutil.rmtree(path, ignore_errors=True)
        os.sync()
    return clear


def _drop_page_cache() -> bool:
    """Drop the clean page cache (after a sync) where allowed; False where it is not."""
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("1")
        return True
    except OSError:
        return False


@contextlib.contextmanager
def fresh_trees(base, suffix: str = "", drop_caches: bool = False):
    """Setups for benchmark.pedantic that each hand the timed function a new output directory
    (synced first: no dirty pages of earlier rounds still being written back). The trees are
    removed only on exit: a tree removed just before the next round's writes makes ext4 scan
    its recently freed inodes on every file the round creates (seconds of system time that
    depend on the order of runs). drop_caches: then the clean page cache is dropped too, where
    the process may (root, /proc/sys/vm/drop_caches), so that every round starts with the same
    free memory, not with the pages of every earlier round's trees (gigabytes for a plate)."""
    made = []

    def fresh(name: str):
        def setup():
            os.sync()
            if drop_caches:
                _drop_page_cache()
            out = base / f"{name}-{len(made)}{suffix}"
            made.append(out)
            return (out,), {}
        return setup
    try:
        yield fresh
    finally:
        for out in made:
            shutil.rmtree(out, ignore_errors=True)


def quieted(quiet: bool):
    """The peers' warnings are silenced around their own calls only; voxcore's stay errors."""
    return _peers.quiet() if quiet else contextlib.nullcontext()


def assert_equal(got, want, what: str):
    got = np.asarray(got)
    assert got.shape == want.shape and got.dtype == want.dtype, (
        f"{what}: got {got.shape} {got.dtype}, want {want.shape} {want.dtype}")
    if not np.array_equal(got, want):
        bad = np.argwhere(got != want)
        raise AssertionError(f"{what}: {len(bad)} voxel(s) differ, first at {tuple(bad[0])}")


# ------------------------------------------------------------------------------ whole read
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("peer", [
    "voxcore", pytest.param("voxcore read(out=)", id="voxcore-out"), *list(PEERS)[1:]])
def test_read_whole(benchmark, peer, case, stores, volume, size):
    if peer == "voxcore read(out=)":
        p = make_peer("voxcore", into=np.empty(volume.shape, volume.dtype))
    else:
        p = make_peer(peer)
    path = stores[case.key]
    if isinstance(p, _peers.ZarrPython):
        with quieted(True):
            p.open(path, case)  # asserts the codec pipeline this peer is meant to measure
    out = run(benchmark, lambda: p.read_whole(path, case), op="read", case=case, size=size,
              peer=peer, nbytes=volume.nbytes, quiet=not peer.startswith("voxcore"))
    assert_equal(out, volume, f"{peer} whole read of {case.key}")


# ------------------------------------------------------------------------------ random boxes
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("peer", list(PEERS))
def test_read_boxes(benchmark, peer, case, stores, volume, boxes, size):
    p = make_peer(peer)
    quiet = peer != "voxcore"
    with quieted(quiet):
        handle = p.open(stores[case.key], case)  # opened once, outside the timing
    read = p.read_box
    outs = run(benchmark, lambda: [read(handle, b) for b in boxes], op="boxes", case=case,
               size=size, peer=peer, nbytes=sum(volume[b].nbytes for b in boxes), quiet=quiet,
               n_boxes=len(boxes))
    assert len(outs) == len(boxes)
    for i, (b, o) in enumerate(zip(boxes, outs)):
        assert_equal(o, volume[b], f"{peer} box {i} {b} of {case.key}")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("peer", ["voxcore", "tensorstore"])
def test_read_boxes_cached(benchmark, peer, case, stores, volume, boxes, size):
    """A fresh handle with a 1 GiB decoded-chunk cache each round: reuse within the 100 boxes."""
    p = make_peer(peer)
    path = stores[case.key]
    quiet = peer != "voxcore"

    def fresh_handle():  # untimed; the cache starts empty every round
        with quieted(quiet):
            return (p.open(path, case, cache=True),), {}

    read = p.read_box
    label = ("voxcore cache_bytes=1GiB" if peer == "voxcore"
             else "tensorstore cache_pool=1GiB")
    outs = run(benchmark, lambda h: [read(h, b) for b in boxes], setup=fresh_handle,
               op="boxes-cached", case=case, size=size, peer=label,
               nbytes=sum(volume[b].nbytes for b in boxes), quiet=quiet, n_boxes=len(boxes))
    for i, (b, o) in enumerate(zip(boxes, outs)):
        assert_equal(o, volume[b], f"{label} box {i} {b} of {case.key}")


# ------------------------------------------------------------------------------ whole write
# tensorstore twice: its default file_io_sync=true fsyncs every file as voxcore's durable=True
# does; file_io_sync=false is the like-for-like row of the peers that do not fsync.
WRITERS = [("voxcore", {}), ("voxcore durable=True", {"durable": True})] + [
    (name, {}) for name in list(PEERS)[1:] if name != "tensorstore"] + [
    ("tensorstore file_io_sync=true", {"file_io_sync": True}),
    ("tensorstore file_io_sync=false", {"file_io_sync": False})]
WRITE_PARAMS = [  # zarrista's ArrayBuilder creates v3 only: no v2 row rather than a skip
    pytest.param(peer, kw, case, id=f"{peer.replace(' durable=True', '-durable').replace(' ', '-')}-{case.key}")
    for peer, kw in WRITERS
    for case in CASES if not (peer == "zarrista" and case.fmt != 3)]


@pytest.mark.parametrize("peer,kw,case", WRITE_PARAMS)
def test_write_whole(benchmark, peer, kw, case, volume, workdir, size):
    """Create + write all of it. voxcore without fsync like the peers; durable=True (its
    default: fsync of every chunk file) is its own row."""
    p = make_peer(peer.split()[0], **kw)
    path = workdir / "written" / f"{case.key}-{peer.replace(' ', '_')}.zarr"

    run(benchmark, lambda: p.write(path, case, volume), setup=cleared(path), op="write", case=case,
        size=size, peer=peer, nbytes=volume.nbytes, quiet=not peer.startswith("voxcore"))
    assert _peers.zarr_layout(path) == _peers.expected_layout(case, size)
    assert_equal(_peers.zarr_read_back(path), volume, f"zarr-python read-back of {peer}'s write")
    benchmark.extra_info["stored_MiB"] = round(
        sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / MiB, 2)
    shutil.rmtree(path)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_floor_durable_write(benchmark, case, volume, workdir, size):
    """What putting these bytes on disk costs at least: voxcore's write with durable=False, then
    os.sync() (the kernel writes every dirty page back in one go, one journal commit). A durable
    write that overlaps its fsyncs with encoding can beat it; one that pays them on the compute
    threads cannot."""
    p = make_peer("voxcore", durable=False)
    path = workdir / "written" / f"{case.key}-floor-sync.zarr"

    def write():
        p.write(path, case, volume)
        os.sync()

    run(benchmark, write, setup=cleared(path), op="write", case=case, size=size,
        peer="floor: voxcore durable=False + os.sync", nbytes=volume.nbytes)
    assert_equal(_peers.zarr_read_back(path), volume, "read-back of the floor write")
    shutil.rmtree(path)


@pytest.mark.parametrize("durable", [False, True], ids=["plain", "durable"])
@pytest.mark.parametrize("chunk,shard", [(64, None), (32, None), (64, 256), (32, 256)],
                         ids=["c64", "c32", "c64-s256", "c32-s256"])
def test_durable_scaling(benchmark, chunk, shard, durable, volume, workdir, size):
    """How the cost of durability grows with the number of files: v3 zstd-1 writes with 64^3
    and 32^3 chunks, unsharded (one file per chunk) and in 256^3 shards, durable or not."""
    import voxcore as vc

    shard = min(shard, size) if shard else None
    path = workdir / "written" / f"scaling-{chunk}-{shard}-{durable}.zarr"
    def write():
        vc.create_array(path, volume.shape, volume.dtype, chunks=chunk, shards=shard, codec="zstd",
                        overwrite=True, durable=durable).write(volume)

    n_files = (size // (shard or chunk)) ** 3
    run(benchmark, write, setup=cleared(path), op="durable-scaling", case=None, size=size,
        peer=f"voxcore {chunk}^3 chunks{f' {shard}^3 shards' if shard else ''} "
             f"({n_files} files){' durable=True' if durable else ''}",
        nbytes=volume.nbytes, rounds=ROUNDS["write"], files=n_files)
    assert_equal(vc.open(path).read(), volume, "scaling write")
    shutil.rmtree(path)


# ------------------------------------------------------------------------------ floors
@pytest.fixture(scope="module")
def floors():
    with Floors() as f:
        yield f


@pytest.fixture(scope="module")
def chunks(stores):
    """codec -> (coords, chunk bytes in RAM) of the unsharded stores (sharded cases reuse the
    zstd chunks: the inner chunks are the same bytes)."""
    return {"zstd": chunk_set(stores["v3-zstd1"], 3),
            "blosc": chunk_set(stores["v2-blosc-lz4-shuf"], 2)}


def test_floor_memcpy(benchmark, volume, size):
    dst = np.empty_like(volume)
    run(benchmark, lambda: np.copyto(dst, volume), op="memcpy", case=None, size=size,
        peer="floor: np.copyto into a preallocated array", nbytes=volume.nbytes)
    assert_equal(dst, volume, "memcpy")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_floor_read(benchmark, case, chunks, floors, volume, size):
    coords, data = chunks[case.codec]
    out = run(benchmark, lambda: floors.read_whole(coords, data, case.codec, volume.shape),
              op="read", case=case, size=size,
              peer=f"floor: {case.codec} decode+scatter {floors.nthreads}T (no I/O)",
              nbytes=volume.nbytes)
    assert_equal(out, volume, f"floor read {case.key}")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_floor_boxes(benchmark, case, chunks, floors, volume, boxes, size):
    coords, data = chunks[case.codec]
    plans = floors.box_plans(coords, boxes)
    edge = boxes[0][0].stop - boxes[0][0].start
    outs = run(benchmark, lambda: floors.read_boxes(data, case.codec, plans, edge), op="boxes",
               case=case, size=size,
               peer=f"floor: {case.codec} decode+copy touched chunks {floors.nthreads}T (no I/O)",
               nbytes=sum(volume[b].nbytes for b in boxes),
               chunk_decodes=sum(len(p) for p in plans))
    for i, (b, o) in enumerate(zip(boxes, outs)):
        assert_equal(o, volume[b], f"floor box {i} {case.key}")


@pytest.mark.parametrize("files", [False, True], ids=["no-io", "files"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_floor_write(benchmark, case, files, floors, volume, workdir, size):
    outdir = workdir / "floor-write" / case.key if files else None
    what = "+ one file per chunk" if files else "(no I/O)"

    nbytes = run(benchmark, lambda: floors.encode_whole(volume, case.codec, outdir),
                 setup=cleared(outdir) if outdir is not None else None, op="write", case=case, size=size,
                 peer=f"floor: gather+{case.codec} encode {floors.nthreads}T {what}",
                 nbytes=volume.nbytes)
    assert 0 < nbytes < volume.nbytes  # the volume compresses (~1.8x at 512)
    if outdir is not None:
        n_files = sum(len(f) for _, _, f in os.walk(outdir))
        assert n_files == (size // 64) ** 3
        shutil.rmtree(outdir)
