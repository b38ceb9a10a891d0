"""TIFF slides by URL (loopback HTTP, memory://, S3 through moto): every kind of file in
``slides.generate.CASES`` (SVS with JPEG and JPEG 2000 tiles, OME-TIFF pyramids, generic and
BigTIFF pyramids, strips, planar, big-endian, float) opened by URL is the local file: the same
levels, pixels (whole levels and unaligned regions), metadata, channels, associated images and
info; it pickles as its URL. A region read is a few range requests (neighbouring tiles in one),
damaged and truncated files raise what the local file raises, a missing object is
FileNotFoundError, a refused one PermissionError, and transient failures are retried."""

from __future__ import annotations

import pickle
import shutil
import uuid

import numpy as np
import pytest
import voxcore as vc
from slides import corrupt, generate
from voxcore.cli import main

pytest.importorskip("aiohttp")
from _http import Faults, Server  # noqa: E402

CASE_IDS = list(generate.CASES)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(root, {case: Slide}): every case written into one directory that a Server serves."""
    root = tmp_path_factory.mktemp("slides_remote")
    made = {}
    for case, write in generate.CASES.items():
        d = tmp_path_factory.mktemp(case)
        s = write(d)
        shutil.copyfile(s.path, root / s.path.name)
        made[case] = s
    return root, made


@pytest.fixture(scope="module")
def server(served):
    with Server(served[0]) as s:
        yield s


def regions(shape, dims, seed: int, n: int = 4) -> list[tuple]:
    """n boxes at unaligned positions with odd extents (a slice per axis, dims order)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        idx = []
        for d, size in zip(dims, shape):
            ext = int(rng.integers(1, min(size, 300) + 1)) if d != "c" else size
            a = int(rng.integers(0, size - ext + 1))
            idx.append(slice(a, a + ext))
        out.append(tuple(idx))
    return out


def same_image(got: vc.SlideImage, want: vc.SlideImage, url: str) -> None:
    """got (by URL) is want (the local file): description, metadata, every level's pixels."""
    assert isinstance(got, vc.SlideImage)
    assert (got.dims, got.shape, got.dtype, got.kind, got.compression) == (
        want.dims, want.shape, want.dtype, want.kind, want.compression)
    assert (got.scale, got.translation, got.units) == (want.scale, want.translation, want.units)
    assert got.metadata == want.metadata and got.channels == want.channels
    assert got.source == url and got.info()["path"] == url
    assert {k: v for k, v in got.info().items() if k != "path"} == {
        k: v for k, v in want.info().items() if k != "path"}
    assert got.summary()[1:] == want.summary()[1:]
    assert [(lv.shape, lv.chunks, lv.tile, lv.downsample) for lv in got.levels] == [
        (lv.shape, lv.chunks, lv.tile, lv.downsample) for lv in want.levels]
    for k, lv in enumerate(want.levels):
        np.testing.assert_array_equal(got.read(level=k), want.read(level=k), err_msg=f"level {k}")
        for region in regions(lv.shape, want.dims, seed=k):
            np.testing.assert_array_equal(got.read(region, level=k), want.read(region, level=k),
                                          err_msg=f"level {k} {region}")
    assert sorted(got.associated) == sorted(want.associated)
    for name in want.associated:
        np.testing.assert_array_equal(got.associated[name], want.associated[name], err_msg=name)


@pytest.mark.parametrize("case", CASE_IDS)
def test_a_url_reads_as_the_local_file(served, server, case):
    s = served[1][case]
    url = f"{server.url}/{s.path.name}"
    img = vc.open(url)
    same_image(img, vc.open(s.path), url)
    again = pickle.loads(pickle.dumps(img.levels[-1].image))  # travels as its URL
    assert again.source == url
    np.testing.assert_array_equal(again.read(), img.read(level=len(img.levels) - 1))


