"""Dask and clusters: Image.to_dask, and save / build_pyramid with executor=.

The oracles are voxcore's own local paths: to_dask blocks must equal Image.read, and a save run
on an executor (a thread pool or a two-process dask.distributed cluster) must leave the same
files with the same bytes as the same save run here. Blocks are made small (a tiny block
budget, a tiny dask chunk-size) so that edges, several blocks per level and several stages
are all exercised on small images.
"""

from __future__ import annotations

import os
import pickle
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import voxcore as vc
from voxcore.images import blocks
from voxcore.operations.pyramid import plan_levels
from voxcore.writers import blocks as block_writes

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

METHODS = ["mean", "mode", "nearest", "gaussian"]
LAYOUTS = {  # name: (save kwargs, dtype)
    "v0.4": ({"version": "0.4", "chunks": 8}, "uint8"),
    "v0.5": ({"version": "0.5", "chunks": (4, 8, 16)}, "uint16"),
    "sharded": ({"version": "0.5", "chunks": 4, "shards": 8}, "float32"),
}


@pytest.fixture(scope="module")
def client():
    # dashboard_address=None still binds the default port 8787 (and warns when it is taken): ":0"
    # lets the OS pick a free one.
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster, set_as_default=False) as c:
        yield c


@pytest.fixture(scope="module")
def threads():
    with ThreadPoolExecutor(2) as ex:
        yield ex


@pytest.fixture
def small_blocks(monkeypatch):
    """A 24 KiB block budget: several blocks per stage and several stages on small images."""
    monkeypatch.setattr(block_writes, "BLOCK_BUDGET_BYTES", 24 << 10)


