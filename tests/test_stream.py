"""Streamed pyramids: save() of on-disk/lazy sources and the create() acquisition writer.

The oracle is the in-memory pyramid (build_pyramid of the numpy array): a streamed save reads
level 0 slab by slab, so every level it writes must equal the in-memory one exactly.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import voxcore as vc

zarr = pytest.importorskip("zarr")

METHODS = ["mean", "gaussian", "mode", "nearest", "min", "max"]


def blob(shape, seed=0, dtype="uint16", high=1000):
    return np.random.default_rng(seed).integers(0, high, size=shape).astype(dtype)


def on_disk(tmp_path, a, chunks, name="src.zarr"):
    img = vc.create_array(tmp_path / name, a.shape, a.dtype, chunks=chunks, overwrite=True)
    img.write(a)
    return vc.open(tmp_path / name)


def levels_of(path):
    img = vc.open(path)
    return [lv.image.read() for lv in img.levels]


def assert_levels_equal(path, pyr):
    got = levels_of(path)
    assert len(got) == len(pyr.levels)
    for k, (g, lv) in enumerate(zip(got, pyr.levels)):
        assert g.shape == lv.shape, k
        np.testing.assert_array_equal(g, lv.data, err_msg=f"level {k}")


CASES = [
    # shape, source chunks, factors, dims, output chunks
    ((70, 50, 61), 16, [2, 4, 8], ("z", "y", "x"), 16),
    ((37, 40, 41), (5, 40, 41), [2, 4], ("z", "y", "x"), 8),
    ((2, 37, 40, 41), (1, 8, 16, 16), [{"z": 1, "y": 2, "x": 2}, {"z": 3, "y": 4, "x": 4}],
     ("c", "z", "y", "x"), 8),
    ((33, 80), 8, [2, 4], ("y", "x"), 16),
]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", range(len(CASES)))
def test_streamed_save_equals_in_memory(tmp_path, method, case):
    shape, src_chunks, factors, dims, out_chunks = CASES[case]
    a = blob(shape, seed=case)
    src = on_disk(tmp_path, a, src_chunks)
    lazy = vc.build_pyramid(vc.from_array(src, dims=dims), factors, method)
    assert lazy.streamed and lazy.levels[1].data is None
    eager = vc.build_pyramid(vc.from_array(a, dims=dims), factors, method)
    assert [lv.shape for lv in lazy.levels] == [lv.shape for lv in eager.levels]
    out = tmp_path / "out.ome.zarr"
    vc.save(lazy, out, chunks=out_chunks)
    assert_levels_equal(out, eager)


def test_streamed_save_sharded_and_v2(tmp_path):
    a = blob((45, 64, 48), seed=3)
    src = on_disk(tmp_path, a, 16)
    eager = vc.build_pyramid(a, [2, 4], "mean")
    for kw in ({"version": "0.5", "chunks": 8, "shards": 32}, {"version": "0.4", "chunks": 16}):
        out = tmp_path / f"out{kw['version']}.ome.zarr"
        vc.save(vc.build_pyramid(src, [2, 4], "mean"), out, **kw)
        assert_levels_equal(out, eager)
        g = zarr.open_group(str(out), mode="r")
        np.testing.assert_array_equal(g["2"][...], eager.levels[2].data)


def test_streamed_from_dask_and_zarr_python(tmp_path):
    da = pytest.importorskip("dask.array")
    a = blob((40, 30, 20), seed=4, dtype="float32")
    eager = vc.build_pyramid(a, [2, 4], "gaussian")
    darr = da.from_array(a, chunks=(7, 30, 20))
    out = tmp_path / "dask.ome.zarr"
    vc.save(vc.build_pyramid(darr, [2, 4], "gaussian"), out, chunks=8)
    assert_levels_equal(out, eager)

    z = zarr.create_array(str(tmp_path / "zp.zarr"), shape=a.shape, chunks=(9, 30, 20), dtype="float32")
    z[...] = a
    out2 = tmp_path / "zp.ome.zarr"
    vc.save(vc.build_pyramid(z, [2, 4], "gaussian"), out2, chunks=8)
    assert_levels_equal(out2, eager)


def test_save_open_convert_round_trip_keeps_geometry(tmp_path):
    a = blob((20, 24, 28), seed=5)
    img = vc.from_array(a, dims=("z", "y", "x"), scale=(2.0, 0.5, 0.5), translation=(1.0, 2.0, 3.0),
                        units=("micrometer",) * 3, name="cells")
    vc.save(img, tmp_path / "l0.ome.zarr", chunks=8)
    opened = vc.open(tmp_path / "l0.ome.zarr")
    # An opened OME-Zarr image lends its geometry to from_array / build_pyramid.
    pyr = vc.build_pyramid(opened, [2], "mean")
    assert pyr.streamed
    vc.save(pyr, tmp_path / "l1.ome.zarr", chunks=8)
    back = vc.open(tmp_path / "l1.ome.zarr")
    assert back.dims == ("z", "y", "x")
    assert back.units == ("micrometer",) * 3
    assert back.ome["name"] == "cells"
    assert back.levels[1].scale == (4.0, 1.0, 1.0)
    assert back.levels[1].translation == (2.0, 2.25, 3.25)


# ---- the acquisition writer ----------------------------------------------------------------

def test_create_planes_in_acquisition_order(tmp_path):
    a = blob((2, 3, 45, 40, 38), seed=6)
    dims = ("t", "c", "z", "y", "x")
    for method in ("mean", "gaussian", "mode"):
        path = tmp_path / f"acq-{method}.ome.zarr"
        with vc.create(path, a.shape, a.dtype, dims=dims, scale=(1.0, 1.0, 2.0, 0.5, 0.5),
                       units=("second", None, "micrometer", "micrometer", "micrometer"),
                       chunks=(1, 1, 8, 16, 16), pyramid=[2, 4], method=method) as w:
            for t in range(2):
                for z in range(45):
                    for c in range(3):  # channels interleave, z increases per (t, c)
                        w.write_plane(a[t, c, z], t=t, c=c, z=z)
                        if (t, c, z) == (1, 1, 20):
                            np.testing.assert_array_equal(w.get_data(t=1, c=1, z=20), a[1, 1, 20])
                            np.testing.assert_array_equal(w.get_data(t=1, c=1)[:21], a[1, 1, :21])
                            # volume (0, 2) is complete: its coarse levels are final
                            np.testing.assert_array_equal(
                                w.get_data(t=0, c=2, level=2), vc.build_pyramid(a[0, 2], [2, 4], method).levels[2].data)
        eager = vc.build_pyramid(vc.from_array(a, dims=dims), [2, 4], method)
        assert_levels_equal(path, eager)
        img = vc.open(path)
        assert img.levels[2].scale == (1.0, 1.0, 8.0, 2.0, 2.0)
        assert [ax["type"] for ax in img.axes] == ["time", "channel", "space", "space", "space"]


def test_create_2d_and_block_writes(tmp_path):
    a = blob((3, 50, 70), seed=7)
    with vc.create(tmp_path / "2d.ome.zarr", a.shape, a.dtype, dims=("c", "y", "x"), chunks=16,
                   pyramid=[2, 4]) as w:
        for c in range(3):
            w.write_plane(a[c], c=c)  # a 2-D image: the plane is the whole (y, x) image
    assert_levels_equal(tmp_path / "2d.ome.zarr", vc.build_pyramid(vc.from_array(a, dims=("c", "y", "x")),
                                                                   [2, 4]))
    b = blob((30, 20, 20), seed=8)
    with vc.create(tmp_path / "blk.ome.zarr", b.shape, b.dtype, chunks=8, pyramid="auto") as w:
        w.write(b[:13], z=0)
        w.write(b[13:], z=13)
    assert len(vc.open(tmp_path / "blk.ome.zarr").levels) == 1  # 30x20x20 fits one 64-chunk


@pytest.mark.parametrize("method", ["mean", "gaussian", "nearest"])
def test_create_closed_early_is_fill_beyond(tmp_path, method):
    a = blob((40, 24, 24), seed=9)
    path = tmp_path / "early.ome.zarr"
    w = vc.create(path, a.shape, a.dtype, chunks=8, pyramid=[2, 4], method=method)
    for z in range(19):
        w.write_plane(a[z], z=z)
    w.close()
    b = np.zeros_like(a)
    b[:19] = a[:19]
    assert_levels_equal(path, vc.build_pyramid(b, [2, 4], method))


def test_create_bad_input(tmp_path):
    w = vc.create(tmp_path / "bad.ome.zarr", (2, 10, 8, 8), "uint8", dims=("c", "z", "y", "x"), chunks=4,
                  pyramid=[2])
    with pytest.raises(vc.InvalidArgumentError, match="c= is required"):
        w.write_plane(np.zeros((8, 8), np.uint8), z=0)
    with pytest.raises(vc.InvalidArgumentError, match="z= is required"):
        w.write_plane(np.zeros((8, 8), np.uint8), c=0)
    with pytest.raises(vc.InvalidArgumentError, match="out of range"):
        w.write_plane(np.zeros((8, 8), np.uint8), c=2, z=0)
    with pytest.raises(vc.InvalidArgumentError, match="plane shape mismatch"):
        w.write_plane(np.zeros((8, 9), np.uint8), c=0, z=0)
    w.write_plane(np.ones((8, 8), np.uint8), c=0, z=0)
    with pytest.raises(vc.InvalidArgumentError, match="in order"):
        w.write_plane(np.ones((8, 8), np.uint8), c=0, z=0)  # repeated
    with pytest.raises(vc.InvalidArgumentError, match="in order"):
        w.write_plane(np.ones((8, 8), np.uint8), c=0, z=5)  # skipped ahead
    with pytest.raises(vc.InvalidArgumentError, match="beyond the end"):
        w.write(np.ones((12, 8, 8), np.uint8), c=1, z=0)
    with pytest.raises(vc.InvalidArgumentError, match="level out of range"):
        w.get_data(c=0, level=2)
    w.close()
    with pytest.raises(vc.InvalidArgumentError, match="closed"):
        w.write_plane(np.ones((8, 8), np.uint8), c=1, z=0)
    with pytest.raises(FileExistsError):
        vc.create(tmp_path / "bad.ome.zarr", (4, 4), "uint8")
    with pytest.raises(vc.InvalidArgumentError, match="dtype"):
        vc.create(tmp_path / "b2.ome.zarr", (4, 4), "complex64")
    with pytest.raises(vc.InvalidArgumentError, match="method"):
        vc.create(tmp_path / "b3.ome.zarr", (4, 4), "uint8", method="median")
    with pytest.raises(vc.InvalidArgumentError, match="shape"):
        vc.create(tmp_path / "b4.ome.zarr", (0, 4), "uint8")


CRASH = textwrap.dedent("""
    import os, sys
    import numpy as np
    import voxcore as vc
    a = np.random.default_rng(1).integers(0, 1000, (64, 32, 32)).astype(np.uint16)
    w = vc.create(sys.argv[1], a.shape, a.dtype, chunks=8, pyramid=[2, 4], method="mean")
    for z in range(27):
        w.write_plane(a[z], z=z)
    os._exit(3)  # dies mid-acquisition: no close()
