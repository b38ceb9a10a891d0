"""HCS plate write and read: voxcore against ome-zarr-py, in the same run on the same data.

A 4 x 6 plate, 2 fields per well, each field (c, z, y, x) = (3, 32, 512, 512) uint16 (48
fields, 2.25 GiB; content: slabs of the benchmarks' smooth-field volume, shifted per field)
with 3-level pyramids (2x in y and x).

- ``plate-write``: every field written with its pyramid and the plate/well metadata. voxcore
  ``vc.create_plate`` + ``write_field(build_pyramid(field, [{y: 2, x: 2}] * 2))`` at its
  defaults (64^3 chunks clipped to (1, 32, 64, 64), zstd-1, mean, durable=True: an fsync per
  file), and like ome-zarr-py (its chunks (1, 32, 256, 256), zstd-1, nearest, no fsync);
  ome-zarr-py ``write_plate_metadata`` + ``write_well_metadata`` + ``write_image``
  (``scale_factors=(2, 4)``: y and x; ``method=nearest``, its fastest) with the same chunks and codec.
- ``plate-read``: every field's level 0 read back whole into numpy (voxcore: ``vc.open(plate)``
  then each field's ``read()``; ome-zarr-py: its Reader on each field, ``node.data[0]``
  computed), each compared with what was written.

iohub (the other anchor) needs zarr-python 2 and cannot be installed beside zarr-python 3 here.
Smoke runs (benchmarks disabled) use a 2 x 2 plate of (3, 8, 64, 64) fields.
"""
from __future__ import annotations


import _peers
import numpy as np
import pytest
from _data import MiB, make_volume
from bench_slide import run
from bench_zarr import fresh_trees

ROWS_FULL, COLS_FULL = list("ABCD"), [str(i) for i in range(1, 7)]
FIELDS = 2
ZYX_FULL = (32, 512, 512)
PEER_CHUNKS = (1, 32, 256, 256)
ROUNDS = {"plate-write": 3, "plate-read": 5}


@pytest.fixture(scope="module")
def smoke(request) -> bool:
    cfg = request.config
    return bool(cfg.getoption("benchmark_disable") and not cfg.getoption("benchmark_enable"))


@pytest.fixture(scope="module")
def layout(smoke):
    if smoke:
        return ["A", "B"], ["1", "2"], (8, 64, 64)
    return ROWS_FULL, COLS_FULL, ZYX_FULL


@pytest.fixture(scope="module")
def fields(layout) -> dict[tuple[str, int], np.ndarray]:
    rows, cols, (z, y, x) = layout
    vol = make_volume(max(64, y))
    slabs = vol.shape[0] // z
    out, k = {}, 0
    for r in rows:
        for c in cols:
            for f in range(FIELDS):
                chans = [np.roll(vol[(3 * k + ch) % slabs * z:][:z, :y, :x], 7 * k, axis=2) for ch in range(3)]
                a = np.stack(chans)
                a.setflags(write=False)
                out[(f"{r}/{c}", f)] = a
                k += 1
    return out


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """A new tree per round, removed at the end of the module (fresh_trees); each round starts
    with the page cache dropped where that is allowed: otherwise the later rows write while the
    kernel evicts the earlier rows' gigabytes of pages (16.6 s against 6.7 s in a fresh process
    for voxcore's default write, measured), and the rows' order decides the ratios."""
    with fresh_trees(tmp_path_factory.mktemp("plates"), ".ome.zarr", drop_caches=True) as fresh:
        yield fresh


def voxcore_write(layout, fields, **opts):
    import voxcore as vc

    rows, cols, _ = layout

    def write(out):
        with vc.create_plate(out, rows, cols, durable=opts.get("durable", True)) as w:
            for (well, _f), a in fields.items():
                img = vc.from_array(a, dims=("c", "z", "y", "x"))
                pyr = vc.build_pyramid(img, [{"y": 2, "x": 2}, {"y": 4, "x": 4}], opts.get("method", "mean"))
                w.write_field(well, pyr, chunks=opts.get("chunks", 64))
    return write


