"""webknossos' View vocabulary: BoundingBox and Mag, boxes on get_view/read/write, the view's
bounding_box and mag, content_is_equal, chunk maps passing (view, index) with progress_desc,
and writes that grow a whole-level view's arrays (allow_resize).

Box arithmetic is checked against numpy slicing of the same region; chunk maps and growth
against what is read back from a fresh handle on the files.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import voxcore as vc
from voxcore import BoundingBox, Mag


def volume(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 4000, shape, dtype="uint16")


@pytest.fixture
def pyramid(tmp_path):
    """(data, path) of an OME-Zarr (z, y, x) 32x48x40 uint16, levels 1 and 2, chunks 8."""
    data = volume((32, 48, 40))
    path = tmp_path / "p.ome.zarr"
    vc.save(vc.build_pyramid(vc.from_array(data), factors=[2]), path, chunks=8, progress=False)
    return data, path


# ------------------------------------------------------------------------------ BoundingBox
def test_bounding_box_arithmetic():
    b = BoundingBox((2, 3, 4), (10, 5, 6))
    assert b.bottomright == (12, 8, 10) and b.ndim == 3 and b.volume() == 300
    assert b == BoundingBox.from_bounds((2, 3, 4), (12, 8, 10)) and hash(b) == hash(BoundingBox((2, 3, 4), (10, 5, 6)))
    a = np.arange(20 * 20 * 20).reshape(20, 20, 20)
    c = BoundingBox((5, 0, 8), (10, 6, 10))
    i = b.intersected_with(c)
    assert i == BoundingBox((5, 3, 8), (7, 3, 2))
    # the intersection holds exactly the voxels both boxes hold
    mask_b, mask_c = np.zeros(a.shape, bool), np.zeros(a.shape, bool)
    mask_b[b.to_slices()] = True
    mask_c[c.to_slices()] = True
    want = np.zeros(a.shape, bool)
    want[i.to_slices()] = True
    np.testing.assert_array_equal(mask_b & mask_c, want)
    far = BoundingBox((15, 15, 15), (2, 2, 2))
    with pytest.raises(vc.InvalidArgumentError, match="no intersection"):
        b.intersected_with(far)
    assert b.intersected_with(far, dont_assert=True).is_empty()
    assert b.extended_by(far) == BoundingBox.from_bounds((2, 3, 4), (17, 17, 17))
    assert b.extended_by(BoundingBox((0, 0, 0), (0, 0, 0))) == b
    assert b.contains((2, 3, 4)) and not b.contains((12, 3, 4))
    assert b.contains_bbox(i) and not i.contains_bbox(b)
    assert b.padded_with_margins(1) == BoundingBox((1, 2, 3), (12, 7, 8))
    assert b.padded_with_margins((1, 0, 2), (0, 3, 0)) == BoundingBox((1, 3, 2), (11, 8, 8))
    assert b.offset((1, -1, 0)) == BoundingBox((3, 2, 4), (10, 5, 6))
    assert b.with_size((1, 1, 1)).size == (1, 1, 1) and b.with_topleft((0, 0, 0)).topleft == (0, 0, 0)
    assert b.with_bottomright((20, 20, 20)).size == (18, 17, 16)


def test_align_with_mag_and_mag_conversions():
    b = BoundingBox((3, 4, 5), (10, 9, 3))  # bottomright (13, 13, 8)
    assert b.align_with_mag(Mag(4)) == BoundingBox((4, 4, 8), (8, 8, 0))  # shrunk to multiples
    assert b.align_with_mag(Mag(4), ceil=True) == BoundingBox((0, 4, 4), (16, 12, 4))  # grown
    assert b.align_with_mag((1, 2, 4)) == BoundingBox((3, 4, 8), (10, 8, 0))
    g = b.align_with_mag(Mag([1, 2, 2]), ceil=True)
    assert g.in_mag(Mag([1, 2, 2])).from_mag_to_mag1(Mag([1, 2, 2])) == g
    assert BoundingBox((4, 8, 2), (8, 8, 2)).in_mag(2) == BoundingBox((2, 4, 1), (4, 4, 1))
    with pytest.raises(vc.InvalidArgumentError, match="not aligned"):
        b.in_mag(2)
    m = Mag("2-2-1")
    assert m.factors == (2, 2, 1) and m.max_dim == 2 and m.to_layer_name() == "2-2-1" and str(m) == "2-2-1"
    assert Mag(2) == Mag([2, 2, 2]) and hash(Mag(2)) == hash(Mag("2-2-2")) and Mag(2).to_layer_name() == "2"
    assert Mag(1) < Mag(2) and Mag([1, 2, 2]) != Mag(2)
    for bad in (0, "2-x", [1, 0, 2], -1):
        with pytest.raises(vc.InvalidArgumentError, match="(?i)mag"):
            Mag(bad)


def test_chunk_cuts_on_alignment():
    b = BoundingBox((3, 0), (20, 10))
    pieces = list(b.chunk((8, 10)))
    assert [p.topleft for p in pieces] == [(3, 0), (11, 0), (19, 0)]
    assert [p.size for p in pieces] == [(8, 10), (8, 10), (4, 10)]
    aligned = list(b.chunk((8, 10), (8, 10)))  # cuts between pieces on multiples of 8
    assert [p.topleft for p in aligned] == [(3, 0), (8, 0), (16, 0)]
    assert [p.bottomright[0] for p in aligned] == [8, 16, 23]
    covered = np.zeros((30, 10), int)
    for p in aligned:
        covered[p.to_slices()] += 1
    want = np.zeros((30, 10), int)
    want[b.to_slices()] = 1
    np.testing.assert_array_equal(covered, want)  # each voxel in exactly one piece
    with pytest.raises(vc.InvalidArgumentError, match="multiple"):
        list(b.chunk((8, 10), (3, 10)))


@pytest.mark.parametrize("args, match", [
    (((1, 2), (3,)), "entries"), (((1, 2), (3, -1)), "negative"), ((("a", 2), (1, 1)), "integers"),
    (((1.5, 2), (1, 1)), "integers"), ((5, (1, 1)), "sequence"),
])
def test_bad_boxes_are_named_errors(args, match):
    with pytest.raises(vc.InvalidArgumentError, match=match):
        BoundingBox(*args)
    with pytest.raises(vc.InvalidArgumentError, match="rank"):
        BoundingBox((0, 0), (1, 1)).intersected_with(BoundingBox((0, 0, 0), (1, 1, 1)))


# ------------------------------------------------------------------------------ views
def test_view_bounding_box_mag_and_boxes_everywhere(pyramid):
    data, path = pyramid
    img = vc.open(path)
    v = img.view()
    assert v.bounding_box == BoundingBox((0, 0, 0), (32, 48, 40)) and v.mag == Mag(1)
    v1 = img.view(level=1)
    assert v1.mag == Mag(2) and v1.mag.factors == (2, 2, 2)
    box = BoundingBox((8, 16, 8), (16, 8, 24))
    sub = v.get_view(absolute_bounding_box=box)
    assert sub.bounding_box == box
    np.testing.assert_array_equal(sub.read(), data[box.to_slices()])
    rel = sub.get_view(relative_bounding_box=BoundingBox((2, 0, 4), (4, 8, 8)))
    assert rel.bounding_box == BoundingBox((10, 16, 12), (4, 8, 8))
    np.testing.assert_array_equal(sub.read(relative_bounding_box=BoundingBox((2, 0, 4), (4, 8, 8))),
                                  data[10:14, 16:24, 12:20])
    np.testing.assert_array_equal(v.read(absolute_bounding_box=box), data[box.to_slices()])
    level1 = vc.open(path).read(level=1)
    np.testing.assert_array_equal(v1.read(absolute_bounding_box=box), level1[4:12, 8:12, 4:16])
    # a chunk's box, aligned to the level, gives the same view as get_view
    c = box.align_with_mag(v1.mag, ceil=True)
    assert v1.get_view(absolute_bounding_box=c).bounding_box == c
    with pytest.raises(vc.InvalidArgumentError, match="not both"):
        v.read(absolute_offset=(0, 0, 0), absolute_bounding_box=box)
    with pytest.raises(vc.InvalidArgumentError, match="size comes from"):
        v.get_view(size=(1, 1, 1), absolute_bounding_box=box)
    with pytest.raises(vc.InvalidArgumentError, match="BoundingBox"):
        v.read(absolute_bounding_box=((0, 0, 0), (1, 1, 1)))
    with pytest.raises(vc.InvalidArgumentError, match="rank"):
        v.read(absolute_bounding_box=BoundingBox((0, 0), (1, 1)))
    with pytest.raises(vc.InvalidArgumentError, match="multiple"):
        v1.read(absolute_bounding_box=BoundingBox((1, 0, 0), (2, 2, 2)))


def test_write_into_a_bounding_box(pyramid):
    data, path = pyramid
    v = vc.open(path).view(allow_unaligned=True)
    box = BoundingBox((8, 8, 16), (8, 16, 8))
    patch = volume(box.size, seed=9)
    v.write(patch, absolute_bounding_box=box)
    want = data.copy()
    want[box.to_slices()] = patch
    np.testing.assert_array_equal(vc.open(path).read(), want)
    sub = v.get_view(absolute_bounding_box=BoundingBox((0, 8, 8), (16, 16, 16)))
    sub.write(patch[:2], relative_bounding_box=BoundingBox((0, 0, 0), (2, 16, 8)))
    want[0:2, 8:24, 8:16] = patch[:2]
    np.testing.assert_array_equal(vc.open(path).read(), want)
    with pytest.raises(vc.InvalidArgumentError, match="does not fill"):
        v.write(patch, absolute_bounding_box=box.with_size((8, 8, 8)))
    np.testing.assert_array_equal(vc.open(path).read(), want)


def test_content_is_equal(pyramid, tmp_path):
    data, path = pyramid
    a = vc.open(path).view()
    copy = tmp_path / "copy.ome.zarr"
    vc.save(vc.build_pyramid(vc.from_array(data), factors=[2]), copy, chunks=16, progress=False)
    b = vc.open(copy).view()
    assert a.content_is_equal(b) and b.content_is_equal(a, chunk_shape=(8, 8, 8))
    with ThreadPoolExecutor(2) as ex:
        assert a.content_is_equal(b, executor=ex)
    # boxes at different offsets compare what lies at the same relative place
    s = vc.from_array(np.pad(data, ((3, 0), (0, 0), (0, 0))))
    shifted = s.view(read_only=True).get_view(absolute_offset=(3, 0, 0))
    assert a.content_is_equal(shifted)
    assert not a.content_is_equal(b.get_view(size=(32, 48, 39)))  # other shape
    assert not a.content_is_equal(vc.open(copy).view(level=1))    # other mag
    changed = data.copy()
    changed[31, 47, 39] += 1
    vc.open(copy).view(allow_unaligned=True).write(changed[24:32, 32:48, 32:40], absolute_offset=(24, 32, 32))
    assert not a.content_is_equal(vc.open(copy).view())
    with ThreadPoolExecutor(2) as ex:
        assert not a.content_is_equal(vc.open(copy).view(), executor=ex)
    f = vc.from_array(np.full((4, 4), np.nan, np.float32)).view(read_only=True)
    assert f.content_is_equal(vc.from_array(np.full((4, 4), np.nan, np.float32)).view(read_only=True))
    with pytest.raises(vc.InvalidArgumentError, match="voxcore View"):
        a.content_is_equal(data)


def _write_index(args):
    view, i = args
    view.write(np.full(view.shape, i, np.uint16))


def _record_zipped(args):
    src, dst, k = args
    dst.write(np.full(dst.shape, k + 100, np.uint16))


def test_chunk_maps_pass_view_and_index_and_show_progress_desc(tmp_path, capsys):
    a = vc.create_array(tmp_path / "a.zarr", (20, 16, 16), "uint16", chunks=(8, 8, 16))
    v = a.view()
    v.for_each_chunk(_write_index, with_index=True, progress_desc="numbering chunks")
    want = np.zeros((20, 16, 16), np.uint16)
    for i, sub in enumerate(v.chunks()):
        want[sub.bounding_box.to_slices()] = i
    np.testing.assert_array_equal(a.read(), want)
    err = capsys.readouterr().err
    assert "numbering chunks" in err and "100.0%" in err  # stderr is no terminal: one line
    assert err.count("\n") == 1
    with ThreadPoolExecutor(2) as ex:
        a.write(np.zeros((20, 16, 16), np.uint16))
        v.for_each_chunk(_write_index, with_index=True, executor=ex, progress_desc="again")
    np.testing.assert_array_equal(a.read(), want)
    assert "again" in capsys.readouterr().err
    sums = v.map_chunk(lambda s: int(s.read().sum()), progress_desc="summing")
    assert sums == [int(want[s.bounding_box.to_slices()].sum()) for s in v.chunks()]
    assert "summing" in capsys.readouterr().err
    b = vc.create_array(tmp_path / "b.zarr", (20, 16, 16), "uint16", chunks=(8, 8, 16))
    v.get_view(read_only=True).for_zipped_chunks(_record_zipped, b.view(), with_index=True)
    want_b = np.zeros_like(want)
    for k, sub in enumerate(b.view().chunks()):
        want_b[sub.bounding_box.to_slices()] = k + 100
    np.testing.assert_array_equal(b.read(), want_b)
    v.for_each_chunk(lambda s: None)  # no desc, no terminal: quiet
    assert capsys.readouterr().err == ""


def _level_doc(path, level):
    return json.loads((path / str(level) / "zarr.json").read_text())


def test_allow_resize_grows_every_level(pyramid):
    data, path = pyramid
    img = vc.open(path)
    v = img.view()
    patch = volume((8, 8, 16), seed=4)
    with pytest.raises(vc.InvalidArgumentError, match="allow_resize"):
        v.write(patch, absolute_offset=(32, 0, 40))
    assert _level_doc(path, 0)["shape"] == [32, 48, 40]
    v.write(patch, absolute_offset=(32, 0, 40), allow_resize=True)
    assert v.bounding_box == BoundingBox((0, 0, 0), (40, 48, 56))
    assert _level_doc(path, 0)["shape"] == [40, 48, 56] and _level_doc(path, 1)["shape"] == [20, 24, 28]
    fresh = vc.open(path)
    assert fresh.shape == (40, 48, 56) and fresh.levels[1].shape == (20, 24, 28)
    want = np.zeros((40, 48, 56), np.uint16)  # the new part reads as the fill value
    want[:32, :, :40] = data
    want[32:40, 0:8, 40:56] = patch
    np.testing.assert_array_equal(fresh.read(), want)
    np.testing.assert_array_equal(fresh.read(level=1)[:16, :24, :20], vc.open(path).read(level=1)[:16, :24, :20])
    vc.validate(path)  # still a valid OME-Zarr


def test_allow_resize_is_refused_where_it_cannot_grow(pyramid, tmp_path):
    data, path = pyramid
    v = vc.open(path).view()
    patch = np.ones((8, 8, 8), np.uint16)
    sub = v.get_view(size=(16, 16, 16))
    with pytest.raises(vc.InvalidArgumentError, match="whole level"):
        sub.write(patch, absolute_offset=(16, 0, 0), allow_resize=True)
    with pytest.raises(vc.InvalidArgumentError, match="end only"):
        v.write(patch, absolute_offset=(-8, 0, 0), allow_resize=True)
    c = vc.create_array(tmp_path / "c.zarr", (2, 8, 8), "uint16", chunks=(1, 8, 8), dims=("c", "y", "x"))
    with pytest.raises(vc.InvalidArgumentError, match="channel"):
        c.view().write(np.ones((1, 8, 8), np.uint16), absolute_offset=(2, 0, 0), allow_resize=True)
    m = vc.from_array(np.zeros((8, 8), np.uint16))
    with pytest.raises((vc.InvalidArgumentError, vc.UnsupportedError)):
        m.view().write(np.ones((8, 8), np.uint16), absolute_offset=(8, 0), allow_resize=True)
    assert _level_doc(path, 0)["shape"] == [32, 48, 40]
    np.testing.assert_array_equal(vc.open(path).read(), data)


def test_huge_bounding_box_read_is_refused_before_allocating(pyramid):
    _, path = pyramid
    v = vc.open(path).view(read_only=True)
    with pytest.raises(vc.LimitExceededError, match="bytes"):
        v.read(absolute_bounding_box=BoundingBox((0, 0, 0), (10**6,) * 3))
    pieces = BoundingBox((0, 0, 0), (10**6,) * 3).chunk((1, 1, 1))  # lazy: nothing made up front
    assert next(pieces) == BoundingBox((0, 0, 0), (1, 1, 1))
