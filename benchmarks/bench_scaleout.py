"""Scale-out: a 2x mean downsample of a Zarr array, chunk by chunk, on threads and on a cluster.

The job a team runs when one machine is not enough: read a big array chunk by chunk, reduce
each chunk, write the result into another array, with the chunks spread over workers. The
source is the benchmark volume tiled 2x in y and x (size x 2size x 2size uint16, i.e.
512x1024x1024 at the default size), stored as Zarr v3 with 128^3 chunks, zstd level 1. The
target is its 2x2x2 mean (rounded half up, exact) with 64^3 chunks, zstd level 1, created in
the timed region. Each row is timed from opening the source to the last chunk on disk
(no fsync, as the peers); throughput is source bytes / median.

Rows (op "scaleout"):
- voxcore ``View.for_zipped_chunks`` (each pair: ``read`` -> ``downsample`` -> ``write``)
  with a 2-thread ``ThreadPoolExecutor``, and with a ``dask.distributed`` LocalCluster of two
  single-threaded worker processes (views travel as path + box; workers reopen the arrays);
- dask.array ``coarsen(np.mean)`` + ``da.store`` into a zarr-python array of the same layout,
  on dask's threaded scheduler (2 workers) and on the same LocalCluster;
- webknossos-libs ``downsample_mag`` (when ``import webknossos`` works) with a 2-process
  cluster_tools executor, its own dataset layout (sharded Zarr3, 64^3 target chunks, the same
  zstd level): webknossos has no mean, so the row runs its default (median) and is checked to
  be close to the mean, not equal.

Op "scaleout-overhead": the same pairs with a function that does nothing, on the threads and
on the cluster; extra_info["per_chunk_ms"] is the cost of dispatching one pair (pickling two
views, scheduling, reopening the arrays in the worker). The cluster is started once per
module, outside the timings.
"""
from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from bench_zarr import assert_equal, quieted, run

RUN_ORDER = (("test_scaleout_downsample",), ("test_scaleout_overhead",))
ROUNDS = 3
SRC_CHUNK = (128, 128, 128)
PEERS = ["voxcore threads=2", "voxcore LocalCluster 2 procs", "dask.array threads=2",
         "dask.array LocalCluster 2 procs", "webknossos downsample_mag (median) 2 procs"]


def downsample_pair(source, target):
    """One chunk pair: read, 2x2x2 mean in the core, write (module level: workers import it)."""
    import voxcore as vc

    target.write(vc.downsample(source.read(), 2, "mean"))


def nothing(source, target):
    return None