def ome_zarr_write(layout, fields):
    import zarr
    from zarr.codecs import ZstdCodec

    with _peers.quiet():  # ome-zarr-py warns about its own deprecated Scaler on import
        from ome_zarr.format import FormatV05
        from ome_zarr.scale import Methods
        from ome_zarr.writer import write_image, write_plate_metadata, write_well_metadata

    rows, cols, _ = layout
    fmt = FormatV05()

    def write(out):
        root = zarr.open_group(str(out), mode="w", zarr_format=3)
        wells = sorted({w for w, _ in fields}, key=lambda w: (rows.index(w[0]), cols.index(w[2:])))
        write_plate_metadata(root, rows, cols, wells, fmt=fmt, field_count=FIELDS)
        for well in wells:
            r, c = well.split("/")
            wg = root.require_group(r).require_group(c)
            write_well_metadata(wg, [{"path": str(f)} for f in range(FIELDS)], fmt=fmt)
            for f in range(FIELDS):
                write_image(fields[(well, f)], wg.require_group(str(f)), axes="czyx", fmt=fmt,
                            scale_factors=(2, 4), method=Methods.NEAREST,
                            storage_options={"chunks": PEER_CHUNKS,
                                             "compressors": ZstdCodec(level=1, checksum=False)})
    return write


WRITERS = {
    "voxcore": lambda layout, fields: voxcore_write(layout, fields),
    "voxcore like ome-zarr-py (chunks (1, 32, 256, 256), nearest, durable=False)":
        lambda layout, fields: voxcore_write(layout, fields, chunks=PEER_CHUNKS, method="nearest",
                                             durable=False),
    "ome-zarr-py write_image per field (dask)": ome_zarr_write,
}


DEFAULT_CHUNKS = (1, 32, 64, 64)  # voxcore's default: 64 per space axis, clipped to z=32


class PlateFloor:
    """What any plate writer must do at least, on n threads with the bytes in RAM: zstd-1 of
    every chunk of every level (levels and chunks prepared untimed) and a write of each
    compressed chunk to a new file under a fresh tree of Zarr v3 keys; durable: then one
    ``os.sync()`` (every file on stable storage, as voxcore's default durable=True asks);
    gather: each chunk is cut out of its field inside the timing instead (its nearest level's
    voxels picked by the same strided copy: the levels and the chunk buffers are work that any
    writer of these fields does too)."""

    def __init__(self, fields, nthreads: int, chunks=PEER_CHUNKS, durable: bool = False,
                 gather: bool = False):
        import threading
        from concurrent.futures import ThreadPoolExecutor

        import zstandard

        self.chunks, self.durable = [], durable
        cz, cy, cx = chunks[1:]
        for (well, f), a in fields.items():
            for k, step in enumerate((1, 2, 4)):
                lv = a[:, :, ::step, ::step]
                for c in range(lv.shape[0]):
                    for z in range(0, lv.shape[1], cz):
                        for y in range(0, lv.shape[2], cy):
                            for x in range(0, lv.shape[3], cx):
                                key = f"{well}/{f}/{k}/c/{c}/{z // cz}/{y // cy}/{x // cx}"
                                part = (lv, (c, slice(z, z + cz), slice(y, y + cy), slice(x, x + cx)))
                                self.chunks.append((key, part if gather else np.ascontiguousarray(lv[part[1]])))
        self.nthreads, self._tls, self._new = nthreads, threading.local(), zstandard.ZstdCompressor
        self._ex = ThreadPoolExecutor(nthreads)

    def close(self):
        self._ex.shutdown()

    def run(self, out) -> None:
        import os

        nt = self.nthreads

        def work(t):
            z = getattr(self._tls, "z", None)
            if z is None:
                z = self._tls.z = self._new(level=1)
            for key, chunk in self.chunks[t::nt]:
                if isinstance(chunk, tuple):  # (level view, box): gathered here, timed
                    chunk = np.ascontiguousarray(chunk[0][chunk[1]])
                path = out / key
                path.parent.mkdir(parents=True, exist_ok=True)
                with open(path, "wb") as f:
                    f.write(z.compress(chunk))
        list(self._ex.map(work, range(nt)))
        if self.durable:
            os.sync()


