"""Errors a user can name and act on: bad OME metadata, lossy write casts, unaligned writes,
reads that cannot fit in memory, codec "none", `voxcore info` on NIfTI, `voxcore demo`'s
output, and the read-only `voxcore check`.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest
import voxcore as vc
from voxcore import cli

IME = vc.InvalidMetadataError
VERSIONS = ("0.4", "0.5")
BAD_PATHS = ["../..", "/etc", "a/../b", "a\\b", "a\x00b", "./0"]


def ome_doc(root, version):
    return root / ("zarr.json" if version == "0.5" else ".zattrs")


def edit_ome(root, version, fn):
    """Apply fn(ome) to the group's OME dict (0.5: attributes.ome; 0.4: .zattrs) and save it."""
    path = ome_doc(root, version)
    doc = json.loads(path.read_text())
    fn(doc["attributes"]["ome"] if version == "0.5" else doc)
    path.write_text(json.dumps(doc))


def multiscale(ome):
    return ome["multiscales"][0]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A clean 2-level pyramid with one label image, per version."""
    root = tmp_path_factory.mktemp("named")
    a = np.arange(8 * 10 * 12, dtype="u2").reshape(8, 10, 12)
    out = {}
    for v in VERSIONS:
        p = root / f"img{v}.ome.zarr"
        vc.save(vc.build_pyramid(vc.from_array(a), [2], "mean"), p, version=v, chunks=4,
                labels={"cells": (a % 3).astype("u1")})
        out[v] = p
    return out


@pytest.fixture
def copy(tmp_path, saved):
    def make(version):
        dst = tmp_path / f"copy{version}.ome.zarr"
        shutil.copytree(saved[version], dst)
        return dst
    return make


# ---- 1. OME metadata -----------------------------------------------------------------------

@pytest.mark.parametrize("version", VERSIONS)
def test_unknown_ome_version_names_the_supported_ones(copy, version):
    root = copy(version)

    def set_version(ome):
        (ome if version == "0.5" else multiscale(ome))["version"] = "99.9"
    edit_ome(root, version, set_version)
    with pytest.raises(vc.UnsupportedError, match=r"'99\.9' is not supported \(supported: 0\.1, 0\.2, 0\.3, 0\.4, 0\.5\)"):
        vc.open(root)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("times", [2, 1000])
def test_duplicate_dataset_path(copy, version, times):
    root = copy(version)
    edit_ome(root, version, lambda ome: multiscale(ome).__setitem__(
        "datasets", [multiscale(ome)["datasets"][0]] * times))
    with pytest.raises(IME, match=r"datasets\[1\]\.path='0' is listed twice \(first at datasets\[0\]\)"):
        vc.open(root)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("bad", BAD_PATHS)
def test_escaping_dataset_path_is_invalid_metadata(copy, version, bad):
    root = copy(version)
    edit_ome(root, version, lambda ome: multiscale(ome)["datasets"][1].__setitem__("path", bad))
    with pytest.raises(IME) as ei:
        vc.open(root)
    assert isinstance(ei.value, vc.UnsafePathError)  # still what RELIABILITY.md promises
    assert isinstance(ei.value.__cause__, vc.UnsafePathError)
    assert f"datasets[1].path={bad!r}" in str(ei.value)


@pytest.mark.parametrize("version", VERSIONS)
def test_empty_dataset_path(copy, version):
    root = copy(version)
    edit_ome(root, version, lambda ome: multiscale(ome)["datasets"][0].__setitem__("path", ""))
    with pytest.raises(IME, match=r"datasets\[0\]\.path must be a non-empty string"):
        vc.open(root)


def _set_labels(root, version, names):
    edit_ome(root / "labels", version, lambda ome: ome.__setitem__("labels", names))


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("bad", BAD_PATHS)
def test_escaping_label_name_is_invalid_metadata(copy, version, bad):
    root = copy(version)
    _set_labels(root, version, ["cells", bad])
    with pytest.raises(IME) as ei:
        vc.open(root)
    assert f"labels[1]={bad!r}" in str(ei.value)
    assert isinstance(ei.value.__cause__, vc.UnsafePathError)


@pytest.mark.parametrize("version", VERSIONS)
def test_duplicate_and_empty_label_names(copy, version):
    root = copy(version)
    _set_labels(root, version, ["cells", "cells"])
    with pytest.raises(IME, match=r"labels\[1\]='cells' is listed twice"):
        vc.open(root)
    _set_labels(root, version, ["cells", ""])
    with pytest.raises(IME, match="labels must be a list of names"):
        vc.open(root)


@pytest.mark.parametrize("bad", ["../x", "/etc", "a\\b", "a\x00b", ".", ""])
def test_save_refuses_escaping_label_names_before_writing(tmp_path, bad):
    a = np.zeros((4, 6, 8), "u2")
    out = tmp_path / "out.ome.zarr"
    with pytest.raises(vc.InvalidArgumentError, match="label names must be plain names"):
        vc.save(vc.from_array(a), out, labels={bad: a.astype("u1")})
    assert not out.exists()


# ---- 2. write casting ----------------------------------------------------------------------

def int_array(tmp_path, dtype="u2", shape=(4, 4)):
    return vc.create_array(tmp_path / "a.zarr", shape, dtype, chunks=4)


def test_float_into_int_needs_casting_unsafe(tmp_path):
    img = int_array(tmp_path)
    data = np.full((4, 4), 2.7)
    with pytest.raises(vc.InvalidArgumentError, match=r"float64 data into a uint16 array.*casting=\"unsafe\""):
        img.write(data)
    with pytest.raises(vc.InvalidArgumentError, match=r"casting=\"unsafe\""):
        img[...] = data
    with pytest.raises(vc.InvalidArgumentError, match=r"casting=\"unsafe\""):
        img[0, 0] = 1.5  # a Python float too
    assert not img.read().any()
    img.write(data, casting="unsafe")
    np.testing.assert_array_equal(img.read(), data.astype("u2"))


@pytest.mark.parametrize("value,src,dst,rng", [
    (70000, "i4", "u2", r"\[0, 65535\]"),
    (-1, "i1", "u1", r"\[0, 255\]"),
    (-1, "i8", "u8", r"\[0, 18446744073709551615\]"),
    (200, "u1", "i1", r"\[-128, 127\]"),
])
def test_integers_out_of_range_raise(tmp_path, value, src, dst, rng):
    img = int_array(tmp_path, dst)
    data = np.zeros((4, 4), src)
    data[1, 2] = value
    with pytest.raises(vc.InvalidArgumentError, match=rf"out of range of the array's {np.dtype(dst)} "
                                                      rf"\(range={rng}, got=\[.*{value}.*\]\)"):
        img.write(data)
    assert not img.read().any()
    img.write(data, casting="unsafe")  # asked for: numpy's wrap-around
    np.testing.assert_array_equal(img.read(), data.astype(dst))
    data[1, 2] = 1  # in range: a narrowing integer cast is fine
    img.write(data)
    np.testing.assert_array_equal(img.read(), data.astype(dst))


@pytest.mark.filterwarnings("ignore::voxcore.UnalignedWriteWarning")
def test_python_scalars_assign_when_they_fit(tmp_path):
    img = int_array(tmp_path, "u1")
    img[...] = 5
    img[0, :] = 255
    want = np.full((4, 4), 5, "u1")
    want[0] = 255
    np.testing.assert_array_equal(img.read(), want)
    for bad in (256, -1):
        with pytest.raises(vc.InvalidArgumentError, match=r"range=\[0, 255\]"):
            img[...] = bad
    f = vc.create_array(tmp_path / "f.zarr", (4, 4), "f4", chunks=4)
    f[...] = 3  # int into float: fine
    f[1] = 0.5
    assert f.read()[0, 0] == 3 and f.read()[1, 0] == 0.5


def test_casting_keyword_follows_numpy(tmp_path):
    img = int_array(tmp_path, "i4")
    small = np.ones((4, 4), "i8")
    with pytest.raises(vc.InvalidArgumentError, match="casting='safe'"):
        img.write(small, casting="safe")
    img.write(small.astype("i2"), casting="safe")
    with pytest.raises(vc.InvalidArgumentError, match="casting='no'"):
        img.write(small.astype("i2"), casting="no")
    img.write(small.astype(">i4"), casting="equiv")
    with pytest.raises(vc.InvalidArgumentError, match="casting must be one of"):
        img.write(small, casting="lossy")
    np.testing.assert_array_equal(img.read(), small)


def test_matching_dtype_is_written_without_a_copy(tmp_path):
    img = int_array(tmp_path, "u2", (8, 8))
    seen = []

    class Spy:
        def write(self, start, arr):
            seen.append(arr)

    img._core = Spy()
    data = np.arange(64, dtype="u2").reshape(8, 8)
    img.write(data)
    assert seen[-1] is data


# ---- 3. unaligned writes -------------------------------------------------------------------

def grid(tmp_path, shards=None):
    return vc.create_array(tmp_path / "g.zarr", (10, 12), "u2", chunks=4, shards=shards)


def test_unaligned_write_warns_once_pointing_at_the_caller(tmp_path):
    img = grid(tmp_path)
    with pytest.warns(vc.UnalignedWriteWarning, match=r"start=\(1, 2\) shape=\(3, 3\).*chunk shape \(4, 4\)") as rec:
        img.write(np.ones((3, 3), "u2"), offset=(1, 2))  # partial on both axes: one warning
    assert len(rec) == 1 and rec[0].filename == __file__
    with pytest.warns(vc.UnalignedWriteWarning) as rec:
        img[1:3, 0:4] = 7
    assert len(rec) == 1 and rec[0].filename == __file__
    assert img.read()[1, 0] == 7 and img.read()[1, 2] == 7


def test_aligned_and_edge_writes_do_not_warn(tmp_path):
    img = grid(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        img.write(np.ones((4, 8), "u2"), offset=(4, 4))
        img.write(np.ones((2, 4), "u2"), offset=(8, 8))  # the chunks the array's end cuts
        img.write(np.ones((10, 12), "u2"))
        img[8:10, 0:12] = 3
        img.write(np.ones((1, 3), "u2"), offset=(1, 1), allow_unaligned=True)


def test_shard_unaligned_write_warns(tmp_path):
    img = grid(tmp_path, shards=8)
    with pytest.warns(vc.UnalignedWriteWarning, match=r"shard shape \(8, 8\)"):
        img.write(np.ones((4, 4), "u2"), offset=(0, 0))  # a whole chunk, half a shard


def test_view_write_warns_once_and_internal_writers_stay_quiet(tmp_path):
    img = grid(tmp_path)
    with pytest.warns(vc.UnalignedWriteWarning) as rec:
        img.view().write(np.ones((2, 2), "u2"), absolute_offset=(1, 1))
    assert len(rec) == 1 and rec[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        img.view(allow_unaligned=True).write(np.ones((2, 2), "u2"), absolute_offset=(1, 1))
        # a streamed save of a source whose extents are no multiple of the chunks
        a = np.arange(13 * 22 * 17, dtype="u2").reshape(13, 22, 17)
        src = vc.create_array(tmp_path / "src.zarr", a.shape, a.dtype, chunks=5)
        src.write(a)
        vc.save(vc.build_pyramid(src, [2, 4], "mean"), tmp_path / "p.ome.zarr", chunks=8, shards=16)
    np.testing.assert_array_equal(vc.open(tmp_path / "p.ome.zarr").read(), a)


# ---- 4. reads too large for memory ---------------------------------------------------------

def test_read_larger_than_memory_is_refused_before_allocating(tmp_path):
    img = vc.create_array(tmp_path / "huge.zarr", (1 << 20,) * 3, "u2", chunks=64)
    nbytes = (1 << 60) * 2
    with pytest.raises(vc.LimitExceededError, match=rf"needs {nbytes} bytes"):
        img.read()
    with pytest.raises(vc.LimitExceededError, match=r"needs \d+ bytes"):
        img[::2, ::2, ::2]  # the strided path allocates the box it reads first
    assert img[5:7, 0, 0:3].tolist() == [[0, 0, 0]] * 2


# ---- 5. codec "none" -----------------------------------------------------------------------

@pytest.mark.parametrize("zarr_format", [2, 3])
def test_codec_none_is_no_compression(tmp_path, zarr_format):
    a = vc.create_array(tmp_path / "a.zarr", (5, 6), "i2", codec="none", zarr_format=zarr_format)
    b = vc.create_array(tmp_path / "b.zarr", (5, 6), "i2", codec=None, zarr_format=zarr_format)
    assert a.metadata == b.metadata
    a.write(np.arange(30, dtype="i2").reshape(5, 6))
    np.testing.assert_array_equal(vc.open(tmp_path / "a.zarr").read(), np.arange(30).reshape(5, 6))


# ---- 6. CLI: info on NIfTI, demo ------------------------------------------------------------

@pytest.mark.parametrize("name", ["t.nii", "t.nii.gz"])
def test_info_describes_a_nifti_file(tmp_path, name):
    nib = pytest.importorskip("nibabel")
    img = nib.Nifti1Image(np.arange(24, dtype="i2").reshape(2, 3, 4), np.diag([-0.8, 0.8, 1.2, 1.0]))
    img.header.set_xyzt_units("mm")
    nib.save(img, tmp_path / name)
    res = subprocess.run([sys.executable, "-m", "voxcore.cli", "info", str(tmp_path / name)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "format: NIfTI-1 (single file" in out and ("gzip" in out) == name.endswith(".gz")
    assert "shape: (2, 3, 4)" in out and "dtype:  int16" in out and "datatype: 4 (int16)" in out
    assert "voxel sizes: (0.8, 0.8, 1.2)  xyzt_units: mm" in out
    assert "sform_code: 2 (aligned)  qform_code: 0 (unknown)  orientation: LAS" in out
    assert "affine (best):" in out and "-0.8" in out


def test_compare_says_slower_when_it_is():
    assert cli._compare(1.0, 0.8) == "x1.2 faster"
    assert cli._compare(0.8, 1.0) == "x1.25 slower"


def test_demo_without_dir_says_its_files_are_removed(capsys):
    pytest.importorskip("nibabel")
    assert cli.main(["demo", "--size", "64"]) == 0
    out = capsys.readouterr().out
    m = re.search(r"files go to (\S+), removed on exit \(keep them with --dir DIR\)", out)
    assert m, out
    assert not os.path.exists(m.group(1))
    assert " x0." not in out  # a slower ratio reads "x1.25 slower", never "x0.8 faster"


# ---- 7. voxcore check ----------------------------------------------------------------------

def check(root):
    from voxcore.check import check as check_tree

    return check_tree(root)


def snapshot(root):
    """Every path under root with its bytes and mtime (directories: mtime)."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        out[dirpath] = os.stat(dirpath).st_mtime_ns
        for f in files:
            p = os.path.join(dirpath, f)
            with open(p, "rb") as fh:
                out[p] = (fh.read(), os.stat(p).st_mtime_ns)
    return out


