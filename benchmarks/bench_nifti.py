"""NIfTI: loading a .nii.gz into numpy, and reorienting an image to RAS, against nibabel and numpy.

Load (op "nifti-load"): the benchmark volume (512^3 uint16, VOXCORE_BENCH_SIZE changes the edge)
written once by nibabel as a .nii.gz (identity affine, nibabel's default gzip level), page cache
warm. Each round opens the file afresh and reads the whole array, so each round really inflates:
voxcore ``vc.open(p).read()`` (nibabel parses the header; voxcore reads the file and inflates it
with libdeflate in one pass into a new buffer) against nibabel
``np.asanyarray(nib.load(p).dataobj)`` through indexed_gzip (what nibabel uses whenever
indexed_gzip is installed) and through its stdlib gzip fallback. The row labels say which
reader nibabel used; the test checks it.
``floor:`` rows have the file's bytes in RAM already and only decode: libdeflate's one-shot gzip
decoder into a preallocated buffer (the libdeflate bundled in the ``deflate`` package, and the
shared libdeflate voxcore's _core links, both called through ctypes), ``deflate.gzip_decompress``
(a new bytearray each call) and ``zlib.decompress``; one more floor adds what voxcore does besides
decoding (read the file, decode into a new buffer), without the header parse.

Reorientation (op "reorient"): a .nii of the same volume whose affine needs the axes transposed
(2, 1, 0) and one axis flipped to reach RAS, read into memory outside the timing. voxcore
``vc.reorient(img, "RAS")`` against numpy materialising the same transposed+flipped view in the
same memory order as voxcore's result (x fastest, Fortran order, like nibabel's arrays:
``np.ascontiguousarray(view.T).T``), nibabel ``as_closest_canonical`` + ``np.asfortranarray`` of
its data (a strided view until materialised), and memcpy floors (into a preallocated array, and
into a new one, which pays the page faults every row above pays). Every result is checked against
nibabel's reoriented array, and voxcore's affine against nibabel's.

Why: issue targets of a .nii.gz load >= 1.4x faster than nibabel with indexed_gzip and within
1.15x of the libdeflate decode floor, and a reorientation >= 25x faster than numpy; report.py
checks them (NIfTI targets) and benchmarks/RESULTS.md has a run.
"""
from __future__ import annotations

import ctypes
import zlib
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import voxcore as vc
from bench_zarr import assert_equal, run

RUN_ORDER = (("test_load_gz", "test_floor_gunzip"),
             ("test_reorient", "test_reorient_peers", "test_floor_reorient"),
             ("test_reorient_scaled", "test_reorient_scaled_peers"),
             ("test_write_gz", "test_write_gz_nibabel", "test_floor_write_gz"))
# Rounds: fresh 256 MiB allocations page-fault and, on the reference VM, now and then stall for
# a few tenths of a second, so the sub-second rows take enough rounds for a steady median.
LOAD_ROUNDS, REORIENT_ROUNDS, SLOW_ROUNDS = 9, 15, 3  # SLOW: rows over a second per round
# Voxel axes (i, j, k) point to (S, P, R): RAS needs the axes in order (2, 1, 0) and j flipped.
REORIENT_AFFINE = np.array([[0.0, 0, 1, 0], [0, -1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]])


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="session")
def nii_gz(volume, workdir) -> Path:
    """The volume as a .nii.gz written by nibabel, once per session."""
    import nibabel as nib

    path = workdir / "nifti" / "vol.nii.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.Nifti1Image(volume, np.eye(4)).to_filename(path)
    return path


@pytest.fixture(scope="session")
def gz_bytes(nii_gz) -> bytes:
    return nii_gz.read_bytes()


def stored_array(buf, nii_gz: Path, shape) -> np.ndarray:
    """The voxels of a decoded single-file .nii buffer (header included) as nibabel's array."""
    import nibabel as nib

    offset = int(nib.load(nii_gz).dataobj.offset)
    raw = np.frombuffer(buf, np.uint8)[offset:]
    return raw.view("<u2").reshape(shape, order="F")