FLOORS = {
    "like": (PEER_CHUNKS, False, "floor: zstd-1 of every chunk of the 3 levels + write of each to a new file"),
    "gather": (PEER_CHUNKS, False, "floor: chunks gathered from the fields (nearest levels by strided copy) + "
                                   "zstd-1 + write of each to a new file, all timed"),
    "durable": (DEFAULT_CHUNKS, True, "floor: durable, zstd-1 of every (1, 32, 64, 64) chunk of the 3 levels "
                                       "+ write of each to a new file + one sync()"),
}


@pytest.mark.parametrize("kind", list(FLOORS))
def test_plate_write_floor(benchmark, layout, fields, outputs, kind):
    from _floors import n_threads

    nt = n_threads()
    chunks, durable, label = FLOORS[kind]
    floor = PlateFloor(fields, nt, chunks, durable, gather=kind == "gather")
    try:
        run(benchmark, floor.run, setup=outputs("floor"), op="plate-write", case="4x6x2 fields",
            edge=layout[2][-1], nbytes=_nbytes(fields), rounds=ROUNDS["plate-write"], warmup=0,
            peer=f"{label}, {nt}T (bytes in RAM)")
    finally:
        floor.close()


def _nbytes(fields) -> int:
    return sum(a.nbytes for a in fields.values())


@pytest.mark.parametrize("peer", list(WRITERS), ids=["voxcore", "voxcore-like-peer", "ome-zarr-py"])
def test_plate_write(benchmark, peer, layout, fields, outputs):
    if peer.startswith("ome-zarr-py"):
        pytest.importorskip("ome_zarr")
    write = WRITERS[peer](layout, fields)
    made = []

    def timed(out):
        made.append(out)
        write(out)
    run(benchmark, timed, setup=outputs(peer.split()[0]), op="plate-write", case="4x6x2 fields",
        edge=layout[2][-1], peer=peer, nbytes=_nbytes(fields), quiet=not peer.startswith("voxcore"),
        rounds=ROUNDS["plate-write"] if peer.startswith("voxcore") else 1, warmup=0)
    check_plate(made[-1], fields)


def check_plate(path, fields) -> None:
    import voxcore as vc

    plate = vc.open(path)
    assert sorted(plate.wells) == sorted({w for w, _ in fields})
    for (well, f), a in fields.items():
        img = plate[well][f]
        assert len(img.levels) == 3
        np.testing.assert_array_equal(img.read(), a)


@pytest.fixture(scope="module")
def written_plate(layout, fields, tmp_path_factory):
    """One plate for both readers: written by voxcore with the peer's chunks, no fsync."""
    out = tmp_path_factory.mktemp("plate-read") / "plate.ome.zarr"
    voxcore_write(layout, fields, chunks=PEER_CHUNKS, durable=False)(out)
    return out


def voxcore_read(path, fields):
    import voxcore as vc

    plate = vc.open(path)
    return {(w, f): plate[w][f].read() for (w, f) in fields}


def ome_zarr_read(path, fields):
    with _peers.quiet():
        from ome_zarr.io import parse_url
        from ome_zarr.reader import Reader

    out = {}
    for (w, f) in fields:
        node = list(Reader(parse_url(str(path / w / str(f)), mode="r"))())[0]
        out[(w, f)] = np.asarray(node.data[0])
    return out


@pytest.mark.parametrize("peer", ["voxcore", "ome-zarr-py Reader per field (dask compute)"],
                         ids=["voxcore", "ome-zarr-py"])
def test_plate_read(benchmark, peer, layout, fields, written_plate):
    if peer.startswith("ome-zarr-py"):
        pytest.importorskip("ome_zarr")
    read = voxcore_read if peer == "voxcore" else ome_zarr_read
    got = run(benchmark, lambda: read(written_plate, fields), op="plate-read", case="4x6x2 fields",
              edge=layout[2][-1], peer=peer, nbytes=_nbytes(fields), quiet=peer != "voxcore",
              rounds=ROUNDS["plate-read"] if peer == "voxcore" else 2)
    for key, a in fields.items():
        np.testing.assert_array_equal(got[key], a)
    benchmark.extra_info["MiB_total"] = round(_nbytes(fields) / MiB, 1)