def volume(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return (rng.standard_normal(shape) * 100).astype(dtype)
    return rng.integers(0, min(1000, np.iinfo(dtype).max), size=shape).astype(dtype)


def files(root) -> dict[str, bytes]:
    root = Path(root)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def assert_same_files(a, b):
    fa, fb = files(a), files(b)
    assert sorted(fa) == sorted(fb)
    differ = [k for k in fa if fa[k] != fb[k]]
    assert not differ, f"{len(differ)} files differ, e.g. {differ[:3]}"


def on_disk(tmp_path, a, chunks, name="src.zarr", **kw):
    img = vc.create_array(tmp_path / name, a.shape, a.dtype, chunks=chunks, **kw)
    img.write(a)
    return vc.open(tmp_path / name)


def assert_aligned(chunks, unit, shape):
    for ax, sizes in enumerate(chunks):
        assert sum(sizes) == shape[ax]
        edges = np.cumsum(sizes)[:-1]
        assert all(e % unit[ax] == 0 for e in edges), (ax, sizes, unit)


# ---- to_dask ----------------------------------------------------------------------------------

def _to_dask_case(tmp_path, case):
    if case == "v2":
        a = volume((37, 50, 29), "uint16", 1)
        return on_disk(tmp_path, a, (8, 16, 8), zarr_format=2), 0, a
    if case == "v3":
        a = volume((20, 33, 41), "float32", 2)
        return on_disk(tmp_path, a, (5, 8, 16)), 0, a
    if case == "sharded":
        a = volume((40, 40, 40), "uint8", 3)
        return on_disk(tmp_path, a, 4, shards=(8, 16, 8)), 0, a
    if case == "ome_level1":
        a = volume((2, 19, 30, 22), "uint16", 4)
        vc.save(vc.build_pyramid(vc.from_array(a, dims=("c", "z", "y", "x")), [2], "mean"), tmp_path / "o.zarr",
                chunks=(1, 4, 8, 8))
        img = vc.open(tmp_path / "o.zarr")
        return img, 1, img.read(level=1)
    a = volume((1, 7, 3), "int16", 5)  # odd, tiny, a unit axis
    return on_disk(tmp_path, a, (1, 4, 2)), 0, a


@pytest.mark.parametrize("case", ["v2", "v3", "sharded", "ome_level1", "odd"])
def test_to_dask_blocks_equal_read_on_threads_and_cluster(tmp_path, client, case):
    img, level, expected = _to_dask_case(tmp_path, case)
    arr = img.levels[level].image
    with dask.config.set({"array.chunk-size": "4KiB"}):
        d = img.to_dask(level=level)
    assert d.shape == expected.shape and d.dtype == expected.dtype
    unit = arr.shards or arr.chunks
    assert_aligned(d.chunks, unit, d.shape)  # default blocks: whole shards (else chunks)
    # grown within the budget (unless one storage unit alone is larger)
    unit_bytes = np.prod([min(u, s) for u, s in zip(unit, d.shape)]) * d.dtype.itemsize
    assert np.prod(d.chunksize) * d.dtype.itemsize <= max(4096, unit_bytes)
    assert d.npartitions > 1 or case == "odd"
    np.testing.assert_array_equal(d.compute(scheduler="threads"), expected)
    np.testing.assert_array_equal(client.compute(d).result(), expected)
    np.testing.assert_array_equal(d[1:, ::2].compute(scheduler="sync"), expected[1:, ::2])


def test_to_dask_default_grows_space_axes_first_and_stays_cheap(tmp_path):
    a = volume((3, 32, 32, 32), "uint16")
    vc.save(vc.from_array(a, dims=("c", "z", "y", "x")), tmp_path / "c.zarr", chunks=(1, 8, 8, 8))
    img = vc.open(tmp_path / "c.zarr")
    with dask.config.set({"array.chunk-size": "64KiB"}):
        d = img.to_dask()
    assert d.chunksize == (1, 32, 32, 32)  # 64 KiB: one whole channel per block, never two
    assert img.to_dask().chunksize == a.shape  # the default 128 MiB holds everything
    # the graph holds a path and slices, never voxels: ~100 bytes a task, for 1 KiB blocks
    graph = dict(img.to_dask(chunks=(1, 8, 8, 8)).__dask_graph__())
    assert len(graph) == 3 * 4 * 4 * 4 + 1
    assert len(pickle.dumps(graph)) < 250 * len(graph)


def test_to_dask_chunks_argument(tmp_path):
    a = volume((37, 50, 29), "uint16")
    img = on_disk(tmp_path, a, (8, 16, 8))
    d = img.to_dask(chunks=(16, -1, (8, 16, 5)))
    assert d.chunks == ((16, 16, 5), (50,), (8, 16, 5))
    np.testing.assert_array_equal(d.compute(scheduler="threads"), a)
    assert img.to_dask(chunks=64).chunks == ((37,), (50,), (29,))  # past the end: one block
    with pytest.raises(vc.InvalidArgumentError, match="multiples of the storage chunks"):
        img.to_dask(chunks=12)
    with pytest.raises(vc.InvalidArgumentError, match="multiples of the storage chunks"):
        img.to_dask(chunks=(8, 16, (4, 25)))
    with pytest.raises(vc.InvalidArgumentError, match="add up"):
        img.to_dask(chunks=(8, 16, (8, 8)))
    with pytest.raises(vc.InvalidArgumentError, match="one entry per axis"):
        img.to_dask(chunks=(8, 16))
    with pytest.raises(vc.InvalidArgumentError, match=">= 1"):
        img.to_dask(chunks=0)
    with pytest.raises(vc.InvalidArgumentError, match="level out of range"):
        img.to_dask(level=1)
    with pytest.raises(vc.InvalidArgumentError, match="Image or NiftiImage"):
        blocks.to_dask(a)


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_to_dask_nifti(tmp_path, client, suffix):
    nib = pytest.importorskip("nibabel")
    a = volume((12, 9, 7, 3), "int16")
    path = str(tmp_path / f"img{suffix}")
    nib.save(nib.Nifti1Image(a, np.eye(4)), path)
    img = vc.open(path)
    with dask.config.set({"array.chunk-size": "2KiB"}):
        d = img.to_dask()
    assert d.chunks[:3] == ((12,), (9,), (7,)) and len(d.chunks[3]) == 3  # slabs of the slowest axis
    np.testing.assert_array_equal(d.compute(scheduler="threads"), img.read())
    np.testing.assert_array_equal(client.compute(d).result(), a)


# ---- save / build_pyramid on an executor --------------------------------------------------------

@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("method", METHODS)
def test_save_on_cluster_is_byte_identical(tmp_path, client, small_blocks, method, layout):
    kw, dtype = LAYOUTS[layout]
    a = volume((21, 37, 45), dtype, seed=len(method))
    vc.save(vc.build_pyramid(a, [2, 4, 8], method), tmp_path / "local", **kw)
    vc.save(vc.build_pyramid(a, [2, 4, 8], method), tmp_path / "cluster", executor=client, **kw)
    assert_same_files(tmp_path / "local", tmp_path / "cluster")


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_save_on_threads_is_byte_identical(tmp_path, threads, small_blocks, dtype, layout):
    kw, _ = LAYOUTS[layout]
    a = volume((19, 30, 41), dtype, seed=7)
    for method in METHODS:
        local, remote = tmp_path / f"l-{method}", tmp_path / f"t-{method}"
        vc.save(vc.build_pyramid(a, [{"y": 2, "x": 2}, 4], method), local, **kw)
        pyr = vc.build_pyramid(a, [{"y": 2, "x": 2}, 4], method, executor=threads)
        assert pyr.streamed and pyr.levels[1].data is None and pyr.executor is threads
        vc.save(pyr, remote, **kw)
        assert_same_files(local, remote)


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_build_pyramid_4d_image_source_on_cluster(tmp_path, client, small_blocks, version):
    a = volume((2, 23, 30, 26), "uint16", seed=11)
    src = on_disk(tmp_path, a, (1, 8, 8, 8))
    img = vc.from_array(src, dims=("c", "z", "y", "x"), scale=(1, 2.0, 0.5, 0.5))
    factors = [{"y": 2, "x": 2}, {"z": 2, "y": 4, "x": 4}]
    kw = {"version": version, "chunks": 8, "shards": 16 if version == "0.5" else None}
    vc.save(vc.build_pyramid(img, factors, "gaussian"), tmp_path / "local", **kw)  # streamed locally
    vc.save(vc.build_pyramid(img, factors, "gaussian", executor=client), tmp_path / "cluster", **kw)
    assert_same_files(tmp_path / "local", tmp_path / "cluster")
    out = vc.open(tmp_path / "cluster")
    np.testing.assert_array_equal(out.read(), a)
    assert [lv.shape for lv in out.levels] == [(2, 23, 30, 26), (2, 23, 15, 13), (2, 12, 8, 7)]


def test_dask_source_and_single_level_on_cluster(tmp_path, client, small_blocks):
    a = volume((30, 34, 27), "float32", seed=5)
    darr = da.from_array(a, chunks=(7, 34, 20))
    vc.save(vc.build_pyramid(a, [2, 4], "gaussian"), tmp_path / "local", chunks=8)
    vc.save(vc.build_pyramid(darr, [2, 4], "gaussian"), tmp_path / "cluster", chunks=8, executor=client)
    assert_same_files(tmp_path / "local", tmp_path / "cluster")
    vc.save(a, tmp_path / "one-local", chunks=(4, 8, 8))  # one level, no pyramid
    vc.save(a, tmp_path / "one-cluster", chunks=(4, 8, 8), executor=client)
    assert_same_files(tmp_path / "one-local", tmp_path / "one-cluster")


def test_store_backed_and_zarr_python_sources_on_cluster(tmp_path, client, small_blocks):
    zarr = pytest.importorskip("zarr")
    a = volume((26, 33, 20), "uint16", seed=8)
    on_disk(tmp_path, a, 8)
    via_store = vc.open(zarr.storage.LocalStore(str(tmp_path / "src.zarr")))
    z = zarr.open_array(str(tmp_path / "src.zarr"), mode="r")
    vc.save(vc.build_pyramid(a, [2, 4], "mode"), tmp_path / "local", chunks=8)
    for name, src in (("store", via_store), ("zarr", z)):
        vc.save(vc.build_pyramid(src, [2, 4], "mode"), tmp_path / name, chunks=8, executor=client)
        assert_same_files(tmp_path / "local", tmp_path / name)


def test_labels_image_and_dask_sources_on_threads(tmp_path, threads, small_blocks):
    a = volume((18, 40, 33), "uint16", seed=2)
    lab = (volume((18, 40, 33), "uint8", seed=3) % 5).astype("uint32")
    src = on_disk(tmp_path, a, 8)
    for name, ex in (("local", None), ("threads", threads)):
        vc.save(vc.build_pyramid(src, [2, 4], "mean"), tmp_path / name, chunks=8, labels={"cells": lab},
                executor=ex)
    assert_same_files(tmp_path / "local", tmp_path / "threads")
    assert vc.open(tmp_path / "threads").labels == ["cells"]
    darr = da.from_array(a, chunks=(5, 40, 20))
    vc.save(vc.build_pyramid(darr, [2, 4], "mean"), tmp_path / "dask", chunks=8, labels={"cells": lab},
            executor=threads)
    assert_same_files(tmp_path / "local", tmp_path / "dask")


def test_stage_plan_covers_whole_write_units(small_blocks):
    specs = plan_levels((70, 61, 50), (1.0,) * 3, (0.0,) * 3, [(2, 2, 2), (4, 4, 4), (8, 8, 8)], True,
                                (8, 8, 8), (16, 16, 16))
    stages = block_writes.plan_stages(specs, 2, ("z", "y", "x"))
    assert len(stages) >= 2 and stages[0].levels[0] == 0
    assert [k for st in stages for k in st.levels] == [0, 1, 2, 3]  # each level written once
    for st in stages:
        for k in st.levels:
            for ax in range(3):
                rel = specs[k].factors[ax] // specs[st.src].factors[ax]
                unit = (specs[k].shards or specs[k].chunks)[ax]
                assert st.block[ax] % (rel * unit) == 0 or st.block[ax] >= specs[st.src].shape[ax]


def test_bad_executor_arguments(tmp_path):
    zarr = pytest.importorskip("zarr")
    a = volume((8, 8, 8), "uint8")
    with pytest.raises(vc.InvalidArgumentError, match="executor must be"):
        vc.save(a, tmp_path / "x", executor=object())
    with pytest.raises(vc.InvalidArgumentError, match="executor must be"):
        vc.build_pyramid(a, [2], executor="threads")
    with ThreadPoolExecutor(1) as ex:
        with pytest.raises(vc.UnsupportedError, match="local directories"):
            vc.save(a, zarr.storage.MemoryStore(), executor=ex)
        with pytest.raises(vc.UnsupportedError, match="NIfTI"):
            vc.save(a, str(tmp_path / "x.nii.gz"), executor=ex)
    assert not os.path.exists(tmp_path / "x") and not os.path.exists(tmp_path / "x.nii.gz")


class _Failing:
    """A lazy array whose reads past z=8 fail, as a flaky disk would."""

    shape, dtype, ndim = (24, 16, 16), np.dtype("uint8"), 3

    def __getitem__(self, index):
        if index[0].stop > 8:
            raise OSError("disk went away")
        return np.zeros([s.stop - s.start for s in index], self.dtype)


def test_task_failure_reaches_the_caller_and_leaves_no_group(tmp_path, threads, small_blocks):
    with pytest.raises(OSError, match="disk went away"):
        vc.save(vc.build_pyramid(_Failing(), [2], "mean"), tmp_path / "bad", chunks=8, executor=threads)
    assert not os.path.exists(tmp_path / "bad" / "zarr.json")  # group metadata comes last