@pytest.fixture(scope="session")
def reoriented(volume, workdir):
    """(voxcore image with its array read, nibabel in-memory image, RAS array, RAS affine): the
    reoriented array and affine are nibabel's as_closest_canonical, the oracle for every row."""
    import nibabel as nib
    from nibabel import orientations as no

    assert nib.aff2axcodes(REORIENT_AFFINE) == ("S", "P", "R")
    ornt = no.ornt_transform(no.io_orientation(REORIENT_AFFINE), no.axcodes2ornt("RAS"))
    assert list(np.argsort(ornt[:, 0])) == [2, 1, 0] and int((ornt[:, 1] == -1).sum()) == 1, ornt
    path = workdir / "nifti" / "spr.nii"
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.Nifti1Image(volume, REORIENT_AFFINE).to_filename(path)

    img = vc.open(str(path))  # caching="fill": read() keeps the array, reorient starts from RAM
    assert_equal(img.read(), volume, "voxcore read of the .nii")
    on_disk = nib.load(path, mmap=False)
    nimg = nib.Nifti1Image(np.asanyarray(on_disk.dataobj), on_disk.affine, on_disk.header)
    canon = nib.as_closest_canonical(nimg)
    want = np.asfortranarray(canon.dataobj)
    want.setflags(write=False)
    return img, nimg, want, canon.affine


def transposed_flipped(src: np.ndarray) -> np.ndarray:
    """The RAS view of the (S, P, R) array: j flipped, then the axes in order (2, 1, 0)."""
    return src[:, ::-1, :].transpose(2, 1, 0)


# ------------------------------------------------------------------------------ .nii.gz load
def nibabel_gzip_reader(path: str, igz: bool) -> str:
    """The class nibabel reads path's gzip stream with, with indexed_gzip on or off."""
    from nibabel.openers import ImageOpener

    with mock.patch("nibabel._compression.HAVE_INDEXED_GZIP", igz), ImageOpener(path) as f:
        return type(f.fobj).__name__


def nibabel_load(path: str, igz: bool) -> np.ndarray:
    import nibabel as nib

    with mock.patch("nibabel._compression.HAVE_INDEXED_GZIP", igz):
        return np.asanyarray(nib.load(path).dataobj)


def voxcore_load(path: str, igz_header: bool | None = None) -> np.ndarray:
    if igz_header is None:
        return vc.open(path).read()
    with mock.patch("nibabel._compression.HAVE_INDEXED_GZIP", igz_header):
        img = vc.open(path)
    return img.read()


LOADERS = {
    "voxcore": lambda p: voxcore_load(p),
    # voxcore asks nibabel for the header, and nibabel's indexed_gzip reader costs there too:
    "voxcore, header parsed by nibabel with stdlib gzip": lambda p: voxcore_load(p, False),
    "nibabel (indexed_gzip)": lambda p: nibabel_load(p, True),
    "nibabel (stdlib gzip)": lambda p: nibabel_load(p, False),
}


@pytest.mark.parametrize("peer", list(LOADERS),
                         ids=["voxcore", "voxcore-stdlib-header", "nibabel-indexed_gzip",
                              "nibabel-stdlib_gzip"])
def test_load_gz(benchmark, peer, nii_gz, volume, size):
    path = str(nii_gz)
    nib_peer = peer.startswith("nibabel")
    if "indexed_gzip" in peer:
        pytest.importorskip("indexed_gzip")
    if nib_peer:
        igz = "indexed_gzip" in peer
        reader = nibabel_gzip_reader(path, igz)
        assert reader == ("IndexedGzipFile" if igz else "DeterministicGzipFile"), reader
    out = run(benchmark, lambda: LOADERS[peer](path), op="nifti-load", case=None, size=size,
              peer=peer, nbytes=volume.nbytes, quiet=nib_peer,
              rounds=SLOW_ROUNDS if "stdlib gzip)" in peer else LOAD_ROUNDS,
              gz_MiB=round(nii_gz.stat().st_size / 2**20, 2))
    assert_equal(out, volume, f"{peer} load of {nii_gz.name}")


