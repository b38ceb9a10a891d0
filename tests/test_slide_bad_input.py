"""Bad input for TIFF slides (RELIABILITY.md "chunks", "metadata"): every corrupted file makes
``vc.open`` or a read raise a named voxcore exception whose message names the file and where
(the tile, the level, the tag); none crashes, hangs or allocates what a header merely claims.

Each case starts from a small valid file written by ``slides.generate`` (tiled deflate uint16,
tiled JPEG RGB with interchange streams, a two-level deflate pyramid, a small Aperio SVS with
abbreviated JPEG streams + JPEGTables) and patches bytes located with tifffile
(``slides.corrupt``): tile offsets / byte counts, tile bytes, JPEG SOF fields, IFD pointers,
ImageWidth / ImageLength / TileWidth.

The whole catalog first runs in a child interpreter whose address space is capped (``AS_LIMIT``)
and whose run time is bounded, so a segfault, an abort, a hang or a huge allocation is reported
with the case name; cases marked ``big`` (payloads or headers claiming gigabytes) are judged from
the child only. Sizes are bounded by construction: no case can make a correct reader work long.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import voxcore as vc
from slides import corrupt, generate, oracle
from voxcore.errors import (
    CorruptDataError,
    InvalidMetadataError,
    LimitExceededError,
    UnsupportedError,
    VoxcoreError,
)

AS_LIMIT = 2 << 30  # address space of the child that runs the catalog
FAST_S = 10.0  # one case must fail within this (a faulthandler watchdog ends the child after)
TILE_WORDS = (r"tile", r"level|page|IFD")  # a tile error names the tile and where it is
DIMS_WORDS = (r"ImageWidth|ImageLength|width|height|shape|size|tile",)
IFD_WORDS = (r"IFD|loop|cycl|director|offset",)

STRUCTURE = (InvalidMetadataError, LimitExceededError)


@dataclass(frozen=True)
class Case:
    name: str
    base: str  # key of BASES
    patch: Callable[[Path], None]
    error: type | tuple  # what must be raised
    words: tuple[str, ...] = TILE_WORDS  # regexes the message must match (besides the file)
    big: bool = False  # judged in the capped child only
    why: str = ""  # for ambiguous classes: why this class


# -- the valid starting points -------------------------------------------------------------------

BASES: dict[str, Callable[[Path], generate.Slide]] = {
    "deflate": lambda d: generate.write_tiled(d, "deflate.tif", size=(200, 300), tile=(64, 64),
                                              compression="zlib"),
    "jpeg": lambda d: generate.write_pyramid(d, "jpeg.tif", size=(192, 320), tile=64, levels=1,
                                             compression="jpeg"),
    "pyramid": lambda d: generate.write_pyramid(d, "pyramid.tif", size=(256, 384), tile=64,
                                                levels=2, factor=2),
    "svs": lambda d: generate.write_svs(d, "small.svs", size=(480, 720), tile=240, levels=2),
}
INNER = 6  # an interior tile of the 5 x 4 (deflate) and 5 x 3 (jpeg) tile grids


def _garbage(n: int, seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def _truncate_mid_last_tile(p: Path) -> None:
    off, count = corrupt.segment(p, 0, -1)
    assert off + count == p.stat().st_size or off + count <= p.stat().st_size
    with open(p, "r+b") as f:
        f.truncate(off + count // 2)


def _offset(value: Callable[[Path], int]) -> Callable[[Path], None]:
    def patch(p: Path) -> None:
        corrupt.write_value(p, 0, "TileOffsets", value(p), INNER)
    return patch


def _count(value: Callable[[Path], int]) -> Callable[[Path], None]:
    def patch(p: Path) -> None:
        corrupt.write_value(p, 0, "TileByteCounts", value(p), INNER)
    return patch


def _garbage_tile(keep: int = 0, seed: int = 1) -> Callable[[Path], None]:
    def patch(p: Path) -> None:
        off, count = corrupt.segment(p, 0, INNER)
        corrupt.overwrite(p, off + keep, _garbage(count - keep, seed))
    return patch


def _deflate_payload(nbytes: int) -> Callable[[Path], None]:
    """A valid zlib stream that decodes to nbytes (the tile holds 64*64*2 = 8192)."""
    def patch(p: Path) -> None:
        corrupt.replace_segment(p, 0, INNER, zlib.compress(_garbage(nbytes, 5)[: nbytes // 2]
                                                            + bytes(nbytes - nbytes // 2)))
    return patch


def _deflate_bomb(p: Path) -> None:
    corrupt.replace_segment(p, 0, INNER, zlib.compress(bytes(512 << 20), 9))  # ~0.5 MB


def _set(**values: int) -> Callable[[Path], None]:
    """Overwrite single-valued tags; all are located before any is changed (a patched file may
    no longer parse)."""
    def patch(p: Path) -> None:
        tags = {name: corrupt.tag(p, 0, name) for name in values}
        for name, value in values.items():
            corrupt.write_tag(p, tags[name], value)
    return patch


def _self_loop(p: Path) -> None:
    corrupt.set_next_ifd(p, 0, corrupt.ifd_offsets(p)[0])


def _loop_back(p: Path) -> None:
    first, *_ , last = corrupt.ifd_offsets(p)
    corrupt.set_next_ifd(p, len(corrupt.ifd_offsets(p)) - 1, first)
    assert last != first


def _sof(index: int = INNER, **claim) -> Callable[[Path], None]:
    def patch(p: Path) -> None:
        corrupt.patch_jpeg_sof(p, 0, index, **claim)
    return patch


def _jpegtables_garbage(p: Path) -> None:
    t = corrupt.tag(p, 0, "JPEGTables")
    # Keep SOI so that the tables still look like a JPEG stream, destroy DQT/DHT.
    corrupt.overwrite(p, t.value + 2, _garbage(t.count - 4, 9))


CASES = [
    # tile bytes and where they are
    Case("truncated-mid-tile", "deflate", _truncate_mid_last_tile, CorruptDataError),
    Case("truncated-mid-jpeg-tile", "jpeg", _truncate_mid_last_tile, CorruptDataError),
    Case("tile-offset-past-eof", "deflate", _offset(lambda p: p.stat().st_size + 4096),
         CorruptDataError),
    Case("tile-offset-max", "deflate", _offset(lambda p: 2**32 - 1), CorruptDataError),
    Case("bytecount-past-eof", "deflate", _count(lambda p: 4 * p.stat().st_size),
         CorruptDataError),
    Case("bytecount-max", "jpeg", _count(lambda p: 2**32 - 1), CorruptDataError),
    Case("zero-bytecount", "deflate", _count(lambda p: 0), CorruptDataError,
         why="offset != 0 with 0 bytes is a lie; GDAL's sparse tiles (offset 0 AND count 0) "
             "are another matter, see test_sparse_tile_reads_as_zeros"),
    Case("zero-bytecount-jpeg", "jpeg", _count(lambda p: 0), CorruptDataError),
    Case("garbage-deflate", "deflate", _garbage_tile(), CorruptDataError),
    Case("garbage-deflate-body", "deflate", _garbage_tile(keep=2), CorruptDataError),
    Case("deflate-too-short", "deflate", _deflate_payload(4096), CorruptDataError),
    Case("deflate-too-long", "deflate", _deflate_payload(3 * 8192), CorruptDataError,
         why="libtiff ignores output past the tile; RELIABILITY lists 'too many bytes'"),
    Case("deflate-bomb", "deflate", _deflate_bomb, CorruptDataError, big=True),
    Case("garbage-jpeg", "jpeg", _garbage_tile(), CorruptDataError),
    Case("jpeg-sof-larger", "jpeg", _sof(height=256, width=256), CorruptDataError),
    Case("jpeg-sof-smaller", "jpeg", _sof(height=32, width=32), CorruptDataError),
    Case("jpeg-sof-huge", "jpeg", _sof(height=65500, width=65500), CorruptDataError, big=True),
    Case("jpeg-sof-one-component", "jpeg", _sof(components=1), CorruptDataError),
    Case("svs-sof-lie", "svs", _sof(4, height=480, width=240), CorruptDataError),
    Case("svs-jpegtables-garbage", "svs", _jpegtables_garbage, VoxcoreError,
         words=(r"tile|JPEGTables|table",),
         why="the tables are a tag (InvalidMetadataError) that makes every tile undecodable "
             "(CorruptDataError): either is right"),
    # structure
    Case("tile-count-mismatch", "deflate", _set(ImageWidth=300 + 128), InvalidMetadataError,
         words=DIMS_WORDS),
    Case("absurd-dims", "deflate", _set(ImageWidth=2**31 - 1, ImageLength=2**31 - 1), STRUCTURE, words=DIMS_WORDS,
         big=True),
    Case("absurd-width", "jpeg", _set(ImageWidth=2**32 - 1), STRUCTURE, words=DIMS_WORDS,
         big=True),
    Case("zero-width", "deflate", _set(ImageWidth=0), InvalidMetadataError, words=DIMS_WORDS),
    Case("absurd-tile", "deflate", _set(TileWidth=2**30, TileLength=2**30), STRUCTURE, words=DIMS_WORDS, big=True),
    Case("zero-tile", "deflate", _set(TileWidth=0), InvalidMetadataError, words=DIMS_WORDS),
    Case("unknown-compression", "deflate", _set(Compression=60000), UnsupportedError,
         words=(r"compression|codec|60000",)),
    Case("ifd-self-loop", "deflate", _self_loop, InvalidMetadataError, words=IFD_WORDS,
         why="a reader could also stop at the first repeat; the file is still malformed"),
    Case("ifd-loop-back", "pyramid", _loop_back, InvalidMetadataError, words=IFD_WORDS),
    Case("first-ifd-past-eof", "deflate",
         lambda p: corrupt.set_first_ifd(p, p.stat().st_size + 64), VoxcoreError,
         words=IFD_WORDS,
         why="no image at all: InvalidMetadataError or CorruptDataError are both fair"),
]
BY_NAME = {c.name: c for c in CASES}
assert len(BY_NAME) == len(CASES)


@pytest.fixture(scope="module")
def bases(tmp_path_factory) -> dict[str, generate.Slide]:
    d = tmp_path_factory.mktemp("bases")
    return {name: make(d) for name, make in BASES.items()}


@pytest.fixture(scope="module")
def bad_files(bases, tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad")
    out = {}
    for case in CASES:
        src = bases[case.base].path
        dst = d / f"{case.name}{''.join(src.suffixes)}"
        shutil.copyfile(src, dst)
        case.patch(dst)
        out[case.name] = dst
    return out


_CHILD = """
    import faulthandler, json, sys, time
    import voxcore as vc
    for name, path in json.loads(sys.argv[1]).items():
        print("START", name, file=sys.stderr, flush=True)
        faulthandler.dump_traceback_later(FAST_S, exit=True)  # a hang ends the child here
        t0 = time.monotonic()
        try:
            img = vc.open(path)
            for k in range(len(img.levels)):
                img.read(level=k)
            res = {"raised": None}
        except BaseException as e:  # noqa: BLE001 - the parent judges what was raised
            res = {"raised": type(e).__name__, "mro": [c.__name__ for c in type(e).__mro__],
                   "message": str(e)[:2000]}
        faulthandler.cancel_dump_traceback_later()
        res["seconds"] = time.monotonic() - t0
        print("RESULT", json.dumps({name: res}), flush=True)