def round_mean2(a: np.ndarray) -> np.ndarray:
    s = np.zeros(tuple(n // 2 for n in a.shape), np.uint32)
    for dz in (0, 1):
        for dy in (0, 1):
            for dx in (0, 1):
                s += a[dz::2, dy::2, dx::2]
    return ((s + 4) >> 3).astype(a.dtype)


@pytest.fixture(scope="module")
def job(volume, workdir):
    """Source array on disk, its chunk shapes, the expected target and the work directory."""
    import voxcore as vc

    data = np.tile(volume, (1, 2, 2))
    src_chunk = tuple(min(c, s) for c, s in zip(SRC_CHUNK, data.shape))
    root = workdir / "scaleout"
    src = vc.create_array(root / "src.zarr", data.shape, data.dtype, chunks=src_chunk,
                          codec="zstd", dims=("z", "y", "x"), overwrite=True, durable=False)
    src.write(data)
    return {"root": root, "src": root / "src.zarr", "src_chunk": src_chunk,
            "dst_chunk": tuple(c // 2 for c in src_chunk), "nbytes": data.nbytes,
            "shape": data.shape, "expected": round_mean2(data), "data": data}


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with quieted(True):  # distributed's own start-up and shutdown chatter only
        cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                           host="127.0.0.1", dashboard_address=None)
        c = distributed.Client(cluster, set_as_default=False)
    yield c
    with quieted(True):
        c.close()
        cluster.close()


# ---------------------------------------------------------------------------------- voxcore
def voxcore_run(job, dst, executor, fn=downsample_pair):
    import voxcore as vc

    target = vc.create_array(dst, job["expected"].shape, "uint16", chunks=job["dst_chunk"],
                             codec="zstd", dims=("z", "y", "x"), overwrite=True, durable=False)
    source = vc.open(job["src"], durable=False).view(read_only=True)
    source.for_zipped_chunks(fn, target.view(), source_chunk_shape=job["src_chunk"],
                             executor=executor, progress=False)


def voxcore_threads(job, dst, fn=downsample_pair):
    with ThreadPoolExecutor(2) as ex:
        voxcore_run(job, dst, ex, fn)


# ---------------------------------------------------------------------------------- dask
def dask_run(job, dst, scheduler):
    import dask.array as da
    import zarr

    src = da.from_zarr(zarr.open_array(str(job["src"]), mode="r"))
    mean = da.coarsen(np.mean, src, {0: 2, 1: 2, 2: 2})
    result = da.floor(mean + 0.5).astype(np.uint16)  # round half up, as the expected
    target = zarr.create_array(str(dst), shape=result.shape, chunks=job["dst_chunk"],
                               dtype="uint16", fill_value=0, overwrite=True,
                               compressors=zarr.codecs.ZstdCodec(level=1, checksum=False),
                               dimension_names=("z", "y", "x"))
    if scheduler == "threads":
        da.store(result, target, lock=False, scheduler="threads", num_workers=2)
    else:
        scheduler.compute(da.store(result, target, lock=False, compute=False)).result()


# ---------------------------------------------------------------------------------- webknossos
def _wk_codecs():
    from webknossos.dataset.layer.view._array import Zarr3Config

    return Zarr3Config(codecs=(
        {"name": "transpose", "configuration": {"order": [3, 2, 1, 0]}},
        {"name": "bytes", "configuration": {"endian": "little"}},
        {"name": "zstd", "configuration": {"level": 1, "checksum": False}}))


@pytest.fixture(scope="module")
def wk_layer(job):
    """A webknossos dataset holding the source (x, y, z order, as webknossos stores it)."""
    wk = pytest.importorskip("webknossos")
    import cluster_tools

    with quieted(True):
        path = job["root"] / "wk"
        shutil.rmtree(path, ignore_errors=True)
        ds = wk.Dataset(path, voxel_size=(1, 1, 1))
        data_xyz = job["data"].T
        layer = ds.add_layer("color", "color", dtype="uint16",
                             bounding_box=wk.BoundingBox((0, 0, 0), data_xyz.shape))
        c = job["src_chunk"][0]
        layer.add_mag(1, chunk_shape=c, shard_shape=c, compress=_wk_codecs()).write(
            data_xyz, absolute_offset=(0, 0, 0))
        with cluster_tools.get_executor("multiprocessing", max_workers=2) as ex:
            yield layer, ex


def wk_run(layer, executor, dst_chunk):
    import webknossos as wk

    layer.downsample_mag(wk.Mag(1), wk.Mag(2), interpolation_mode="median",
                         compress=_wk_codecs(), chunk_shape=dst_chunk[0],
                         shard_shape=dst_chunk[0], executor=executor)


# ---------------------------------------------------------------------------------- checks
def check_target(path, job, what):
    import zarr

    with quieted(True):
        arr = zarr.open_array(str(path), mode="r")
        got = arr[...]
    assert arr.chunks == job["dst_chunk"], f"{what}: chunks {arr.chunks}"
    codecs = [(type(c).__name__, c.level, c.checksum) for c in arr.compressors]
    assert codecs == [("ZstdCodec", 1, False)], f"{what}: compressors {arr.compressors}"
    assert_equal(got, job["expected"], what)


@pytest.mark.parametrize("peer", PEERS)
def test_scaleout_downsample(benchmark, peer, job, size, request):
    dst = job["root"] / f"dst-{PEERS.index(peer)}.zarr"

    def clear():  # untimed: every round starts from no files and no dirty pages
        shutil.rmtree(dst, ignore_errors=True)
        os.sync()

    setup = clear
    quiet = not peer.startswith("voxcore")
    n_chunks = int(np.prod([-(-s // c) for s, c in zip(job["shape"], job["src_chunk"])]))
    info = {"n_chunks": n_chunks, "src_chunk": list(job["src_chunk"])}
    if peer == "voxcore threads=2":
        fn = lambda: voxcore_threads(job, dst)
    elif peer == "voxcore LocalCluster 2 procs":
        client = request.getfixturevalue("client")
        fn = lambda: voxcore_run(job, dst, client)
    elif peer == "dask.array threads=2":
        pytest.importorskip("dask")
        fn = lambda: dask_run(job, dst, "threads")
    elif peer == "dask.array LocalCluster 2 procs":
        pytest.importorskip("dask")
        client = request.getfixturevalue("client")
        fn = lambda: dask_run(job, dst, client)
    else:
        layer, ex = request.getfixturevalue("wk_layer")

        def clear_wk():  # webknossos keeps its levels in its own dataset
            with quieted(True):
                if "2" in {m.to_layer_name() for m in layer.mags}:
                    layer.delete_mag(2)
            os.sync()

        setup = clear_wk
        fn = lambda: wk_run(layer, ex, job["dst_chunk"])
    run(benchmark, fn, setup=setup, op="scaleout", case=None, size=size, peer=peer,
        nbytes=job["nbytes"], quiet=quiet, rounds=ROUNDS, **info)
    if peer.startswith("webknossos"):
        with quieted(True):
            got = layer.get_mag(2).read()[0].T  # (c, x, y, z) -> (z, y, x)
        want = job["expected"].astype(np.float64)
        got = got[tuple(slice(0, s) for s in want.shape)].astype(np.float64)
        corr = float(np.corrcoef(got.ravel(), want.ravel())[0, 1])
        assert got.shape == want.shape and corr >= 0.9, f"{peer}: far from the mean ({corr:.3f})"
        benchmark.extra_info["corr_with_mean"] = round(corr, 4)
    else:
        check_target(dst, job, peer)


@pytest.mark.parametrize("peer", ["voxcore no-op threads=2", "voxcore no-op LocalCluster 2 procs"])
def test_scaleout_overhead(benchmark, peer, job, size, request):
    """Dispatch cost per chunk pair: the same for_zipped_chunks with a function that does nothing."""
    dst = job["root"] / "dst-noop.zarr"
    if "LocalCluster" in peer:
        client = request.getfixturevalue("client")
        fn = lambda: voxcore_run(job, dst, client, nothing)
    else:
        fn = lambda: voxcore_threads(job, dst, nothing)
    n_chunks = int(np.prod([-(-s // c) for s, c in zip(job["shape"], job["src_chunk"])]))
    run(benchmark, fn, op="scaleout-overhead", case=None, size=size, peer=peer,
        nbytes=job["nbytes"], rounds=ROUNDS, n_chunks=n_chunks)
    if benchmark.stats is not None:
        benchmark.extra_info["per_chunk_ms"] = round(
            benchmark.stats.stats.median / n_chunks * 1e3, 3)
