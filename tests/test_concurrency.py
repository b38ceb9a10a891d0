"""Concurrency and crash safety of Zarr writes (RELIABILITY.md 5 and 6).

- 8 threads write disjoint, unaligned regions of one compressed array whose boundaries cut
  through chunks and shards: the result equals the numpy oracle exactly (v2, v3, sharded).
- Readers running while a writer rewrites every chunk always see, per chunk, either the old or
  the new contents, never a torn chunk, and never raise (threads, and a writer process).
- A writer process killed with SIGKILL mid-write leaves an array whose every chunk is readable
  (old or new) and no temporary file that looks like a chunk.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import voxcore as vc
import zarr

SHAPE = (40, 45, 50)
CHUNKS = (8, 8, 8)
SHARDS = (16, 16, 16)
CUTS = ((0, 19, 40), (0, 23, 45), (0, 27, 50))  # unaligned: every cut goes through chunks

LAYOUTS = [
    pytest.param({"zarr_format": 2, "codec": "zstd"}, id="v2-zstd"),
    pytest.param({"zarr_format": 2, "codec": "blosc-lz4", "dimension_separator": "/"},
                 id="v2-blosc-slash"),
    pytest.param({"zarr_format": 3, "codec": "zstd"}, id="v3-zstd"),
    pytest.param({"zarr_format": 3, "codec": "zstd", "shards": SHARDS}, id="v3-sharded-zstd"),
    pytest.param({"zarr_format": 3, "codec": "gzip", "shards": SHARDS}, id="v3-sharded-gzip"),
]


def eight_boxes():
    boxes = []
    for i in range(2):
        for j in range(2):
            for k in range(2):
                boxes.append((slice(CUTS[0][i], CUTS[0][i + 1]), slice(CUTS[1][j], CUTS[1][j + 1]),
                              slice(CUTS[2][k], CUTS[2][k + 1])))
    return boxes


def pieces(box, rows=3):
    """Split a box into slabs of a few rows so that many writes hit each shared chunk."""
    a = box[0]
    for s in range(a.start, a.stop, rows):
        yield (slice(s, min(s + rows, a.stop)),) + box[1:]


@pytest.mark.parametrize("handles", ["shared-handle", "handle-per-thread"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_threads_write_disjoint_unaligned_regions(tmp_path, layout, handles, make_volume,
                                                  quiet_zarr, bit_equal):
    path = tmp_path / "a.zarr"
    img = vc.create_array(path, SHAPE, "u2", chunks=CHUNKS, **layout)
    boxes = eight_boxes()
    for round_ in range(3):
        src = make_volume(SHAPE, "u2", 100 + round_)
        barrier = threading.Barrier(len(boxes))

        def work(box, src=src, barrier=barrier):
            target = img if handles == "shared-handle" else vc.open(path)
            barrier.wait()
            for piece in pieces(box):
                target.write(src[piece], offset=tuple(s.start for s in piece), allow_unaligned=True)

        with ThreadPoolExecutor(len(boxes)) as ex:
            for f in [ex.submit(work, b) for b in boxes]:
                f.result()
        bit_equal(vc.open(path).read(), src, f"round {round_}: voxcore read")
        with quiet_zarr():
            data = zarr.open_array(str(path), mode="r")[...]
        bit_equal(data, src, f"round {round_}: zarr-python read")


# ---------------------------------------------------------------------------- readers vs writer
K = 100_000  # generation stride: value = base + generation * K (uint32)


def generation_of(read: np.ndarray, base: np.ndarray, chunks) -> np.ndarray:
    """Per-chunk generation of a full read; raises AssertionError on a torn or corrupt chunk."""
    diff = read.astype(np.int64) - base.astype(np.int64)
    assert (diff % K == 0).all(), "values that no writer wrote"
    gen = diff // K
    counts = [-(-s // c) for s, c in zip(read.shape, chunks)]
    out = np.empty(counts, dtype=np.int64)
    for idx in np.ndindex(*counts):
        sl = tuple(slice(i * c, (i + 1) * c) for i, c in zip(idx, chunks))
        g = np.unique(gen[sl])
        assert len(g) == 1, f"chunk {idx} is torn: generations {g.tolist()}"
        out[idx] = g[0]
    return out


RW_SHAPE = (32, 32, 32)
RW_CHUNKS = (16, 16, 16)

RW_LAYOUTS = [
    pytest.param({"zarr_format": 2, "codec": "zstd"}, id="v2"),
    pytest.param({"zarr_format": 3, "codec": "blosc-lz4"}, id="v3"),
    pytest.param({"zarr_format": 3, "codec": "zstd", "shards": (16, 32, 32)}, id="v3-sharded"),
]


def base_volume(seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 1000, size=RW_SHAPE, dtype=np.uint32)


@pytest.mark.parametrize("layout", RW_LAYOUTS)
def test_readers_see_old_or_new_chunks_while_writer_rewrites(tmp_path, layout):
    path = tmp_path / "a.zarr"
    base = base_volume()
    img = vc.create_array(path, RW_SHAPE, "u4", chunks=RW_CHUNKS, **layout)
    img.write(base)  # generation 0
    generations = 15
    done = threading.Event()
    seen: list[set] = []

    def writer():
        try:
            for g in range(1, generations + 1):
                img.write(base + np.uint32(g * K))
        finally:
            done.set()

    def reader(fresh_handles: bool):
        mine = set()
        handle = vc.open(path)
        reads = 0
        while not done.is_set() or reads < 3:
            if fresh_handles:
                handle = vc.open(path)
            gens = generation_of(handle.read(), base, RW_CHUNKS)
            mine.update(gens.ravel().tolist())
            sub = handle[3:29, 10:, :17]  # an unaligned box: every value old or new too
            d = sub.astype(np.int64) - base[3:29, 10:, :17]
            assert (d % K == 0).all() and (d // K <= generations).all()
            reads += 1
        seen.append(mine)

    with ThreadPoolExecutor(4) as ex:
        futures = [ex.submit(writer)] + [ex.submit(reader, i % 2 == 0) for i in range(3)]
        for f in futures:
            f.result()  # re-raises any reader assertion or voxcore error
    final = generation_of(vc.open(path).read(), base, RW_CHUNKS)
    assert (final == generations).all()
    assert all(s <= set(range(generations + 1)) for s in seen)


WRITER_LOOP = """
import sys
import numpy as np
import voxcore as vc
path, start, stop = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
base = np.random.default_rng(0).integers(0, 1000, size={shape}, dtype=np.uint32)
img = vc.open(path)
print("ready", flush=True)
for g in range(start, stop):
    img.write(base + np.uint32(g * {K}))
    print(g, flush=True)