class Libdeflate:
    """libdeflate's one-shot gzip decoder through ctypes (which releases the GIL), writing into a
    caller's buffer: what the deflate package's API cannot do (it returns a new bytearray)."""

    def __init__(self, path: str):
        lib = ctypes.CDLL(path)
        lib.libdeflate_alloc_decompressor.restype = ctypes.c_void_p
        lib.libdeflate_free_decompressor.argtypes = [ctypes.c_void_p]
        lib.libdeflate_gzip_decompress.restype = ctypes.c_int
        lib.libdeflate_gzip_decompress.argtypes = [
            ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t,
            ctypes.POINTER(ctypes.c_size_t)]
        self.path = path
        self._lib = lib
        self._dec = lib.libdeflate_alloc_decompressor()
        self._got = ctypes.c_size_t()
        assert self._dec, f"libdeflate_alloc_decompressor failed ({path})"

    def gunzip_into(self, data: bytes, out: np.ndarray) -> int:
        r = self._lib.libdeflate_gzip_decompress(self._dec, data, len(data), out.ctypes.data,
                                                 out.nbytes, ctypes.byref(self._got))
        assert r == 0, f"libdeflate_gzip_decompress returned {r} ({self.path})"
        return self._got.value

    def close(self):
        self._lib.libdeflate_free_decompressor(self._dec)


def deflate_package_lib() -> str:
    """The deflate package's extension, which carries its own libdeflate's symbols."""
    deflate = pytest.importorskip("deflate")
    return deflate._deflate.__file__


def voxcore_libdeflate() -> str:
    """The shared libdeflate voxcore's _core has loaded (from /proc/self/maps)."""
    for line in Path("/proc/self/maps").read_text().splitlines():
        path = line.split()[-1]
        if Path(path).name.startswith("libdeflate.so"):
            return path
    pytest.skip("could not import a shared libdeflate: voxcore's _core has none loaded")


FLOORS = ["libdeflate (deflate package) into a preallocated buffer",
          "libdeflate (voxcore's) into a preallocated buffer",
          "read the file + libdeflate (voxcore's) into a new buffer",
          "deflate.gzip_decompress (new bytearray)",
          f"zlib.decompress (zlib {zlib.ZLIB_RUNTIME_VERSION})"]


@pytest.mark.parametrize("floor", FLOORS, ids=["libdeflate-pkg-prealloc", "libdeflate-vc-prealloc",
                                                "read+libdeflate-vc-new", "deflate-pkg",
                                                "zlib"])
def test_floor_gunzip(benchmark, floor, nii_gz, gz_bytes, volume, size):
    """Decode only: the .nii.gz bytes are in RAM (except in the read-the-file row)."""
    n_out = int.from_bytes(gz_bytes[-4:], "little")  # gzip ISIZE (the .nii is < 4 GiB)
    lib = None
    if floor.startswith(("libdeflate", "read")):
        lib = Libdeflate(deflate_package_lib() if "package" in floor else voxcore_libdeflate())
    if "preallocated" in floor:
        buf = np.empty(n_out, np.uint8)
        buf.fill(0)  # pages touched outside the timing

        def fn():
            lib.gunzip_into(gz_bytes, buf)
            return buf
    elif floor.startswith("read"):
        def fn():
            out = np.empty(n_out, np.uint8)
            lib.gunzip_into(nii_gz.read_bytes(), out)
            return out
    elif floor.startswith("deflate"):
        deflate = pytest.importorskip("deflate")

        def fn():
            return deflate.gzip_decompress(gz_bytes)
    else:
        def fn():
            return zlib.decompress(gz_bytes, 31)
    try:
        out = run(benchmark, fn, op="nifti-load", case=None, size=size, peer=f"floor: {floor}",
                  nbytes=volume.nbytes, rounds=SLOW_ROUNDS if "zlib" in floor else LOAD_ROUNDS,
                  library=lib.path if lib else None)
    finally:
        if lib is not None:
            lib.close()
    assert len(out) == n_out
    assert_equal(stored_array(out, nii_gz, volume.shape), volume, f"floor {floor}")


