"""Views (webknossos-style boxes on one level), chunk maps, pickling and slice readers/writers.

Every result is compared with numpy on the same data: reads (also padded beyond the array),
writes confined to the view, level-0 ("Mag(1)") coordinates on a coarser OME level, the chunk
grid, chunk maps in the calling thread, a thread pool, a spawned process pool and a 2-process
dask.distributed LocalCluster (downsampling into another array with for_zipped_chunks), the
size of what is pickled, and the planes of the buffered slice reader and writer.
"""
from __future__ import annotations

import multiprocessing as mp
import pickle
import warnings
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest
import voxcore as vc
from voxcore.images.view import UnalignedWriteWarning

SHAPE = (37, 50, 23)
CHUNKS = (16, 16, 8)
SHARDS = (32, 32, 16)


def volume(shape=SHAPE, seed=0, dtype="uint16"):
    return np.random.default_rng(seed).integers(0, 4000, shape, dtype=dtype)


@pytest.fixture
def arr(tmp_path):
    """A v3 zstd array SHAPE/CHUNKS with fill value 7, dims z,y,x, holding volume()."""
    a = vc.create_array(tmp_path / "a.zarr", SHAPE, "uint16", chunks=CHUNKS, fill_value=7,
                        dims=("z", "y", "x"))
    a.write(volume())
    return a


@pytest.fixture
def ome(tmp_path):
    """An OME-Zarr pyramid (c, z, y, x), levels 1, 2, 4 in z/y/x, chunks 8."""
    data = volume((2, 20, 24, 28), seed=1)
    vc.save(vc.build_pyramid(vc.from_array(data, dims=("c", "z", "y", "x")), factors=[2, 4]),
            tmp_path / "img.ome.zarr", chunks=8, progress=False)
    return vc.open(tmp_path / "img.ome.zarr")


def box(offset, size):
    return tuple(slice(o, o + s) for o, s in zip(offset, size))


# ------------------------------------------------------------------------------ read / write
def test_view_reads_and_writes_its_box(arr):
    data = volume()
    v = arr.view(offset=(3, 10, 0), size=(30, 30, 23))
    assert (v.offset, v.size, v.shape, v.factors, v.level) == (
        (3, 10, 0), (30, 30, 23), (30, 30, 23), (1, 1, 1), 0)
    np.testing.assert_array_equal(v.read(), data[3:33, 10:40, :])
    np.testing.assert_array_equal(v.read(relative_offset=(1, 2, 3), size=(4, 5, 6)),
                                  data[4:8, 12:17, 3:9])
    np.testing.assert_array_equal(v.read(absolute_offset=(4, 12, 3), size=(4, 5, 6)),
                                  data[4:8, 12:17, 3:9])
    np.testing.assert_array_equal(v.read(relative_offset=(18, 0, 0)), data[21:33, 10:40, :])
    sub = v.get_view(relative_offset=(13, 6, 0), size=(16, 16, 8))  # one whole chunk
    assert (sub.offset, sub.size) == ((16, 16, 0), (16, 16, 8))
    new = np.full((16, 16, 8), 999, np.uint16)
    sub.write(new)  # aligned: no warning (warnings are errors here)
    data[16:32, 16:32, 0:8] = new
    np.testing.assert_array_equal(vc.open(arr._origin[0]).read(), data)
    out = np.empty((16, 16, 8), np.uint16)
    assert sub.read(out=out) is out and (out == 999).all()


def test_reads_beyond_the_array_are_fill(arr):
    data = volume()
    ro = arr.view(offset=(-4, 40, 20), size=(10, 20, 10), read_only=True)
    got = ro.read()
    want = np.full((10, 20, 10), 7, np.uint16)
    want[4:, :10, :3] = data[0:6, 40:50, 20:23]
    np.testing.assert_array_equal(got, want)
    v = arr.view()
    np.testing.assert_array_equal(v.read(absolute_offset=(35, 0, 0), size=(4, 2, 2)),
                                  np.concatenate([data[35:37, :2, :2], np.full((2, 2, 2), 7)]))


