"""Analyze 7.5 and SPM99/SPM2 .hdr/.img pairs (no NIfTI magic) read as nibabel reads them:
the same image class's semantics (SPM's scale factor, its origin, the .mat beside the pair),
values, affine, orientation; saved to NIfTI and reoriented as nibabel does; bad headers get
named errors."""
from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

import voxcore as vc

AFFINE = np.array([[2.0, 0, 0, -10], [0, 3.0, 0, 20], [0, 0, 4.0, 5], [0, 0, 0, 1]])
KINDS = {"analyze": nib.AnalyzeImage, "spm99": nib.Spm99AnalyzeImage, "spm2": nib.Spm2AnalyzeImage}


def _write(tmp_path, kind, dtype=np.int16, order="<"):
    rng = np.random.default_rng(4)
    data = rng.integers(0, 1000, (6, 7, 5)).astype(np.dtype(dtype).newbyteorder(order))
    img = KINDS[kind](data, AFFINE)
    if kind != "analyze":
        img.header["scl_slope"] = 0.25  # SPM's scale factor (funused1)
    path = tmp_path / f"{kind}.hdr"
    img.to_filename(path)
    return path


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("order", ["<", ">"])
def test_an_analyze_pair_reads_as_nibabel(tmp_path, kind, order):
    path = _write(tmp_path, kind, order=order)
    ref = nib.load(path)
    for given in (path, path.with_suffix(".img")):
        img = vc.open(given)
        assert img.shape == ref.shape
        np.testing.assert_allclose(img.affine, ref.affine)
        assert img.orientation == nib.aff2axcodes(ref.affine)
        np.testing.assert_array_equal(img.read(dtype=np.float64), ref.get_fdata())
        np.testing.assert_array_equal(img.read(), np.asarray(ref.dataobj.get_unscaled()))
        assert img.units[:3] == ("millimeter",) * 3
    if kind != "analyze":  # the scale factor and the .mat affine are SPM's
        assert float(ref.dataobj.slope) == 0.25
        assert (tmp_path / f"{kind}.mat").exists()


@pytest.mark.parametrize("kind", list(KINDS))
def test_an_analyze_pair_saves_and_reorients_as_nibabel(tmp_path, kind):
    path = _write(tmp_path, kind)
    ref = nib.load(path)
    img = vc.open(path)
    out = tmp_path / f"{kind}.nii.gz"
    vc.save(img, out)
    back = nib.load(out)
    np.testing.assert_allclose(back.affine, ref.affine)
    np.testing.assert_allclose(back.get_fdata(), ref.get_fdata())
    ras, want = vc.reorient(img, "RAS"), nib.as_closest_canonical(ref)
    np.testing.assert_allclose(ras.affine, want.affine)
    np.testing.assert_array_equal(ras.read(dtype=np.float64), want.get_fdata())


def test_bad_analyze_headers_are_named_errors(tmp_path):
    path = _write(tmp_path, "analyze")
    raw = bytearray(path.read_bytes())
    bad_dim = bytearray(raw)
    bad_dim[40:42] = (9).to_bytes(2, "little")  # dim[0] past 7
    (tmp_path / "dim.hdr").write_bytes(bad_dim)
    (tmp_path / "dim.img").write_bytes((tmp_path / "analyze.img").read_bytes())
    with pytest.raises(vc.InvalidMetadataError, match=r"dim\[0\]"):
        vc.open(tmp_path / "dim.hdr")
    (tmp_path / "short.hdr").write_bytes(raw)
    (tmp_path / "short.img").write_bytes((tmp_path / "analyze.img").read_bytes()[:100])
    with pytest.raises(vc.CorruptDataError, match="truncated"):
        vc.open(tmp_path / "short.hdr")
    (tmp_path / "cut.hdr").write_bytes(raw[:200])
    (tmp_path / "cut.img").write_bytes(b"")
    with pytest.raises(vc.InvalidMetadataError, match="truncated header"):
        vc.open(tmp_path / "cut.hdr")


def test_info_and_affine_sources_of_an_analyze_pair(tmp_path, capsys):
    from voxcore.cli import main

    path = _write(tmp_path, "spm2")
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Analyze 7.5 / SPM" in out and "no sform/qform" in out and "scaling: value * 0.25" in out
    with pytest.raises(vc.InvalidMetadataError, match="Analyze 7.5 header has no sform"):
        vc.open(path, affine_source="sform").affine
