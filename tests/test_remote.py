"""Reading by URL (issue: remote data): OME-Zarr and Zarr arrays over HTTP from a loopback
server, with and without byte-range support, compared with the local copy; a missing chunk is
the fill value, a refused one a PermissionError; file:// is local; bad URLs and options get
named errors."""

import os
import warnings

import numpy as np
import pytest
import voxcore as vc
from voxcore.cli import main

pytest.importorskip("aiohttp")
from _http import Faults, Server  # noqa: E402

BOXES = [(slice(None),), (0, slice(3, 40), slice(5, 50)), (slice(1, 2), slice(10, 64, 3), slice(None, None, -1)),
         (1, 63, 0)]


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    a = np.random.default_rng(0).integers(0, 4000, (2, 64, 96)).astype(np.uint16)
    img = vc.from_array(a, dims=("c", "y", "x"), scale=(1, 0.5, 0.5))
    vc.save(vc.build_pyramid(img, [{"y": 2, "x": 2}]), root / "v5.ome.zarr", chunks=16)
    vc.save(vc.build_pyramid(img, [{"y": 2, "x": 2}]), root / "shard.ome.zarr", chunks=16, shards=32)
    vc.save(vc.build_pyramid(img, [{"y": 2, "x": 2}]), root / "v4.ome.zarr", chunks=16, version="0.4")
    arr = vc.create_array(root / "plain.zarr", a.shape, a.dtype, chunks=(1, 16, 16), fill_value=7)
    arr.write(a)
    return root, a


@pytest.mark.parametrize("name", ["v5.ome.zarr", "shard.ome.zarr", "v4.ome.zarr", "plain.zarr"])
def test_a_url_reads_as_the_local_copy(trees, name):
    root, a = trees
    local = vc.open(root / name)
    with Server(root) as s:
        img = vc.open(f"{s.url}/{name}")
        assert img.shape == local.shape and img.dims == local.dims and img.scale == local.scale
        for box in BOXES:
            np.testing.assert_array_equal(img.read(box), local.read(box))
        if name.endswith("ome.zarr"):
            np.testing.assert_array_equal(img.read(level=1), local.read(level=1))
        ranged = [r for r in s.log if r[2]]
        assert bool(ranged) == (name == "shard.ome.zarr")  # shards are read by ranges, chunks whole


@pytest.mark.parametrize("name", ["v5.ome.zarr", "v4.ome.zarr", "plain.zarr"])
def test_opening_asks_each_metadata_document_once_and_the_levels_together(trees, name):
    root, _ = trees
    # every answer waits, so requests sent together are answered together
    with Server(root, faults=Faults(only=f"/{name}/", delay=0.3)) as s:
        vc.open(f"{s.url}/{name}")
        asked = [r[1] for r in s.log]
        peak = s.gauge.peak
    assert len(asked) == len(set(asked)), asked  # the openers voxcore.open asks in turn share one read
    if name == "plain.zarr":
        assert asked == [f"/{name}/zarr.json"]  # a v3 array: one request, as tensorstore
    else:  # the levels' metadata and the labels' probes in flight together
        level_docs = [p for p in asked if p.startswith((f"/{name}/0/", f"/{name}/1/"))]
        assert {p.rsplit("/", 1)[1] for p in level_docs} >= {"zarr.json" if name == "v5.ome.zarr" else ".zarray"}
        assert peak >= 2 + 1, (peak, asked)


def test_a_server_that_ignores_ranges_still_gives_the_right_data(trees):
    root, _ = trees
    local = vc.open(root / "shard.ome.zarr")
    with Server(root, ranges=False) as s:
        img = vc.open(f"{s.url}/shard.ome.zarr")
        with pytest.warns(vc.IgnoredRangeWarning, match="ignores byte ranges"):
            got = img.read()
        np.testing.assert_array_equal(got, local.read())
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # warned once per store
            np.testing.assert_array_equal(img.read(BOXES[2]), local.read(BOXES[2]))


def test_a_missing_chunk_is_the_fill_value_and_a_refused_one_a_permission_error(trees, tmp_path):
    root, a = trees
    import shutil
    served = tmp_path / "srv"
    shutil.copytree(root / "plain.zarr", served / "plain.zarr")
    os.remove(served / "plain.zarr" / "c" / "1" / "0" / "0")
    with Server(served, forbidden=("/plain.zarr/c/0/",)) as s:
        img = vc.open(f"{s.url}/plain.zarr")
        assert (img.read((1, slice(0, 16), slice(0, 16))) == 7).all()
        np.testing.assert_array_equal(img.read((1, slice(16, 64))), a[1, 16:])
        with pytest.raises(PermissionError, match="403"):
            img.read((0,))


def test_file_urls_are_local_paths(trees):
    root, a = trees
    np.testing.assert_array_equal(vc.open(f"file://{root}/plain.zarr").read(), a)