# ------------------------------------------------------------------------------ reorientation
def test_reorient(benchmark, reoriented, size):
    """voxcore's reorient (one threaded permute+flip pass into a new x-fastest array)."""
    img, _, want, want_affine = reoriented
    r = run(benchmark, lambda: vc.reorient(img, "RAS"), op="reorient", case=None, size=size,
            peer="voxcore", nbytes=want.nbytes, rounds=REORIENT_ROUNDS)
    assert r.data.flags.f_contiguous, "voxcore's reoriented array is not x-fastest"
    assert_equal(r.read(), want, "voxcore reorient")
    assert tuple(r.orientation) == ("R", "A", "S")
    np.testing.assert_allclose(r.affine, want_affine, rtol=0, atol=1e-9)


def _numpy_same_order(img, nimg):
    view = transposed_flipped(img.read())
    return lambda: np.ascontiguousarray(view.T).T  # C-contiguous .T: x fastest, like voxcore


def _nibabel_canonical(img, nimg):
    import nibabel as nib
    return lambda: np.asfortranarray(np.asanyarray(nib.as_closest_canonical(nimg).dataobj))


REORIENTERS = {
    "numpy ascontiguousarray of the transposed+flipped view, x fastest like voxcore":
        _numpy_same_order,
    "nibabel as_closest_canonical + np.asfortranarray (x fastest)": _nibabel_canonical,
}


@pytest.mark.parametrize("peer", list(REORIENTERS), ids=["numpy", "nibabel"])
def test_reorient_peers(benchmark, peer, reoriented, size):
    img, nimg, want, _ = reoriented
    fn = REORIENTERS[peer](img, nimg)
    out = run(benchmark, fn, op="reorient", case=None, size=size, peer=peer, nbytes=want.nbytes,
              quiet=True, rounds=SLOW_ROUNDS)
    assert out.flags.f_contiguous
    assert_equal(out, want, peer)


@pytest.mark.parametrize("into", [True, False], ids=["preallocated", "new"])
def test_floor_reorient(benchmark, into, reoriented, size):
    """memcpy of the same bytes: into a preallocated array, and into a new one (as every row
    above returns a new array, this one pays the same page faults)."""
    img, _, want, _ = reoriented
    src = img.read()
    if into:
        dst = np.empty_like(src)  # same (Fortran) order as src: a plain memcpy
        dst.fill(0)
        fn, label = (lambda: np.copyto(dst, src)), "np.copyto into a preallocated array"
    else:
        fn, label = (lambda: src.copy(order="K")), "src.copy(order=\"K\") into a new array"
    out = run(benchmark, fn, op="reorient", case=None, size=size, peer=f"floor: {label} (memcpy)",
              nbytes=want.nbytes, rounds=REORIENT_ROUNDS)
    assert_equal(dst if into else out, src, "memcpy floor")


# ------------------------------------------------------------------------------ reorient + scale
# The same move into float32 values (op "reorient-f32"): voxcore converts and scales in the
# permute pass; numpy and nibabel move, then convert. scl_slope 0.5 / scl_inter 10 are set on
# the in-memory image so every row really scales.
SCALE = (0.5, 10.0)


def _scaled_want(want: np.ndarray) -> np.ndarray:
    out = want.astype(np.float32, order="F")
    out *= np.float32(SCALE[0])
    out += np.float32(SCALE[1])
    return out


def test_reorient_scaled(benchmark, reoriented, size):
    """voxcore's reorient(dtype=float32): permute, flip, convert and scale in one pass."""
    img, _, want, _ = reoriented
    img._slope, img._inter = SCALE  # the header's scaling, as if read from the file
    try:
        r = run(benchmark, lambda: vc.reorient(img, "RAS", dtype=np.float32), op="reorient-f32",
                case=None, size=size, peer="voxcore", nbytes=want.nbytes, rounds=REORIENT_ROUNDS)
    finally:
        img._slope = img._inter = None
    assert r.data.dtype == np.float32 and r.data.flags.f_contiguous
    assert_equal(r.read(), _scaled_want(want), "voxcore scaled reorient")