def test_memory_urls_read_as_the_local_file(served):
    fsspec = pytest.importorskip("fsspec")
    fs, where = fsspec.filesystem("memory"), f"/slides-{uuid.uuid4().hex}"
    try:
        for case in ("svs-jpeg", "ome-fluo-u16-deflate-subifds", "svs-jpeg2000"):
            s = served[1][case]
            fs.pipe(f"{where}/{s.path.name}", s.path.read_bytes())
            url = f"memory://{where.strip('/')}/{s.path.name}"
            same_image(vc.open(url, cache_bytes=1 << 20), vc.open(s.path), url)
    finally:
        fs.rm(where, recursive=True)


def test_s3_url_reads_as_the_local_file(served, s3):
    opts, fs = s3
    s = served[1]["svs-jpeg"]
    fs.pipe(f"bkt/slides/a/{s.path.name}", s.path.read_bytes())
    url = f"s3://bkt/slides/a/{s.path.name}"
    same_image(vc.open(url, storage_options=opts), vc.open(s.path), url)
    with pytest.raises(FileNotFoundError):
        vc.open("s3://bkt/slides/a/none.svs", storage_options=opts)


def _gets(server, name: str) -> list:
    return [r for r in server.log if r[0] == "GET" and r[1] == f"/{name}"]


