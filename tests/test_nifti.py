"""NIfTI read through voxcore.open, with nibabel as the oracle.

Generated files cover every datatype nibabel writes, both byte orders, scaling, NIfTI-1 and -2,
.nii / .nii.gz / .hdr+.img (+ .gz), sform/qform combinations and region reads; bad files raise
the named voxcore errors.
"""

import gzip
import os
import shutil

import numpy as np
import pytest
import voxcore as vc

nib = pytest.importorskip("nibabel")

DTYPES = ["u1", "i1", "i2", "u2", "i4", "u4", "i8", "u8", "f4", "f8", "c8", "c16"]
SUFFIXES = [".nii", ".nii.gz", ".img", ".img.gz"]


def volume(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "c":
        return (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(dt)
    if dt.kind == "f":
        return rng.normal(100, 30, size=shape).astype(dt)
    info = np.iinfo(dt)
    return rng.integers(max(info.min, -1000), min(info.max, 1000), size=shape, endpoint=True).astype(dt)


def write(path, data, affine=None, nifti2=False, endian=None, slope_inter=None, units=None,
          sform_code=1, qform_code=1):
    cls = (nib.Nifti2Pair if nifti2 else nib.Nifti1Pair) if str(path).endswith((".img", ".img.gz")) \
        else (nib.Nifti2Image if nifti2 else nib.Nifti1Image)
    hdr = cls.header_class(endianness=endian) if endian else cls.header_class()
    hdr.set_data_dtype(data.dtype)  # nibabel wants int64 asked for explicitly
    img = cls(data, np.diag([2.0, 1.5, 0.8, 1.0]) if affine is None else affine, header=hdr)
    img.set_sform(img.affine, code=sform_code)
    img.set_qform(img.affine, code=qform_code)
    if units:
        img.header.set_xyzt_units(*units)
    if slope_inter:
        img.header.set_slope_inter(*slope_inter)
    nib.save(img, str(path))
    return nib.load(str(path))


def unscaled(ref):
    return np.asanyarray(ref.dataobj.get_unscaled())


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_datatype_and_kind_matches_nibabel(tmp_path, dtype, suffix):
    a = volume((17, 12, 9), dtype)
    path = tmp_path / f"v{suffix}"
    ref = write(path, a)
    img = vc.open(path)
    assert img.shape == ref.shape and img.dims == ("x", "y", "z")
    got = img.read()
    want = unscaled(ref)
    assert got.dtype == want.dtype.newbyteorder("=")
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(img[2:9, ::-3, 4], want[2:9, ::-3, 4])
    np.testing.assert_allclose(img.affine, ref.affine)
    assert img.scale == tuple(float(z) for z in ref.header.get_zooms())


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
@pytest.mark.parametrize("nifti2", [False, True])
@pytest.mark.parametrize("endian", ["<", ">"])
def test_byte_order_nifti2_and_scaling(tmp_path, suffix, nifti2, endian):
    a = volume((20, 11, 7, 3), "i2", seed=1)
    path = tmp_path / f"s{suffix}"
    ref = write(path, a, nifti2=nifti2, endian=endian, slope_inter=(0.5, -20.0), units=("mm", "msec"))
    img = vc.open(path)
    raw = img.read()
    assert raw.dtype.isnative
    np.testing.assert_array_equal(raw, unscaled(ref))
    for dt in (np.float32, np.float64):
        scaled = img.read(dtype=dt)
        assert scaled.dtype == dt
        np.testing.assert_allclose(scaled, ref.get_fdata(), rtol=1e-6 if dt == np.float32 else 1e-12)
    np.testing.assert_allclose(img.read((slice(1, 5), 3), dtype=np.float64), ref.get_fdata()[1:5, 3])
    assert img.dims == ("x", "y", "z", "t")
    assert img.units == ("millimeter", "millimeter", "millimeter", "millisecond")
    assert img.slope_inter == (float(ref.dataobj.slope), float(ref.dataobj.inter))


def test_rgb_and_4d_regions(tmp_path):
    rgb = np.zeros((6, 5, 4), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    rgb["R"] = np.arange(120).reshape(6, 5, 4)
    rgb["B"] = 7
    path = tmp_path / "rgb.nii"
    ref = write(path, rgb)
    got = vc.open(path).read()
    assert got.dtype == unscaled(ref).dtype
    np.testing.assert_array_equal(got["R"], unscaled(ref)["R"])
    np.testing.assert_array_equal(vc.open(path)[1:3]["B"], unscaled(ref)[1:3]["B"])

    a = volume((9, 8, 7, 5), "f4", seed=2)
    path = tmp_path / "four.nii"
    ref = write(path, a)
    want = unscaled(ref)
    for region in [(..., 2), (slice(None), slice(None), slice(None), slice(4, 0, -2)), (0, 0, 0, 0),
                   (slice(2, 2),), (..., slice(1, 1)), {"t": 3, "x": slice(2, 5)}, (np.array([0, 3]),),
                   (slice(None), None)]:
        idx = region if not isinstance(region, dict) else (slice(2, 5), slice(None), slice(None), 3)
        got = vc.open(path).read(region)  # fresh handle: pread of the touched t range only
        assert got.shape == want[idx].shape, region
        np.testing.assert_array_equal(got, want[idx])


def test_affine_sources_and_orientation(tmp_path):
    aff = np.array([[-2.0, 0, 0, 90], [0, 0, 1.5, -120], [0, 1.2, 0, -60], [0, 0, 0, 1]])
    path = tmp_path / "o.nii.gz"
    ref = write(path, volume((10, 9, 8), "u2"), affine=aff, qform_code=0)
    img = vc.open(path)
    np.testing.assert_allclose(img.affine, ref.affine)
    assert img.orientation == tuple(nib.aff2axcodes(ref.affine)) == ("L", "S", "A")
    assert img.translation == (90.0, -120.0, -60.0)
    np.testing.assert_allclose(vc.open(path, affine_source="sform").affine, aff)
    with pytest.raises(vc.InvalidMetadataError, match="qform is not set"):
        _ = vc.open(path, affine_source="qform").affine
    np.testing.assert_allclose(vc.open(path, affine_source="fallback").affine, ref.header.get_base_affine())
    with pytest.raises(vc.InvalidArgumentError, match="affine_source"):
        vc.open(path, affine_source="best-guess")


def test_caching_fill_unchanged_and_uncache(tmp_path):
    a = volume((30, 20, 10), "u2", seed=3)
    path = tmp_path / "c.nii.gz"
    write(path, a)
    img = vc.open(path)
    first = img.read()
    assert not first.flags.writeable  # a view of the kept buffer
    os.remove(path)  # the cache serves later reads
    np.testing.assert_array_equal(img.read((slice(0, 4),)), a[:4])
    img.uncache()
    with pytest.raises(FileNotFoundError):
        img.read()
    write(path, a)
    img = vc.open(path, caching="unchanged")
    assert img.read().flags.writeable
    os.remove(path)
    with pytest.raises(FileNotFoundError):
        img.read()
    write(path, a)
    with pytest.raises(vc.InvalidArgumentError, match="caching"):
        vc.open(path, caching="keep")


def test_multi_member_gzip_and_python_gzip_agree(tmp_path):
    a = volume((40, 30, 20), "i2", seed=4)
    plain = tmp_path / "m.nii"
    write(plain, a)
    raw = plain.read_bytes()
    cut = len(raw) // 3
    multi = tmp_path / "m.nii.gz"
    multi.write_bytes(gzip.compress(raw[:cut], 1) + gzip.compress(raw[cut:], 6))
    np.testing.assert_array_equal(vc.open(multi).read(), a)
    np.testing.assert_array_equal(np.asanyarray(nib.load(str(multi)).dataobj), a)


def test_bad_files(tmp_path):
    a = volume((16, 16, 16), "f4", seed=5)
    good = tmp_path / "g.nii"
    write(good, a)
    raw = good.read_bytes()

    short = tmp_path / "short.nii"
    short.write_bytes(raw[:-100])
    with pytest.raises(vc.CorruptDataError, match="truncated"):
        vc.open(short).read()
    shortgz = tmp_path / "short.nii.gz"
    shortgz.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(vc.CorruptDataError, match="truncated"):
        vc.open(shortgz).read()
    broken = tmp_path / "broken.nii.gz"
    packed = bytearray(gzip.compress(raw, mtime=0))
    packed[len(packed) * 3 // 4] ^= 0xFF
    broken.write_bytes(bytes(packed))
    # nibabel may already fail to inflate the header's block at open; else the inflate of
    # the data (checked against the gzip CRC) fails at read
    with pytest.raises((vc.CorruptDataError, vc.InvalidMetadataError)):
        vc.open(broken).read()
    junk = tmp_path / "junk.nii"
    junk.write_bytes(b"\0" * 400)
    with pytest.raises(vc.InvalidMetadataError):
        vc.open(junk)
    tiny = tmp_path / "tiny.nii"
    tiny.write_bytes(raw[:100])
    with pytest.raises(vc.InvalidMetadataError):
        vc.open(tiny)
    with pytest.raises(FileNotFoundError):
        vc.open(tmp_path / "missing.nii")
    copy = tmp_path / "x.nii"
    shutil.copy(good, copy)
    with pytest.raises(vc.InvalidArgumentError, match="float dtype"):
        vc.open(copy).read(dtype=np.int16)


def random_affine(rng, zooms=(2.0, 1.5, 0.8)):
    """A voxel -> world affine with a random axis permutation and random flips."""
    perm = rng.permutation(3)
    aff = np.eye(4)
    aff[:3, :3] = 0
    for i, p in enumerate(perm):
        aff[p, i] = zooms[i] * (1 if rng.random() < 0.5 else -1)
    aff[:3, 3] = rng.normal(0, 50, 3)
    return aff


@pytest.mark.parametrize("seed", range(8))
def test_reorient_matches_nibabel(tmp_path, seed):
    rng = np.random.default_rng(seed)
    shape = [(7, 8, 9), (7, 8, 9, 3), (30, 1, 17)][seed % 3]
    a = volume(shape, ["i2", "f4", "u1"][seed % 3], seed=seed)
    aff = random_affine(rng)
    path = tmp_path / "r.nii.gz"
    write(path, a, affine=aff, slope_inter=(2.0, 1.0) if seed % 3 == 0 else None)
    ref_img = nib.load(str(path))
    canon = nib.as_closest_canonical(ref_img)
    got = vc.open(path).as_closest_canonical()
    o = nib.orientations
    stored = o.apply_orientation(unscaled(ref_img), o.io_orientation(ref_img.affine))
    assert got.read().dtype == stored.dtype
    np.testing.assert_array_equal(got.read(), stored)  # stored values, moved exactly
    np.testing.assert_allclose(got.affine, canon.affine)
    np.testing.assert_allclose(got.read(dtype=np.float64), canon.get_fdata())
    assert got.orientation == ("R", "A", "S")
    for target in ("LPS", "SAR", "IPL"):
        ornt = o.ornt_transform(o.io_orientation(aff), o.axcodes2ornt(tuple(target)))
        want = ref_img.as_reoriented(ornt)
        r = vc.reorient(vc.open(path), target)
        np.testing.assert_allclose(r.read(dtype=np.float64), want.get_fdata())
        np.testing.assert_allclose(r.affine, want.affine)
        assert "".join(r.orientation) == target
        assert r.shape == want.shape


@pytest.mark.parametrize("seed", range(6))
def test_reorient_2d_as_nibabel_reorients_its_volume(tmp_path, seed):
    """A 2-D image is the volume (x, y, 1): reoriented as nibabel reorients that volume, 2-D
    again when the plane keeps the target's first two axes; nibabel's own answer where it has
    one (already in the target orientation: the image unchanged)."""
    rng = np.random.default_rng(100 + seed)
    a = volume((7, 5), ["i2", "f4", "u1"][seed % 3], seed=seed)
    aff = random_affine(rng)
    path = tmp_path / "p.nii"
    write(path, a, affine=aff)
    ref = nib.load(str(path))
    assert ref.shape == (7, 5)
    vol = nib.Nifti1Image(np.asanyarray(ref.dataobj)[..., None], ref.affine, header=ref.header)
    o = nib.orientations
    for target in ("RAS", "LPS", "SAR", "".join(nib.aff2axcodes(aff))):
        ornt = o.ornt_transform(o.io_orientation(aff), o.axcodes2ornt(tuple(target)))
        want = vol.as_reoriented(ornt)
        got = vc.reorient(vc.open(path), target)
        keeps_plane = int(np.argsort(ornt[:, 0])[2]) == 2
        want_data = np.asanyarray(want.dataobj)
        if keeps_plane:
            want_data = want_data[..., 0]
        assert got.shape == want_data.shape
        np.testing.assert_array_equal(got.read(), want_data)
        np.testing.assert_allclose(got.affine, want.affine)
        assert "".join(got.orientation) == target
        if target == "".join(nib.aff2axcodes(aff)):  # nibabel reorients a 2-D image only here
            same = ref.as_reoriented(ornt)
            np.testing.assert_array_equal(got.read(), np.asanyarray(same.dataobj))
            np.testing.assert_allclose(got.affine, same.affine)
        saved = tmp_path / f"o{target}.nii"
        vc.save(got, saved)
        np.testing.assert_array_equal(np.asanyarray(nib.load(str(saved)).dataobj), want_data)
    with pytest.raises(vc.InvalidArgumentError, match="2 or 3 spatial axes"):
        one = tmp_path / "line.nii"
        write(one, np.arange(5, dtype="i2"), affine=np.eye(4))
        vc.reorient(vc.open(one), "RAS")


def test_reorient_rgb_and_bad_targets(tmp_path):
    rgb = np.zeros((4, 3, 2), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    rgb["G"] = np.arange(24).reshape(4, 3, 2)
    path = tmp_path / "rgb.nii"
    aff = np.array([[0, 0, -1.0, 0], [1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 0, 1]])
    write(path, rgb, affine=aff)
    canon = nib.as_closest_canonical(nib.load(str(path)))
    got = vc.open(path).as_closest_canonical()
    np.testing.assert_array_equal(got.read()["G"], np.asanyarray(canon.dataobj)["G"])
    img = vc.open(path)
    for bad in ("RA", "RRS", "XYZ", "RASX", "LRS"):
        with pytest.raises(vc.InvalidArgumentError, match="target"):
            vc.reorient(img, bad)
    with pytest.raises(vc.InvalidArgumentError, match="NIfTI image"):
        vc.reorient(np.zeros((2, 2, 2)), "RAS")


@pytest.mark.parametrize("dtype", ["u1", "i2", "u2", "i4", "u4", "i8", "f4", "f8"])
@pytest.mark.parametrize("out", [np.float32, np.float64])
def test_reorient_scales_in_the_same_pass(tmp_path, dtype, out):
    """reorient(dtype=) gives bit-for-bit the values of read(dtype=) reoriented (astype, *=,
    += in the output dtype), and a result with no scaling left."""
    rng = np.random.default_rng(3)
    a = volume((9, 11, 13, 2), dtype, seed=4)
    path = tmp_path / "s.nii"
    write(path, a, affine=random_affine(rng), slope_inter=(0.37, -12.5))
    img = vc.open(path)
    plain = vc.reorient(img, "LPS")
    slope, inter = img.slope_inter  # the header's float32 values
    want = plain.read().astype(out)
    want *= out(slope)
    want += out(inter)
    got = vc.reorient(img, "LPS", dtype=out)
    assert got.read().dtype == out
    assert got.read().tobytes() == want.tobytes()
    assert got.slope_inter == (None, None)
    np.testing.assert_allclose(got.affine, plain.affine)
    ref = nib.load(str(path))
    ornt = nib.orientations.ornt_transform(nib.orientations.io_orientation(ref.affine),
                                           nib.orientations.axcodes2ornt(tuple("LPS")))
    np.testing.assert_allclose(got.read(), ref.as_reoriented(ornt).get_fdata(), rtol=1e-6, atol=1e-4)
    saved = vc.save(got, tmp_path / "s2.nii.gz")  # the result is a valid image to write
    np.testing.assert_array_equal(np.asanyarray(nib.load(saved).dataobj), got.read())


def test_reorient_bad_dtype_and_device(tmp_path):
    path = tmp_path / "b.nii"
    write(path, volume((4, 5, 6), "i2"))
    rgb_path = tmp_path / "rgb.nii"
    write(rgb_path, np.zeros((2, 2, 2), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")]))
    img = vc.open(path)
    for bad in (np.int32, np.uint8, np.complex64):
        with pytest.raises(vc.InvalidArgumentError, match="float32 or float64"):
            vc.reorient(img, "RAS", dtype=bad)
    with pytest.raises(vc.InvalidArgumentError, match="device"):
        vc.reorient(img, "RAS", device="gpu")
    with pytest.raises(vc.InvalidArgumentError, match="integer or float"):
        vc.reorient(vc.open(rgb_path), "RAS", dtype=np.float32)


@pytest.mark.gpu
@pytest.mark.parametrize("out", [None, np.float32])
def test_reorient_on_the_device_matches_the_host(tmp_path, out):
    cp = pytest.importorskip("cupy")
    try:
        if cp.cuda.runtime.getDeviceCount() < 1 or not vc._core.cuda_is_available():
            pytest.skip("no CUDA device")
    except cp.cuda.runtime.CUDARuntimeError:
        pytest.skip("no CUDA device")
    rng = np.random.default_rng(5)
    path = tmp_path / "d.nii.gz"
    write(path, volume((33, 20, 17, 2), "i2"), affine=random_affine(rng), slope_inter=(2.0, 1.0))
    img = vc.open(path)
    host = vc.reorient(img, "LPI", dtype=out)
    dev = vc.reorient(img, "LPI", dtype=out, device="cuda")
    assert isinstance(dev.data, cp.ndarray)
    assert dev.shape == host.shape
    np.testing.assert_array_equal(cp.asnumpy(dev.data), host.data)
    np.testing.assert_allclose(dev.affine, host.affine)


# ---- write ----------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
@pytest.mark.parametrize("dtype", ["u1", "i2", "u2", "i4", "f4", "f8", "i8"])
def test_write_round_trips_through_nibabel(tmp_path, suffix, dtype):
    a = volume((33, 20, 7), dtype, seed=6)
    src = tmp_path / f"src{suffix}"
    ref = write(src, a, affine=random_affine(np.random.default_rng(1)), units=("mm", "sec"),
                slope_inter=(0.25, 10.0) if dtype == "i2" else None)
    out = tmp_path / f"out{suffix}"
    assert vc.save(vc.open(src), out) == str(out)
    back = nib.load(str(out))
    np.testing.assert_array_equal(np.asanyarray(back.dataobj.get_unscaled()), unscaled(ref))
    np.testing.assert_allclose(back.get_fdata(), ref.get_fdata())
    np.testing.assert_allclose(back.affine, ref.affine)
    np.testing.assert_allclose(back.header.get_sform(), ref.affine)
    np.testing.assert_allclose(back.header.get_qform(), ref.affine, atol=1e-6)  # rigid: identical
    assert back.header.get_xyzt_units() == ("mm", "sec")
    np.testing.assert_array_equal(vc.open(out).read(), unscaled(ref))
    with pytest.raises(FileExistsError):
        vc.save(vc.open(src), out)


def test_write_gzip_is_valid_for_python_and_nifti2_when_large(tmp_path):
    a = volume((40000, 2, 1), "i2", seed=7)  # a dimension past 32767: NIfTI-2
    out = tmp_path / "big.nii.gz"
    vc.save(vc.open(write(tmp_path / "s.nii", a.reshape(40000, 2, 1), nifti2=True).get_filename()), out)
    back = nib.load(str(out))
    assert isinstance(back, nib.Nifti2Image)
    np.testing.assert_array_equal(np.asanyarray(back.dataobj), a)
    raw = gzip.decompress(out.read_bytes())  # the members concatenate to one valid stream
    assert len(raw) == int(back.dataobj.offset) + a.nbytes
    big = tmp_path / "be.nii.gz"
    write(big, volume((9, 8, 7), "f4"), endian=">")
    vc.save(vc.open(big), tmp_path / "le.nii")
    assert nib.load(str(tmp_path / "le.nii")).header.endianness == "<"
    np.testing.assert_array_equal(nib.load(str(tmp_path / "le.nii")).get_fdata(), nib.load(str(big)).get_fdata())


def test_ome_to_nifti_and_back(tmp_path):
    zyx = volume((7, 8, 9), "u2", seed=8)
    img = vc.from_array(zyx, dims=("z", "y", "x"), scale=(3.0, 2.0, 0.5), translation=(30.0, 20.0, 10.0),
                        units=("millimeter",) * 3)
    vc.save(img, tmp_path / "a.nii.gz")
    back = nib.load(str(tmp_path / "a.nii.gz"))
    assert back.shape == (9, 8, 7)  # x, y, z
    np.testing.assert_array_equal(np.asanyarray(back.dataobj), zyx.T)
    np.testing.assert_allclose(back.affine, [[0.5, 0, 0, 10], [0, 2, 0, 20], [0, 0, 3, 30], [0, 0, 0, 1]])
    assert back.header.get_xyzt_units()[0] == "mm"
    # and back to OME: dims reversed, scale/translation/units mapped, no copy of the data
    ome = vc.from_array(vc.open(tmp_path / "a.nii.gz"))
    assert ome.dims == ("z", "y", "x") and ome.scale == (3.0, 2.0, 0.5)
    assert ome.translation == (30.0, 20.0, 10.0) and ome.units == ("millimeter",) * 3
    np.testing.assert_array_equal(ome.data, zyx)
    with pytest.raises(vc.InvalidArgumentError, match="channel"):
        vc.save(vc.from_array(np.zeros((2, 3, 4, 5), np.uint8)), tmp_path / "c.nii")


def test_rotated_nifti_to_ome_warns_and_keeps_the_affine(tmp_path):
    a = volume((6, 5, 4), "i2", seed=9)
    aff = np.array([[0, 0, -1.0, 5], [1.0, 0, 0, 6], [0, 1.0, 0, 7], [0, 0, 0, 1]])
    write(tmp_path / "r.nii", a, affine=aff)
    with pytest.warns(UserWarning, match="cannot be stored in OME-Zarr"):
        vc.save(vc.open(tmp_path / "r.nii"), tmp_path / "r.ome.zarr")
    import json

    attrs = json.loads((tmp_path / "r.ome.zarr" / "zarr.json").read_text())["attributes"]
    np.testing.assert_allclose(attrs["voxcore"]["nifti_affine"], aff)
    with pytest.warns(UserWarning):
        ome = vc.from_array(vc.open(tmp_path / "r.nii"))
    vc.save(ome, tmp_path / "again.nii")  # the kept affine comes back
    np.testing.assert_allclose(nib.load(str(tmp_path / "again.nii")).affine, aff)


def test_spatial_model_is_shared_by_formats(tmp_path):
    a = volume((6, 5, 4), "u2", seed=10)
    aff = np.diag([2.0, 3.0, 4.0, 1.0])
    aff[:3, 3] = (10, 20, 30)
    write(tmp_path / "s.nii", a, affine=aff, units=("mm", "sec"))
    nii = vc.open(tmp_path / "s.nii")
    vc.save(nii, tmp_path / "s.ome.zarr")
    ome = vc.open(tmp_path / "s.ome.zarr")
    assert nii.dims == ("x", "y", "z") and ome.dims == ("z", "y", "x")
    assert ome.scale == tuple(reversed(nii.scale)) == (4.0, 3.0, 2.0)
    assert ome.translation == tuple(reversed(nii.translation)) == (30.0, 20.0, 10.0)
    assert ome.units == ("millimeter",) * 3
    np.testing.assert_allclose(ome.affine, nii.affine)
    assert ome.orientation == nii.orientation == ("R", "A", "S")
    plain = vc.from_array(a.T.copy(), scale=(4.0, 3.0, 2.0), translation=(30.0, 20.0, 10.0))
    vc.save(plain, tmp_path / "p.ome.zarr")
    np.testing.assert_allclose(vc.open(tmp_path / "p.ome.zarr").affine, aff)
    assert vc.open(tmp_path / "p.ome.zarr").orientation is None