def _numpy_scaled(img, nimg):
    view = transposed_flipped(img.read())

    def fn():
        out = np.ascontiguousarray(view.T).T.astype(np.float32, order="F")
        out *= np.float32(SCALE[0])
        out += np.float32(SCALE[1])
        return out
    return fn


SCALED_REORIENTERS = {
    "numpy ascontiguousarray of the view, then astype(float32), *= slope, += inter": _numpy_scaled,
}


@pytest.mark.parametrize("peer", list(SCALED_REORIENTERS), ids=["numpy"])
def test_reorient_scaled_peers(benchmark, peer, reoriented, size):
    img, nimg, want, _ = reoriented
    fn = SCALED_REORIENTERS[peer](img, nimg)
    out = run(benchmark, fn, op="reorient-f32", case=None, size=size, peer=peer, nbytes=want.nbytes,
              quiet=True, rounds=SLOW_ROUNDS)
    assert out.flags.f_contiguous
    assert_equal(out, _scaled_want(want), peer)


# ------------------------------------------------------------------------------ write .nii.gz
def _write_voxcore(img, path, durable=False):
    import voxcore as vc

    vc.save(img, path, overwrite=True, durable=durable)  # the peers do not fsync: durable=False


def _write_nibabel(img, path):
    img.to_filename(path)


@pytest.mark.parametrize("durable", [False, True], ids=["plain", "durable"])
def test_write_gz(benchmark, nii_gz, volume, workdir, size, durable):
    """.nii.gz write of the loaded image: voxcore (parallel ISA-L gzip members) vs nibabel;
    voxcore's default, durable=True (fsync of the file, then of its directory), is its own row."""
    import nibabel as nib
    import voxcore as vc

    out = workdir / "nifti" / "w.nii.gz"
    img = vc.open(nii_gz)
    img.read()  # decoded outside the timing: the write alone is measured
    run(benchmark, lambda: _write_voxcore(img, out, durable), op="nifti-write", case=None, size=size,
        peer="voxcore durable=True" if durable else "voxcore", nbytes=volume.nbytes, rounds=LOAD_ROUNDS)
    benchmark.extra_info["gz_MiB"] = round(out.stat().st_size / 2**20, 2)
    assert_equal(np.asanyarray(nib.load(out).dataobj), volume, "voxcore .nii.gz write")


def test_write_gz_nibabel(benchmark, nii_gz, volume, workdir, size):
    import nibabel as nib

    out = workdir / "nifti" / "wn.nii.gz"
    img = nib.load(nii_gz)
    img.get_fdata(dtype=np.float32)  # not timed: warm nibabel's caches like the voxcore row
    img = nib.Nifti1Image(np.asanyarray(img.dataobj), img.affine, img.header)
    run(benchmark, lambda: _write_nibabel(img, str(out)), op="nifti-write", case=None, size=size,
        peer="nibabel to_filename", nbytes=volume.nbytes, rounds=SLOW_ROUNDS, quiet=True)
    assert_equal(np.asanyarray(nib.load(out).dataobj), volume, "nibabel .nii.gz write")


def test_floor_write_gz(benchmark, volume, size):
    """The compression alone: the volume's bytes as ISA-L level-1 gzip members (4 MiB each) on
    the core's threads, into memory (no file, no header)."""
    import gzip

    from voxcore import _core

    payload = np.ascontiguousarray(volume.T).reshape(-1).view(np.uint8)
    out = run(benchmark, lambda: _core.gzip_members(payload, 1), op="nifti-write", case=None,
              size=size, peer="floor: ISA-L level-1 gzip members on the core's threads (in memory)",
              nbytes=volume.nbytes, rounds=LOAD_ROUNDS)
    assert gzip.decompress(out.tobytes()) == payload.tobytes()