""")


def test_crash_mid_acquisition_leaves_valid_readable_group(tmp_path):
    path = tmp_path / "crash.ome.zarr"
    r = subprocess.run([sys.executable, "-c", CRASH, str(path)], capture_output=True, text=True)
    assert r.returncode == 3, r.stderr
    a = np.random.default_rng(1).integers(0, 1000, (64, 32, 32)).astype(np.uint16)
    img = vc.open(path)  # metadata valid
    assert [lv.shape for lv in img.levels] == [(64, 32, 32), (32, 16, 16), (16, 8, 8)]
    level0 = img.read()
    np.testing.assert_array_equal(level0[:24], a[:24])  # the completed 8-deep slabs are on disk
    assert not level0[32:].any()
    g = zarr.open_group(str(path), mode="r")
    np.testing.assert_array_equal(g["0"][:24], a[:24])
    pytest.importorskip("ome_zarr_models")
    from ome_zarr_models import v05
    v05.Image.from_zarr(g)


MEMORY = textwrap.dedent("""
    import sys
    import voxcore as vc
    def status(key):  # kB; VmHWM is this address space's peak (exec starts it afresh)
        return int(next(l for l in open("/proc/self/status") if l.startswith(key)).split()[1])
    src, dst = sys.argv[1], sys.argv[2]
    before = status("VmRSS")
    vc.save(vc.build_pyramid(vc.open(src), [2, 4, 8], "mean"), dst, chunks=32)
    print(before // 1024, status("VmHWM") // 1024)
""")


def test_streamed_save_memory_is_bounded_by_slabs_not_volume(tmp_path):
    # A 384 MiB source; the slab is 32 planes of 768x512 uint16 (24 MiB) plus coarser slabs.
    shape = (512, 768, 512)
    src = vc.create_array(tmp_path / "big.zarr", shape, "uint16", chunks=(32, 256, 256), codec=None)
    rng = np.random.default_rng(0)
    for z0 in range(0, shape[0], 64):
        src.write(rng.integers(0, 60000, (64,) + shape[1:], dtype=np.uint16), (z0, 0, 0))
    env = dict(os.environ, VOXCORE_BUFFER_POOL_BYTES="0")
    r = subprocess.run([sys.executable, "-c", MEMORY, str(tmp_path / "big.zarr"), str(tmp_path / "o.ome.zarr")],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    before, after = (int(v) for v in r.stdout.split())
    volume_mib = np.prod(shape) * 2 / 2**20
    assert after - before < 160, (before, after, volume_mib)  # MiB; the volume is 384 MiB
    img = vc.open(tmp_path / "o.ome.zarr")
    np.testing.assert_array_equal(img.read((slice(0, 8),), level=3),
                                  vc.build_pyramid(vc.open(tmp_path / "big.zarr").read((slice(0, 64),)),
                                                   [2, 4, 8]).levels[3].data)