def run_check(root, capsys):
    before = snapshot(root)
    rc = cli.main(["check", str(root)])
    out = capsys.readouterr().out
    assert snapshot(root) == before  # read-only
    return rc, out


@pytest.mark.parametrize("version", VERSIONS)
def test_check_a_clean_pyramid(copy, version, capsys):
    root = copy(version)
    rc, out = run_check(root, capsys)
    assert rc == 0, out
    assert out.strip().endswith("0 errors, 0 warnings, 0 notes")
    assert check(root) == []


def dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def chunk_key(version, *idx):
    return ("c/" if version == "0.5" else "") + "/".join(map(str, idx))


def _stale_temp(root, v):
    name = f".0.vxtmp-{dead_pid()}-ab12-1"
    d = root / "0" / chunk_key(v, 0, 0)
    (d / name).write_bytes(b"half a chunk")
    return "error", "stale-temp-file", f"0/{chunk_key(v, 0, 0)}/{name}"


def _live_temp(root, v):
    name = f".zarr.json.vxtmp-{os.getpid()}-ab12-1"
    (root / "1" / name).write_bytes(b"{")
    return "info", "write-in-progress", f"1/{name}"


def _missing_chunk(root, v):
    (root / "1" / chunk_key(v, 0, 1, 1)).unlink()
    return "info", "missing-chunks", "1"