"""


def _run_catalog(files: dict[str, Path], workdir: Path) -> dict[str, dict]:
    """Run every case in a child interpreter (RLIMIT_AS = AS_LIMIT; each case watched by
    faulthandler for FAST_S s). A case that crashes or hangs ends its child: it is recorded as
    {"raised": "CRASH" | "HANG", "message": <its stack>} and a new child goes on with the cases after it."""
    script = workdir / "catalog.py"
    script.write_text("import resource\n"
                      f"resource.setrlimit(resource.RLIMIT_AS, ({AS_LIMIT}, {AS_LIMIT}))\n"
                      f"FAST_S = {FAST_S}\n" + textwrap.dedent(_CHILD))
    env = dict(os.environ, VOXCORE_NUM_THREADS="2", PYTHONFAULTHANDLER="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    results: dict[str, dict] = {}
    todo = list(files)
    while todo:
        arg = json.dumps({k: str(files[k]) for k in todo})
        try:
            proc = subprocess.run([sys.executable, str(script), arg], cwd=workdir, env=env,
                                  capture_output=True, text=True, check=False,
                                  timeout=FAST_S * len(todo) + 60)
            out, err, code = proc.stdout, proc.stderr, proc.returncode
        except subprocess.TimeoutExpired as e:  # the watchdog itself did not fire
            out, err, code = (e.stdout or b"").decode(), (e.stderr or b"").decode(), None
        for line in out.splitlines():
            if line.startswith("RESULT "):
                results.update(json.loads(line[len("RESULT "):]))
        rest = [k for k in todo if k not in results]
        if not rest:
            break
        hung = code is None or "Timeout (0:" in err
        results[rest[0]] = {"raised": "HANG" if hung else "CRASH", "mro": [],
                            "message": f"child status {code}: {_main_stack(err)}",
                            "seconds": 0.0}
        todo = rest[1:]
    return results


def _main_stack(err: str) -> str:
    """The main thread's stack from faulthandler's dump (the one in catalog.py), else the tail."""
    blocks = re.split(r"\n(?=(?:Current thread|Thread) 0x)", err)
    main = [b for b in blocks if "catalog.py" in b]
    return main[-1][-3000:] if main else err[-3000:]


@pytest.fixture(scope="module")
def child_results(bad_files, tmp_path_factory) -> dict[str, dict]:
    return _run_catalog(bad_files, tmp_path_factory.mktemp("child"))


def _names(err_cls) -> set[str]:
    classes = err_cls if isinstance(err_cls, tuple) else (err_cls,)
    return {c.__name__ for c in classes}


def _check_message(msg: str, path: Path, case: Case) -> None:
    assert path.name in msg, f"{case.name}: the message does not name the file: {msg!r}"
    for word in case.words:
        assert re.search(word, msg, re.IGNORECASE), f"{case.name}: the message lacks /{word}/: {msg!r}"


def test_catalog_never_crashes(child_results):
    """No case crashes, hangs or exhausts a 2 GiB address space."""
    assert set(child_results) == set(BY_NAME)
    bad = {name: res for name, res in child_results.items()
           if res["raised"] in ("CRASH", "HANG", "MemoryError", "RecursionError")
           or res["seconds"] >= FAST_S}
    assert not bad, "\n".join(f"{n}: {r['raised']}: {r['message'][-600:]}" for n, r in bad.items())


def _outcome(case: Case, bad_files, child_results) -> dict:
    """What opening and reading every level of the case's file raised: {"raised", "mro",
    "message"}; cases that crashed or hung in the child, and big ones, are not rerun here."""
    res = child_results[case.name]
    if res["raised"] in ("CRASH", "HANG"):
        pytest.fail(f"{case.name}: {res['raised']} in the child: {res['message'][-1500:]}")
    if case.big:
        return res
    try:
        img = vc.open(bad_files[case.name])
        for k in range(len(img.levels)):
            img.read(level=k)
    except BaseException as e:  # noqa: BLE001 - judged below
        return {"raised": type(e).__name__, "mro": [c.__name__ for c in type(e).__mro__],
                "message": str(e), "error": e}
    return {"raised": None, "mro": [], "message": ""}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input_raises_the_right_class(case, bad_files, child_results):
    res = _outcome(case, bad_files, child_results)
    assert res["raised"] is not None, f"{case.name}: accepted silently"
    want = _names(case.error)
    note = f" ({case.why})" if case.why else ""
    assert want & set(res["mro"]), (
        f"{case.name}: raised {res['raised']} (not {' or '.join(sorted(want))}{note}): "
        f"{res['message'][:500]}")
    assert "VoxcoreError" in res["mro"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input_message_says_where(case, bad_files, child_results):
    res = _outcome(case, bad_files, child_results)
    assert res["raised"] is not None, f"{case.name}: accepted silently"
    _check_message(res["message"], bad_files[case.name], case)


def test_bases_read_correctly(bases):
    """The starting points are valid: voxcore reads them like tifffile (so every failure above
    comes from the patch)."""
    for name, s in bases.items():
        img = vc.open(s.path)
        for k, want in enumerate(oracle.tifffile_levels(s)):
            got = img.read(level=k)
            assert got.shape == want.shape, name
            assert oracle.max_diff(got, want) <= (2 if s.lossy else 0), f"{name} level {k}"


def test_bad_tile_does_not_spoil_its_neighbours(bad_files, bases):
    """A region that avoids the damaged tile still reads (the error is per tile, not per file),
    for damage that open cannot see without reading the tile."""
    path = bad_files["garbage-deflate"]
    img = vc.open(path)
    want = oracle.tifffile_level(bases["deflate"], 0)
    # INNER = 6 is tile row 1, column 1 (5 tiles per row of 64 px): rows 0..63 are untouched.
    assert np.array_equal(img.read((slice(0, 64), slice(None))), want[:64])
    with pytest.raises(CorruptDataError):
        img.read((slice(64, 128), slice(64, 128)))


def test_sparse_tile_reads_as_zeros(bases, tmp_path):
    """GDAL's sparse files leave a tile's offset AND byte count 0: that tile is the fill value
    (0), as tifffile and GDAL read it. (A policy choice: see the zero-bytecount case.)"""
    p = tmp_path / "sparse.tif"
    shutil.copyfile(bases["deflate"].path, p)
    corrupt.write_value(p, 0, "TileOffsets", 0, INNER)
    corrupt.write_value(p, 0, "TileByteCounts", 0, INNER)
    want = oracle.tifffile_level(bases["deflate"], 0).copy()
    want[64:128, 64:128] = 0
    got = vc.open(p).read()
    assert np.array_equal(got, want)