def test_writes_stay_inside_the_view(arr):
    v = arr.view(offset=(16, 16, 8), size=(16, 16, 8), allow_unaligned=True)
    with pytest.raises(vc.InvalidArgumentError, match="outside the view"):
        v.write(np.zeros((16, 16, 9), np.uint16))
    with pytest.raises(vc.InvalidArgumentError, match="outside the view"):
        v.write(np.zeros((2, 2, 2), np.uint16), relative_offset=(-1, 0, 0))
    with pytest.raises(vc.InvalidArgumentError, match="outside the view"):
        v.write(np.zeros((2, 2, 2), np.uint16), absolute_offset=(0, 0, 0))
    with pytest.raises(vc.InvalidArgumentError, match="rank"):
        v.write(np.zeros((2, 2), np.uint16))
    ro = arr.view(read_only=True)
    with pytest.raises(vc.InvalidArgumentError, match="read-only"):
        ro.write(np.zeros((1, 1, 1), np.uint16))
    with pytest.raises(vc.InvalidArgumentError, match="read-only"):
        ro.get_view(size=(1, 1, 1), read_only=False)
    np.testing.assert_array_equal(arr.read(), volume())  # nothing was written


def test_view_boxes_are_checked(arr):
    with pytest.raises(vc.InvalidArgumentError, match="inside the level's array"):
        arr.view(offset=(30, 0, 0), size=(8, 50, 23))
    with pytest.raises(vc.InvalidArgumentError, match="inside the level's array"):
        arr.view(offset=(-1, 0, 0), size=(8, 8, 8))
    assert arr.view(offset=(30, 0, 0), size=(8, 50, 23), read_only=True).size == (8, 50, 23)
    v = arr.view(offset=(0, 0, 0), size=(16, 16, 8))
    with pytest.raises(vc.InvalidArgumentError, match="inside its parent view"):
        v.get_view(relative_offset=(8, 0, 0), size=(16, 16, 8))
    big = v.get_view(relative_offset=(8, 0, 0), size=(40, 16, 8), read_only=True)
    assert big.read_only and big.read().shape == (40, 16, 8)
    with pytest.raises(vc.InvalidArgumentError, match="positive"):
        arr.view(size=(0, 5, 5))
    with pytest.raises(vc.InvalidArgumentError, match="rank"):
        arr.view(offset=(0, 0))
    with pytest.raises(vc.InvalidArgumentError, match="not both"):
        v.get_view(relative_offset=(0, 0, 0), absolute_offset=(0, 0, 0), size=(1, 1, 1))
    with pytest.raises(vc.InvalidArgumentError, match="level out of range"):
        arr.view(level=1)