@pytest.mark.parametrize("case", ["pyramid-rgb-deflate", "svs-jpeg", "ome-fluo-u16-deflate-subifds"])
def test_open_is_a_few_requests_and_a_region_one_per_run_of_tiles(served, case):
    s = served[1][case]
    with Server(served[0]) as srv:
        img = vc.open(f"{srv.url}/{s.path.name}")
        assert len(srv.log) <= 16, srv.log  # one HEAD and block-sized reads of the IFDs
        th, tw = img.levels[0].tile
        iy, ix = img.dims.index("y"), img.dims.index("x")
        box = [slice(None)] * len(img.dims)
        box[iy], box[ix] = slice(th // 2, th // 2 + 2 * th), slice(tw // 2, tw // 2 + 2 * tw)  # 3 x 3 tiles
        srv.log.clear()
        got = img.read(tuple(box))
        tiles = 9 * (img.shape[0] if img.dims[0] == "c" else 1)
        assert 1 <= len(_gets(srv, s.path.name)) <= 3 < tiles, srv.log  # one request per row at most
        assert len(srv.log) == len(_gets(srv, s.path.name))  # no HEAD again
        np.testing.assert_array_equal(got, vc.open(s.path).read(tuple(box)))


def test_missing_and_refused_objects(served):
    with Server(served[0], forbidden=("/aperio.svs",)) as s:
        with pytest.raises(FileNotFoundError, match="nope.svs"):
            vc.open(f"{s.url}/nope.svs")
        with pytest.raises(FileNotFoundError, match="nope.ome.tiff"):
            vc.open(f"{s.url}/dir/nope.ome.tiff")
        with pytest.raises(PermissionError, match="403"):
            vc.open(f"{s.url}/aperio.svs")


def _outcome(source):
    """The class raised by opening source and reading all of it (None when nothing is)."""
    try:
        img = vc.open(source)
        for k in range(len(img.levels)):
            img.read(level=k)
        for name in img.associated:
            img.associated[name]
    except Exception as e:  # noqa: BLE001 - compared below
        return type(e), str(e)
    return None, ""


def _patched(served, tmp) -> dict:
    """name -> path of damaged copies: truncated at several points, tile tables that lie, a
    sparse tile, a garbage tile, bytes that are no TIFF at all."""
    made = served[1]
    out = {}
    for case in ("svs-jpeg", "ome-rgb-jpeg-subifds", "tiled-gray-u16-deflate-pred2", "svs-jpeg2000",
                 "pyramid-bigtiff-rgb-jpeg"):
        raw = made[case].path.read_bytes()
        for frac in (0.0005, 0.01, 0.3, 0.7, 0.999):
            p = tmp / f"cut{int(frac * 10000)}-{made[case].path.name}"
            p.write_bytes(raw[:max(9, int(len(raw) * frac))])
            out[p.name] = p
    src = made["tiled-gray-u16-deflate-pred2"].path
    size = src.stat().st_size
    for name, tag, value in [("past-eof", "TileOffsets", size + 4096), ("count-max", "TileByteCounts", 2**32 - 1),
                             ("count-zero", "TileByteCounts", 0), ("count-past-eof", "TileByteCounts", size - 100)]:
        p = tmp / f"{name}.tif"
        shutil.copyfile(src, p)
        corrupt.write_value(p, 0, tag, value, 3)
        out[p.name] = p
    p = tmp / "count-bound.tif"  # within the file, beyond what a 256 x 256 RGB tile can take
    shutil.copyfile(made["pyramid-rgb-deflate"].path, p)
    corrupt.write_value(p, 0, "TileByteCounts", 5 << 19, 0)
    out[p.name] = p
    p = tmp / "sparse.tif"
    shutil.copyfile(src, p)
    corrupt.write_value(p, 0, "TileOffsets", 0, 3)
    corrupt.write_value(p, 0, "TileByteCounts", 0, 3)
    out[p.name] = p
    p = tmp / "garbage.tif"
    off, count = corrupt.segment(src, 0, 3)
    shutil.copyfile(src, p)
    corrupt.overwrite(p, off, bytes(range(256)) * (count // 256))
    out[p.name] = p
    (tmp / "not-a-tiff.svs").write_bytes(b"<html>no slide here</html>" * 10)
    out["not-a-tiff.svs"] = tmp / "not-a-tiff.svs"
    return out


def test_damaged_files_raise_what_the_local_file_raises(served, tmp_path):
    files = _patched(served, tmp_path)
    with Server(tmp_path) as s:
        for name, path in files.items():
            want, _ = _outcome(path)
            got, msg = _outcome(f"{s.url}/{name}")
            if name == "not-a-tiff.svs":  # locally no opener claims it; by URL the name does
                assert want is FileNotFoundError and got is vc.InvalidMetadataError, (name, got, msg)
                continue
            assert got is want, f"{name}: by URL {got.__name__ if got else None} ({msg[:300]}), locally {want}"
            if got is not None:
                assert issubclass(got, vc.VoxcoreError) and name in msg, (name, msg)
    sparse = vc.open(files["sparse.tif"]).read()
    with Server(tmp_path) as s:
        np.testing.assert_array_equal(vc.open(f"{s.url}/sparse.tif").read(), sparse)
        # a lying byte count is refused before it is fetched
        img = vc.open(f"{s.url}/count-bound.tif")
        s.log.clear()
        with pytest.raises(vc.CorruptDataError, match="exceeds the bound"):
            img.read((slice(0, 10), slice(0, 10)))
        assert s.log == []


def test_an_object_that_shrank_after_open_is_corrupt_not_zeros(served, tmp_path):
    s = served[1]["tiled-gray-u16-deflate-pred2"]
    p = tmp_path / s.path.name
    shutil.copyfile(s.path, p)
    with Server(tmp_path) as srv:
        img = vc.open(f"{srv.url}/{p.name}")
        p.write_bytes(s.path.read_bytes()[:4096])
        with pytest.raises(vc.CorruptDataError, match=p.name):
            img.read()
        p.unlink()
        with pytest.raises(FileNotFoundError, match=p.name):
            img.read(level=0)


def test_transient_failures_are_retried_and_a_persisting_one_named(served):
    root, made = served
    s = made["svs-jpeg"]
    local = vc.open(s.path)
    faults = Faults(only=f"/{s.path.name}", status500=2, drop=1)
    with Server(root, faults=faults) as srv:
        img = vc.open(f"{srv.url}/{s.path.name}")  # the IFD reads meet the faults
        assert faults.status500 == 0 and faults.drop == 0
        faults.status500, faults.drop = 1, 2  # and now the tile reads
        np.testing.assert_array_equal(img.read(level=1), local.read(level=1))
        assert faults.status500 == 0 and faults.drop == 0
        faults.status500 = 10**6
        with pytest.raises(vc.StoreError, match=r"aperio\.svs level 0.*\(4 attempts\)"):
            img.read(level=0)  # retries=3 by default
    with Server(root, faults=Faults(only=f"/{s.path.name}", status500=10**6)) as srv:
        with pytest.raises(vc.StoreError, match=r"aperio\.svs.*\(2 attempts\)"):
            vc.open(f"{srv.url}/{s.path.name}", retries=1)
    with Server(root, faults=Faults(only=f"/{s.path.name}", delay=1.0)) as srv:
        with pytest.raises(vc.StoreError, match="timed out"):
            vc.open(f"{srv.url}/{s.path.name}", timeout=0.2)


class _FailsGet(Faults):
    """Answers the n-th GET (counted from 1) with a 500, every other one as it is."""

    def __init__(self, n: int):
        super().__init__()
        self.n, self.seen = n, 0

    def take(self, what: str) -> bool:
        if what != "status500":
            return False
        with self._lock:
            self.seen += 1
            return self.seen == self.n


def test_a_failed_request_while_parsing_is_never_a_smaller_slide(served):
    """tifffile logs and reads on past some failed reads (a page list it takes as ended): each
    of the open's requests failing for good raises the request's error instead."""
    root, made = served
    s = made["ome-fluo-u16-deflate-subifds"]  # IFDs spread over the file: several requests
    with Server(root) as srv:
        vc.open(f"{srv.url}/{s.path.name}")
        gets = len(_gets(srv, s.path.name))
    assert gets >= 4
    faults = _FailsGet(0)
    with Server(root, faults=faults) as srv:
        for n in range(1, gets + 1):
            faults.n, faults.seen = n, 0
            with pytest.raises(vc.StoreError, match="fluo.ome.tif"):
                vc.open(f"{srv.url}/{s.path.name}", retries=0)


def test_the_cli_dask_and_views_take_slide_urls(served, server, capsys):
    s = served[1]["pyramid-rgb-deflate"]
    url = f"{server.url}/{s.path.name}"
    local = vc.open(s.path)
    img = vc.open(url)
    np.testing.assert_array_equal(img.to_dask(level=1).compute(), local.read(level=1))
    np.testing.assert_array_equal(img.view(level=2).read(), local.read(level=2))
    assert main(["info", url]) == 0
    out = capsys.readouterr().out
    assert url in out and "level 2" in out


def test_a_slide_url_is_not_a_write_target(tmp_path):
    with pytest.raises(vc.UnsupportedError, match="not written"):
        vc.save(vc.from_array(np.zeros((4, 5), np.uint8)), "memory://out/x.ome.tif")


def test_tiles_stream_into_the_core_as_they_arrive(served, monkeypatch):
    """A region read hands the tiles to the core through the streamed path (each decoded as it
    comes), and a tile request failing halfway is the read's error, not a hang."""
    from voxcore import _tiles

    calls = []
    real = _tiles.RemoteTiles.start_many
    monkeypatch.setattr(_tiles.RemoteTiles, "start_many",
                        lambda self, requests, sink: calls.append(len(requests)) or real(self, requests, sink))
    s = served[1]["pyramid-rgb-deflate"]
    faults = Faults(only=f"/{s.path.name}")
    with Server(served[0], faults=faults) as srv:
        img = vc.open(f"{srv.url}/{s.path.name}")
        np.testing.assert_array_equal(img.read(), vc.open(s.path).read())
        assert calls and sum(calls) > 1
        again = vc.open(f"{srv.url}/{s.path.name}", retries=0)
        faults.status500 = 1  # the next tile request fails
        with pytest.raises(vc.StoreError, match=s.path.name):
            again.read()