"""


def writer_script(tmp_path: Path) -> Path:
    p = tmp_path / "writer.py"
    p.write_text(WRITER_LOOP.format(shape=RW_SHAPE, K=K))
    return p


def test_readers_while_a_writer_process_rewrites(tmp_path):
    path = tmp_path / "a.zarr"
    base = base_volume()
    vc.create_array(path, RW_SHAPE, "u4", chunks=RW_CHUNKS, codec="zstd").write(base)
    proc = subprocess.Popen([sys.executable, str(writer_script(tmp_path)), str(path), "1", "25"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err = ""
    try:
        assert proc.stdout.readline().strip() == "ready"
        reads = 0
        while proc.poll() is None or reads < 3:
            generation_of(vc.open(path).read(), base, RW_CHUNKS)
            reads += 1
    finally:
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate(timeout=60)  # also closes the pipes
    assert proc.returncode == 0, err
    assert (generation_of(vc.open(path).read(), base, RW_CHUNKS) == 24).all()


# ---------------------------------------------------------------------------- SIGKILL
def chunk_key_pattern(layout) -> re.Pattern:
    n = len(RW_SHAPE)
    if layout["zarr_format"] == 3:
        return re.compile(r"c" + r"/\d+" * n)
    sep = re.escape(layout.get("dimension_separator") or ".")
    return re.compile(r"\d+" + (sep + r"\d+") * (n - 1))


KILL_LAYOUTS = [
    pytest.param({"zarr_format": 2, "codec": "zstd"}, id="v2"),
    pytest.param({"zarr_format": 2, "codec": "zstd", "dimension_separator": "/"}, id="v2-slash"),
    pytest.param({"zarr_format": 3, "codec": "zstd"}, id="v3"),
    pytest.param({"zarr_format": 3, "codec": "zstd", "shards": (16, 32, 32)}, id="v3-sharded"),
]


@pytest.mark.parametrize("layout", KILL_LAYOUTS)
def test_sigkill_mid_write_leaves_readable_chunks(tmp_path, layout, quiet_zarr, bit_equal):
    path = tmp_path / "a.zarr"
    base = base_volume()
    vc.create_array(path, RW_SHAPE, "u4", chunks=RW_CHUNKS, **layout).write(base)
    grid = layout.get("shards", RW_CHUNKS)
    n_keys = 1
    for s, c in zip(RW_SHAPE, grid):
        n_keys *= -(-s // c)
    key_re = chunk_key_pattern(layout)
    meta = {"zarr.json", ".zarray", ".zattrs", ".zgroup"}
    script = writer_script(tmp_path)
    rng = np.random.default_rng(7)
    gen = 1
    for attempt in range(3):
        proc = subprocess.Popen([sys.executable, str(script), str(path), str(gen), "1000000"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            ready = proc.stdout.readline().strip()
            if ready == "ready":
                time.sleep(float(rng.uniform(0.005, 0.08)))
                os.kill(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            _, err = proc.communicate(timeout=30)  # also closes the pipes
        assert ready == "ready", err
        assert proc.returncode == -signal.SIGKILL, err
        gen += 1000  # later generations are distinguishable from earlier ones
        # every chunk readable, each entirely one generation
        data = vc.open(path).read()
        gens = generation_of(data, base, RW_CHUNKS)
        assert gens.min() >= 0
        # zarr-python sees the same array (nothing torn, nothing extra)
        with quiet_zarr():
            zdata = zarr.open_array(str(path), mode="r")[...]
        bit_equal(zdata, data, f"kill {attempt}: zarr-python read vs voxcore read")
        # no temp file is visible as a chunk: every name that parses as a key is a real key
        files = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}
        keys = {f for f in files if key_re.fullmatch(f)}
        others = files - keys - meta
        assert len(keys) == n_keys, sorted(keys)
        for f in others:
            assert not key_re.fullmatch(f.split("/")[-1]) and not key_re.fullmatch(f), f


# ---------------------------------------------------------------------------- thread settings
def test_num_threads_setting_does_not_change_results(tmp_path, make_volume, bit_equal):
    src = make_volume((40, 45, 50), "f4", 3)
    path = tmp_path / "a.zarr"
    old = vc.get_num_threads()
    try:
        vc.set_num_threads(1)
        assert vc.get_num_threads() == 1
        vc.create_array(path, src.shape, "f4", chunks=CHUNKS, shards=SHARDS).write(src)
        one = vc.open(path).read()
        vc.set_num_threads(4)
        assert vc.get_num_threads() == 4
        four = vc.open(path).read()
    finally:
        vc.set_num_threads(old)
    assert vc.get_num_threads() == old
    bit_equal(one, src)
    bit_equal(four, src)