def _out_of_range(root, v):
    src = root / "1" / chunk_key(v, 0, 0, 0)
    dst = root / "1" / chunk_key(v, 0, 0, 9)
    shutil.copy(src, dst)
    return "error", "chunk-out-of-range", f"1/{chunk_key(v, 0, 0, 9)}"


def _wrong_name(root, v):
    shutil.copy(root / "1" / chunk_key(v, 0, 0, 0), root / "1" / "0.0.0")
    return "error", "bad-chunk-key", "1/0.0.0"


def _stray_file(root, v):
    (root / "0" / "notes.txt").write_text("hi")
    return "warning", "stray-file", "0/notes.txt"


def _bad_json(root, v):
    meta = "zarr.json" if v == "0.5" else ".zarray"
    (root / "1" / meta).write_text("{not json")
    return "error", "bad-json", f"1/{meta}"


def _refused_meta(root, v):
    meta = "zarr.json" if v == "0.5" else ".zarray"
    doc = json.loads((root / "1" / meta).read_text())
    doc["data_type" if v == "0.5" else "dtype"] = "int7" if v == "0.5" else "<i7"
    (root / "1" / meta).write_text(json.dumps(doc))
    return "error", "bad-metadata", f"1/{meta}"


def _version(root, v):
    edit_ome(root, v, lambda ome: (ome if v == "0.5" else multiscale(ome)).__setitem__("version", "99.9"))
    return "error", "ome-version", ome_doc(root, v).name