@pytest.mark.parametrize("call, error, words", [
    (lambda root: vc.open(root / "plain.zarr", storage_options={"a": 1}), vc.InvalidArgumentError,
     "storage_options= is for URLs"),
    (lambda root: vc.open("nosuchproto://x/y.zarr"), vc.UnsupportedError, "nosuchproto:// cannot be opened"),
])
def test_bad_urls_and_options(trees, call, error, words):
    root, _ = trees
    with pytest.raises(error, match=words):
        call(root)


def test_a_url_that_serves_nothing_is_file_not_found(trees):
    root, _ = trees
    with Server(root) as s:
        with pytest.raises(FileNotFoundError, match="no Zarr array or group"):
            vc.open(f"{s.url}/nothing.zarr")


def test_the_cli_takes_urls(trees, capsys):
    root, _ = trees
    with Server(root) as s:
        assert main(["info", f"{s.url}/v5.ome.zarr"]) == 0
    assert "(2, 64, 96)" in capsys.readouterr().out


def test_the_chunks_of_a_shard_come_in_one_request(trees):
    root, a = trees
    shards = sorted(p for p in (root / "shard.ome.zarr" / "0" / "c").rglob("*") if p.is_file())
    with Server(root) as s:
        img = vc.open(f"{s.url}/shard.ome.zarr")
        np.testing.assert_array_equal(img.read(), a)
        gets = [r for r in s.log if r[0] == "GET" and "/0/c/" in r[1]]
    # per shard: its index (a suffix range) and one range for all of its chunks (2 x 2 each)
    assert len(gets) == 2 * len(shards), gets
    assert sum(1 for r in gets if r[2].startswith("bytes=-")) == len(shards)


def test_coalesce_merges_near_ranges_of_one_key():
    from voxcore._stores import coalesce

    reqs = [("a", "range", 100, 10), ("a", "range", 0, 50), ("b", "range", 0, 8), ("a", "range", 60, 20),
            ("a", "range", 10_000, 5), ("a", "suffix", 0, 16), ("a", "whole", 0, 0), ("a", "range", 30, 10)]
    fetches = coalesce(reqs, gap=20, merged=1000)
    by = {(k, kind, off): (n, parts) for k, kind, off, n, parts in fetches}
    assert by[("a", "range", 0)] == (110, [(1, 0, 50), (7, 30, 10), (3, 60, 20), (0, 100, 10)])
    assert by[("a", "range", 10_000)] == (5, [(4, 0, 5)])
    assert by[("b", "range", 0)] == (8, [(2, 0, 8)])
    assert len(fetches) == 5  # the suffix and whole requests as they are
    capped = coalesce([("a", "range", i * 10, 10) for i in range(10)], gap=0, merged=35)
    assert [(f[2], f[3]) for f in capped] == [(0, 30), (30, 30), (60, 30), (90, 10)]
    for f in capped:  # every request served once, within its fetch
        assert all(0 <= at and at + n <= f[3] for _, at, n in f[4])


def test_a_shard_index_is_fetched_once_per_handle(trees):
    root, a = trees
    local = vc.open(root / "shard.ome.zarr")
    with Server(root) as s:
        img = vc.open(f"{s.url}/shard.ome.zarr")
        box = (0, slice(0, 8), slice(0, 8))
        np.testing.assert_array_equal(img.read(box), local.read(box))
        first = len(s.log)
        np.testing.assert_array_equal(img.read((0, slice(8, 16), slice(0, 8))), local.read((0, slice(8, 16), slice(0, 8))))
        again = s.log[first:]
    assert len(again) == 1 and not again[0][2].startswith("bytes=-"), again  # the chunk's range only


def test_writes_through_a_handle_drop_its_cached_shard_indexes():
    import zarr

    store = zarr.storage.MemoryStore()
    want = np.zeros((64, 64), np.uint16)
    img = vc.create_array(store, want.shape, want.dtype, chunks=(8, 8), shards=(32, 32), path="s")
    img.write(want)
    np.testing.assert_array_equal(img.read(), want)  # the indexes are now cached
    for k, (y, x) in enumerate([(3, 5), (0, 0), (40, 33), (9, 60)]):
        want[y:y + 7, x:x + 4] = 100 + k  # partial shards: each rewrite moves its chunks
        img.write(want[y:y + 7, x:x + 4], offset=(y, x), allow_unaligned=True)
        np.testing.assert_array_equal(img.read(), want)
    np.testing.assert_array_equal(vc.open(store, path="s").read(), want)


def test_check_and_validate_refuse_urls_they_cannot_list(trees):
    from voxcore.check import check

    root, _ = trees
    with Server(root) as s:
        for fn in (check, vc.validate):
            with pytest.raises(vc.UnsupportedError, match="read a local tree"):
                fn(f"{s.url}/v5.ome.zarr")
    assert check(f"file://{root / 'v5.ome.zarr'}") == []  # file:// is local
    assert [p for p in vc.validate(f"file://{root / 'v5.ome.zarr'}") if p.severity == "error"] == []