def test_unaligned_writes_warn_unless_allowed(arr, tmp_path):
    v = arr.view()
    with pytest.warns(UnalignedWriteWarning, match="not aligned to the chunk shape"):
        v.write(np.ones((4, 4, 4), np.uint16), relative_offset=(1, 0, 0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v.write(np.ones((16, 16, 8), np.uint16), relative_offset=(16, 16, 8))  # whole chunk
        v.write(np.ones((5, 2, 7), np.uint16), relative_offset=(32, 48, 16))  # up to the edge
        v.write(np.ones((4, 4, 4), np.uint16), relative_offset=(1, 0, 0), allow_unaligned=True)
        arr.view(allow_unaligned=True).write(np.ones((4, 4, 4), np.uint16), relative_offset=(1, 0, 0))
    sh = vc.create_array(tmp_path / "s.zarr", SHAPE, "uint16", chunks=CHUNKS, shards=SHARDS)
    assert sh.view().write_shape == SHARDS and sh.view().chunk_shape == CHUNKS
    with pytest.warns(UnalignedWriteWarning, match="shard shape"):  # a chunk, not a shard
        sh.view().write(np.ones(CHUNKS, np.uint16))
    np.testing.assert_array_equal(sh.read()[:16, :16, :8], 1)


# ------------------------------------------------------------------------------ levels
def test_coarser_levels_use_level0_coordinates(ome):
    lv1 = ome.levels[1].image.read()
    v = ome.view(level=1)
    assert v.factors == (1, 2, 2, 2) and v.size == (2, 20, 24, 28) and v.shape == lv1.shape
    assert ome.levels[1].view().size == v.size and ome.levels[1].view().level == 1
    np.testing.assert_array_equal(
        v.read(absolute_offset=(1, 4, 8, 2), size=(1, 8, 4, 6)), lv1[1:2, 2:6, 4:6, 1:4])
    sub = v.get_view(absolute_offset=(0, 0, 0, 16), size=(2, 16, 16, 12))  # level box x 8..14
    assert sub.shape == (2, 8, 8, 6) and sub.level_offset == (0, 0, 0, 8)
    with pytest.raises(vc.InvalidArgumentError, match="multiple of level 1's factors"):
        v.get_view(absolute_offset=(0, 1, 0, 0), size=(1, 2, 2, 2))
    with pytest.raises(vc.InvalidArgumentError, match="multiple of level 1's factors"):
        v.read(relative_offset=(0, 0, 0, 0), size=(1, 3, 2, 2))
    sub.write(np.full((2, 8, 8, 6), 5, np.uint16))  # x 8..14 reaches the level's edge
    after = vc.open(ome._origin[0])
    want = lv1.copy()
    want[:, :8, :8, 8:] = 5
    np.testing.assert_array_equal(after.levels[1].image.read(), want)
    np.testing.assert_array_equal(after.read(), ome.read())  # level 0 untouched
    c1 = ome.view(offset=(1, 0, 0, 0), size=(1, 20, 24, 28), level=2)  # one channel
    np.testing.assert_array_equal(c1.read(), ome.levels[2].image.read()[1:2])


# ------------------------------------------------------------------------------ chunks
def test_chunks_cover_the_view_on_the_absolute_grid(arr):
    v = arr.view(offset=(5, 3, 0), size=(30, 40, 23), read_only=True)
    pieces = list(v.chunks())
    z = sorted({(p.offset[0], p.size[0]) for p in pieces})
    assert z == [(5, 11), (16, 16), (32, 3)]
    assert len(pieces) == 3 * 3 * 3
    assert [p.offset for p in pieces[:3]] == [(5, 3, 0), (5, 3, 8), (5, 3, 16)]  # C order
    seen = np.zeros(SHAPE, np.int32)
    for p in pieces:
        assert p.read_only
        seen[box(p.offset, p.size)] += 1
    assert seen.sum() == 30 * 40 * 23 and seen[box(v.offset, v.size)].min() == 1
    assert len(list(v.chunks((10, 10, 10)))) == 4 * 5 * 3  # read-only: any shape
    w = arr.view()
    with pytest.raises(vc.InvalidArgumentError, match="multiple of its write unit"):
        list(w.chunks((8, 16, 8)))
    assert len(list(w.chunks((32, 16, 8)))) == 2 * 4 * 3
    with pytest.raises(vc.InvalidArgumentError, match="positive"):
        list(w.chunks((0, 16, 8)))


def _chunk_sum(view):
    return int(view.read().sum(dtype=np.int64))


def _fill_with_offset(view):
    view.write(np.full(view.shape, sum(view.offset) % 65536, np.uint16))


def _fail_on_second_z(view):
    if view.offset[0] >= 16:
        raise ValueError(f"refused chunk at {view.offset}")


def _downsample_pair(source, target):
    target.write(vc.downsample(source.read(), 2, "mean"))


def expected_offset_fill(view, chunk_shape):
    want = np.empty(view.shape, np.uint16)
    for p in view.chunks(chunk_shape):
        want[box([o - vo for o, vo in zip(p.offset, view.offset)], p.size)] = sum(p.offset) % 65536
    return want


def test_map_chunk_in_order_in_thread_and_pool(arr, capsys):
    data = volume()
    v = arr.view(read_only=True)
    want = [int(data[box(p.offset, p.size)].sum(dtype=np.int64)) for p in v.chunks()]
    assert v.map_chunk(_chunk_sum) == want  # progress=True, stderr is not a terminal: quiet
    with ThreadPoolExecutor(3) as ex:
        assert v.map_chunk(_chunk_sum, executor=ex, progress=False) == want
        w = arr.view()
        w.for_each_chunk(_fill_with_offset, chunk_shape=(16, 32, 16), executor=ex)
        np.testing.assert_array_equal(arr.read(), expected_offset_fill(w, (16, 32, 16)))
        with pytest.raises(ValueError, match="refused chunk"):
            v.for_each_chunk(_fail_on_second_z, executor=ex)
    assert capsys.readouterr().err == ""
    with pytest.raises(ValueError, match="refused chunk"):
        v.map_chunk(_fail_on_second_z)
    with pytest.raises(vc.InvalidArgumentError, match="executor must be"):
        v.map_chunk(_chunk_sum, executor=object())


def make_downsample_pair(tmp_path, shape=(64, 48, 40), chunks=(16, 16, 8)):
    data = volume(shape, seed=3)
    src = vc.create_array(tmp_path / "src.zarr", shape, "uint16", chunks=chunks)
    src.write(data)
    dst = vc.create_array(tmp_path / "dst.zarr", tuple(-(-s // 2) for s in shape), "uint16",
                          chunks=tuple(c // 2 for c in chunks))
    return data, src, dst


def test_for_zipped_chunks_downsamples_into_another_array(tmp_path):
    data, src, dst = make_downsample_pair(tmp_path)
    with ThreadPoolExecutor(2) as ex:
        src.view(read_only=True).for_zipped_chunks(_downsample_pair, dst.view(), executor=ex,
                                                   progress=False)
    np.testing.assert_array_equal(dst.read(), vc.downsample(data, 2, "mean"))
    # Explicit shapes, in the calling thread; the target of one source chunk of 32 is 16.
    dst2 = vc.create_array(tmp_path / "dst2.zarr", dst.shape, "uint16", chunks=(8, 8, 4))
    src.view().for_zipped_chunks(_downsample_pair, dst2.view(), source_chunk_shape=(32, 16, 8),
                                 progress=False)
    np.testing.assert_array_equal(dst2.read(), dst.read())


def test_for_zipped_chunks_level0_to_level1_of_one_image(tmp_path):
    data = volume((21, 30, 17), seed=4)  # odd sizes: level 1 reaches past level 0's edge
    vc.save(vc.build_pyramid(vc.from_array(data, dims=("z", "y", "x")), factors=[2]),
            tmp_path / "p.ome.zarr", chunks=8, progress=False)
    img = vc.open(tmp_path / "p.ome.zarr")
    target = img.view(level=1)
    target.write(np.zeros(target.shape, np.uint16))
    assert target.size == (22, 30, 18) and img.view().size == (21, 30, 17)
    img.view().for_zipped_chunks(_downsample_pair, target, progress=False)
    np.testing.assert_array_equal(img.levels[1].image.read(), vc.downsample(data, 2, "mean"))


def test_for_zipped_chunks_refuses_inconsistent_shapes(tmp_path):
    _, src, dst = make_downsample_pair(tmp_path)
    s, t = src.view(read_only=True), dst.view()
    with pytest.raises(vc.InvalidArgumentError, match="ratio of the view sizes"):
        s.for_zipped_chunks(_downsample_pair, t, source_chunk_shape=(32, 16, 8),
                            target_chunk_shape=(8, 8, 4))
    with pytest.raises(vc.InvalidArgumentError, match="does not divide"):
        s.for_zipped_chunks(_downsample_pair, t, source_chunk_shape=(15, 16, 8))
    with pytest.raises(vc.InvalidArgumentError, match="multiple of its write unit"):
        s.for_zipped_chunks(_downsample_pair, t, target_chunk_shape=(4, 8, 4))
    with pytest.raises(vc.InvalidArgumentError, match="different numbers of chunks"):
        s.get_view(size=(50, 48, 40)).for_zipped_chunks(  # z: 50 / 16 -> 4 chunks, 24 / 8 -> 3
            _downsample_pair, t.get_view(size=(24, 24, 20)), target_chunk_shape=(8, 8, 4))
    with pytest.raises(vc.InvalidArgumentError, match="rank"):
        s.for_zipped_chunks(_downsample_pair, vc.create_array(
            tmp_path / "two.zarr", (4, 4), "uint16").view())
    np.testing.assert_array_equal(dst.read(), 0)  # nothing ran


# ------------------------------------------------------------------------------ pickling
def test_pickles_are_small_and_reopen(arr, ome, tmp_path):
    data = volume()
    v = arr.view(offset=(16, 0, 8), size=(16, 50, 8))
    for obj in (arr, v, ome, ome.levels[1], ome.view(level=2)):
        assert len(pickle.dumps(obj)) < 2048, type(obj)
    back = pickle.loads(pickle.dumps(v))
    assert (back.offset, back.size, back.read_only, back.level) == (v.offset, v.size, False, 0)
    np.testing.assert_array_equal(back.read(), data[16:32, :, 8:16])
    assert back.dims == ("z", "y", "x")
    lv = pickle.loads(pickle.dumps(ome.levels[1]))
    assert (lv.index, lv.scale, lv.shape) == (1, ome.levels[1].scale, ome.levels[1].shape)
    np.testing.assert_array_equal(lv.image.read(), ome.levels[1].image.read())
    img = pickle.loads(pickle.dumps(ome))
    assert img.dims == ("c", "z", "y", "x") and len(img.levels) == 3
    v2 = pickle.loads(pickle.dumps(ome.view(level=2, read_only=True)))
    assert v2.factors == (1, 4, 4, 4)
    np.testing.assert_array_equal(v2.read(), ome.levels[2].image.read())


def test_store_backed_images_pickle_only_when_shareable(tmp_path):
    zarr = pytest.importorskip("zarr")
    local = zarr.storage.LocalStore(str(tmp_path / "local"))
    a = vc.create_array(local, (8, 8), "uint8", chunks=4, path="arr")
    a.write(np.arange(64, dtype=np.uint8).reshape(8, 8))
    back = pickle.loads(pickle.dumps(a.view()))
    np.testing.assert_array_equal(back.read(), np.arange(64).reshape(8, 8))
    mem = vc.create_array(zarr.storage.MemoryStore(), (8, 8), "uint8", chunks=4)
    with pytest.raises(pickle.PicklingError, match="MemoryStore"):
        pickle.dumps(mem.view())


def test_process_pool_workers_reopen_by_path(arr):
    with ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as ex:
        w = arr.view()
        w.for_each_chunk(_fill_with_offset, chunk_shape=(16, 32, 8), executor=ex, progress=False)
        want = expected_offset_fill(w, (16, 32, 8))
        np.testing.assert_array_equal(arr.read(), want)
        sums = arr.view(read_only=True).map_chunk(_chunk_sum, executor=ex, progress=False)
        assert sums == [int(want[box(p.offset, p.size)].sum(dtype=np.int64))
                        for p in arr.view().chunks()]


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster, set_as_default=False) as c:  # used only when passed
        yield c


def test_dask_cluster_runs_chunk_maps(client, tmp_path):
    data, src, dst = make_downsample_pair(tmp_path)
    src.view(read_only=True).for_zipped_chunks(_downsample_pair, dst.view(), executor=client,
                                               progress=False)
    np.testing.assert_array_equal(dst.read(), vc.downsample(data, 2, "mean"))
    v = src.view(read_only=True)
    sums = v.map_chunk(_chunk_sum, chunk_shape=(32, 16, 40), executor=client, progress=False)
    assert sums == [int(data[box(p.offset, p.size)].sum(dtype=np.int64))
                    for p in v.chunks((32, 16, 40))]
    with pytest.raises(ValueError, match="refused chunk"):
        v.for_each_chunk(_fail_on_second_z, executor=client, progress=False)


# ------------------------------------------------------------------------------ slices
def _record(monkeypatch, name):
    calls = []
    real = getattr(vc.View, name)

    def spy(self, *args, **kwargs):
        calls.append((kwargs.get("absolute_offset"), kwargs.get("size")))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(vc.View, name, spy)
    return calls


def test_slice_reader_yields_planes_a_slab_at_a_time(arr, monkeypatch):
    data = volume()
    v = arr.view(offset=(5, 10, 0), size=(30, 20, 23))
    reads = _record(monkeypatch, "read")
    planes = list(v.slice_reader())  # z (dims name it), chunk depth 16: slabs 5..16..32..35
    assert len(planes) == 30 and planes[0].shape == (20, 23)
    np.testing.assert_array_equal(np.stack(planes), data[5:35, 10:30, :])
    assert [(o[0], s[0]) for o, s in reads] == [(5, 11), (16, 16), (32, 3)]
    reads.clear()
    with v.slice_reader(axis="x", buffer=10) as reader:
        assert len(reader) == 23
        xs = list(reader)
    np.testing.assert_array_equal(np.stack(xs, axis=2), data[5:35, 10:30, :])
    assert [(o[2], s[2]) for o, s in reads] == [(0, 10), (10, 10), (20, 3)]
    plain = vc.create_array(arr._origin[0] + "-plain", (6, 5), "uint8", chunks=(4, 5))
    plain.write(np.arange(30, dtype=np.uint8).reshape(6, 5))
    rows = list(plain.view().slice_reader())  # no z: axis 0
    np.testing.assert_array_equal(np.stack(rows), np.arange(30).reshape(6, 5))
    with pytest.raises(vc.InvalidArgumentError, match="unknown axis"):
        v.slice_reader(axis="t")


def test_slice_writer_flushes_aligned_slabs(arr, monkeypatch):
    data = volume(seed=9)
    v = arr.view(offset=(8, 0, 0), size=(29, 50, 23), allow_unaligned=True)  # starts mid-chunk
    writes = _record(monkeypatch, "write")
    with v.slice_writer() as w:
        for k in range(29):
            w.send(data[8 + k])
        assert w.written == 29
        with pytest.raises(vc.InvalidArgumentError, match="more planes than the view holds"):
            w.send(data[0])
        with pytest.raises(vc.InvalidArgumentError, match="wrong shape"):
            w.send(data[0, :, :5])
    assert [o[0] for o, _ in writes] == [8, 16, 32]  # first slab 8..16 ends on a chunk boundary
    want = volume()
    want[8:] = data[8:]
    np.testing.assert_array_equal(arr.read(), want)
    with pytest.raises(vc.InvalidArgumentError, match="closed"):
        w.send(data[8])
    with pytest.raises(vc.InvalidArgumentError, match="read-only"):
        arr.view(read_only=True).slice_writer()


def test_slice_writer_keeps_sent_planes_when_the_block_raises(arr):
    v = arr.view(allow_unaligned=True)
    with pytest.raises(RuntimeError, match="acquisition stopped"), v.slice_writer(axis=1, buffer=16) as w:
        for k in range(20):  # y planes 0..19: one slab of 16 written, 4 buffered
            w.send(np.full((37, 23), 100 + k, np.uint16))
        raise RuntimeError("acquisition stopped")
    want = volume()
    want[:, :20, :] = (100 + np.arange(20, dtype=np.uint16))[None, :, None]
    np.testing.assert_array_equal(arr.read(), want)