def _dup_path(root, v):
    edit_ome(root, v, lambda ome: multiscale(ome)["datasets"].append(multiscale(ome)["datasets"][0]))
    return "error", "ome-metadata", ome_doc(root, v).name


def _escaping_path(root, v):
    edit_ome(root, v, lambda ome: multiscale(ome)["datasets"][1].__setitem__("path", "../x"))
    return "error", "ome-path", ome_doc(root, v).name


def _growing_levels(root, v):
    edit_ome(root, v, lambda ome: multiscale(ome)["datasets"].reverse())
    return "error", "ome-level-shape", "0"


def _missing_level(root, v):
    shutil.rmtree(root / "1")
    return "error", "missing-level", "1"


def _missing_label(root, v):
    _set_labels(root, v, ["cells", "ghost"])
    return "error", "missing-label", "labels/ghost"


INJECTED = [_stale_temp, _live_temp, _missing_chunk, _out_of_range, _wrong_name, _stray_file,
            _bad_json, _refused_meta, _version, _dup_path, _escaping_path, _growing_levels,
            _missing_level, _missing_label]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("inject", INJECTED, ids=lambda f: f.__name__.strip("_"))
def test_check_reports_each_injected_problem(copy, version, inject, capsys):
    root = copy(version)
    severity, kind, rel = inject(root, version)
    rc, out = run_check(root, capsys)
    line = f"{severity}: {rel}: {kind}: "
    assert line in out, out
    assert rc == (1 if severity == "error" else 0), out
    found = [p for p in check(root) if p.kind == kind]
    assert found and found[0].path == rel and found[0].severity == severity


def test_check_names_the_missing_chunks(copy, capsys):
    root = copy("0.5")
    for idx in [(0, 0, 0), (1, 2, 2)]:
        (root / "0" / chunk_key("0.5", *idx)).unlink()
    [p] = [p for p in check(root) if p.kind == "missing-chunks"]
    assert p.path == "0" and p.message.startswith("2 of 18 chunks have no file")
    assert "c/0/0/0, c/1/2/2" in p.message


def test_check_refuses_a_non_zarr_directory(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "data.bin").write_bytes(b"1")
    rc, out = run_check(tmp_path / "x", capsys)
    assert rc == 1 and "error: .: no-zarr-node:" in out
