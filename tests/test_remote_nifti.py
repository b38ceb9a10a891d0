"""NIfTI by URL (loopback HTTP server): the header in one small range request, a .nii region by
one range request covering only the outermost-axis span it touches, a .nii.gz fetched once and
then served from the cache; every read equal to nibabel's on the local file, and bad answers
(404, 403, 500s, a server ignoring Range, a truncated object) as named errors or retried."""

import pickle
import warnings

import nibabel as nib
import numpy as np
import pytest
import voxcore as vc
from voxcore.cli import main

pytest.importorskip("aiohttp")
from _http import Faults, Server  # noqa: E402

SHAPE = (40, 30, 20, 3)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(root, data) with v.nii, v.nii.gz, a NIfTI-2 w.nii, a p.hdr/p.img pair, a scaled s.nii.gz,
    a truncated t.nii and a header r.hdr without its image."""
    root = tmp_path_factory.mktemp("nifti_remote")
    a = np.random.default_rng(3).integers(-1000, 1000, SHAPE).astype(np.int16)
    aff = np.array([[0, -2.0, 0, 10], [1.5, 0, 0, -4], [0, 0, 1.0, 2], [0, 0, 0, 1]])
    for name in ("v.nii", "v.nii.gz"):
        nib.save(nib.Nifti1Image(a, aff), str(root / name))
    nib.save(nib.Nifti2Image(a, aff), str(root / "w.nii"))
    nib.save(nib.Nifti1Pair(a, aff), str(root / "p.img"))
    s = nib.Nifti1Image(a, aff)
    s.header.set_slope_inter(0.5, 3.0)
    nib.save(s, str(root / "s.nii.gz"))
    raw = (root / "v.nii").read_bytes()
    (root / "t.nii").write_bytes(raw[:len(raw) - 1000])
    (root / "r.hdr").write_bytes((root / "p.hdr").read_bytes())  # a pair without its .img
    return root, a


def _log(server, name):
    return [r for r in server.log if r[1] == f"/{name}"]


@pytest.mark.parametrize("name", ["v.nii", "v.nii.gz", "w.nii", "p.hdr", "p.img", "s.nii.gz"])
def test_a_url_reads_as_nibabel_reads_the_local_file(served, name):
    root, _ = served
    ref = nib.load(str(root / name))
    with Server(root) as s:
        img = vc.open(f"{s.url}/{name}")
        assert isinstance(img, vc.NiftiImage) and img.shape == SHAPE
        np.testing.assert_allclose(img.affine, ref.affine)
        np.testing.assert_array_equal(img.read(dtype=np.float64), ref.get_fdata())
        np.testing.assert_array_equal(img.read((slice(3, 9), slice(None), 4, slice(1, 3)), dtype=np.float64),
                                      ref.get_fdata()[3:9, :, 4, 1:3])
        again = pickle.loads(pickle.dumps(img))  # travels as its URL
        np.testing.assert_array_equal(again.read((0,)), img.read((0,)))


def test_the_header_is_one_small_range_request_and_a_region_its_span(served):
    root, a = served
    with Server(root) as s:
        img = vc.open(f"{s.url}/v.nii")
        gets = [r for r in _log(s, "v.nii") if r[0] == "GET"]
        # the header comes with the size: a HEAD and one range of the first 128 KiB, asked together
        assert gets == [("GET", "/v.nii", "bytes=0-131071")]
        assert sorted(r[0] for r in _log(s, "v.nii")) == ["GET", "HEAD"]
        s.log.clear()
        got = img.read((slice(None), slice(2, 5), slice(None), 2))
        np.testing.assert_array_equal(got, a[:, 2:5, :, 2])
        plane = 40 * 30 * 20 * 2  # one t volume's bytes: the outermost axis is t
        assert s.log == [("GET", "/v.nii", f"bytes={352 + 2 * plane}-{352 + 3 * plane - 1}")]
        s.log.clear()
        np.testing.assert_array_equal(img.read(), a)
        assert len(s.log) == 1


def test_a_gz_is_fetched_once_then_served_from_the_cache(served):
    root, a = served
    with Server(root) as s:
        img = vc.open(f"{s.url}/v.nii.gz")
        heads = [r for r in _log(s, "v.nii.gz") if r[0] == "GET"]
        assert heads == [("GET", "/v.nii.gz", "bytes=0-131071")]  # with the HEAD, as for a .nii
        s.log.clear()
        np.testing.assert_array_equal(img.read((slice(None), 3)), a[:, 3])
        assert s.log == [("GET", "/v.nii.gz", None)]  # the whole stream, inflated by the core
        np.testing.assert_array_equal(img.read((5,)), a[5])
        np.testing.assert_array_equal(img.read(), a)
        assert len(s.log) == 1 and img.in_memory
        img.uncache()
        np.testing.assert_array_equal(img.read((1,)), a[1])
        assert len(s.log) == 2
        lazy = vc.open(f"{s.url}/v.nii.gz", caching="unchanged")
        s.log.clear()
        np.testing.assert_array_equal(lazy.read((slice(None), slice(None), slice(None), 0)), a[..., 0])
        assert not lazy.in_memory


@pytest.mark.parametrize("name", ["v.nii", "v.nii.gz", "p.hdr"])
def test_a_server_that_ignores_ranges_still_gives_the_right_data(served, name):
    root, a = served
    with Server(root, ranges=False) as s:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", vc.IgnoredRangeWarning)  # checked in test_remote.py
            img = vc.open(f"{s.url}/{name}")
            np.testing.assert_array_equal(img.read((slice(None), slice(None), 7)), a[:, :, 7])
            np.testing.assert_array_equal(img.read(), a)


def test_missing_refused_and_truncated_objects(served):
    root, a = served
    with Server(root, forbidden=("/v.nii",)) as s:
        with pytest.raises(FileNotFoundError, match="nope.nii"):
            vc.open(f"{s.url}/nope.nii")
        with pytest.raises(FileNotFoundError, match="q.hdr"):
            vc.open(f"{s.url}/q.hdr")
        with pytest.raises(FileNotFoundError, match="r.img is missing"):
            vc.open(f"{s.url}/r.hdr")
        with pytest.raises(PermissionError, match="403"):
            vc.open(f"{s.url}/v.nii.gz")
        with pytest.raises(vc.CorruptDataError, match="t.nii"):
            vc.open(f"{s.url}/t.nii")  # the header's data size is more than the object holds


def test_transient_failures_are_retried_and_a_persisting_one_named(served):
    root, a = served
    faults = Faults(only="/v.nii", status500=2, drop=1)
    with Server(root, faults=faults) as s:
        img = vc.open(f"{s.url}/v.nii")
        np.testing.assert_array_equal(img.read(), a)
        assert faults.status500 == 0 and faults.drop == 0
    with Server(root, faults=Faults(only="/v.nii.gz", status500=10**6)) as s:
        with pytest.raises(vc.StoreError, match=r"v\.nii\.gz.*\(2 attempts\)"):
            vc.open(f"{s.url}/v.nii.gz", retries=1)


def test_the_renderer_model_and_the_cli_take_nifti_urls(served, tmp_path, capsys):
    root, a = served
    with Server(root) as s:
        url = f"{s.url}/v.nii.gz"
        dd = vc.DataDefinition()
        arr = dd.append(url, "DXYZT")
        assert arr.shape(0) == (1, 40, 30, 20, 3)
        np.testing.assert_array_equal(dd.fetch(arr, 0, (0, 0, 0, 0, 1), (1, 40, 30, 20, 1))[0, :, :, :, 0].T, a[..., 1])
        assert main(["info", url]) == 0
        out = capsys.readouterr().out
        assert url in out and "gzip" in out and "(0.1 MiB)" in out
        with pytest.warns(UserWarning, match="rotation"):  # (a rotated affine, kept aside)
            assert main(["convert", url, str(tmp_path / "v.ome.zarr"), "--quiet"]) == 0
        np.testing.assert_array_equal(vc.open(tmp_path / "v.ome.zarr").read(), a.T)


def test_a_slide_url_is_a_file_by_name(served):
    """Slide names are single files as NIfTI names are (read in tests/test_remote_slide.py): a
    missing one is FileNotFoundError naming it."""
    root, _ = served
    with Server(root) as s:
        for name in ("slide.svs", "x.ome.tif", "y.TIFF"):
            with pytest.raises(FileNotFoundError, match=name):
                vc.open(f"{s.url}/{name}")


def test_a_gz_header_with_large_extensions_is_fetched_whole(tmp_path):
    """Extensions past what the first range inflates to (incompressible, 200 kB): the header's
    request grows until they are in, and nibabel's reading of them is voxcore's."""
    a = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    img = nib.Nifti1Image(a, np.eye(4))
    blob = np.random.default_rng(1).integers(0, 256, 200_000 - 8, dtype=np.uint8).tobytes()
    img.header.extensions.append(nib.nifti1.Nifti1Extension("comment", blob))
    nib.save(img, str(tmp_path / "e.nii.gz"))
    with Server(tmp_path) as s:
        got = vc.open(f"{s.url}/e.nii.gz")
        np.testing.assert_array_equal(got.read(), a)
        ext = got.header.extensions
        assert len(ext) == 1 and ext[0].get_content() == nib.load(str(tmp_path / "e.nii.gz")).header.extensions[0].get_content()
        ranges = [r[2] for r in s.log if r[0] == "GET" and r[2]]
        assert ranges[0] == "bytes=0-131071" and len(ranges) >= 2  # the first range (with the size) was too short


def test_a_file_shorter_than_its_first_range_is_read_in_the_open(tmp_path):
    a = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    nib.save(nib.Nifti1Image(a, np.eye(4)), str(tmp_path / "s.nii"))
    with Server(tmp_path) as s:
        img = vc.open(f"{s.url}/s.nii")
        opened = len(s.log)
        np.testing.assert_array_equal(img.read(), a)  # (as nibabel reads it: x, y, z)
        np.testing.assert_array_equal(img.read((1,)), a[1])
        assert len(s.log) == opened == 2  # the HEAD and the first range: nothing is asked again
