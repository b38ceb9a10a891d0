"""NIfTI resource safety (RELIABILITY.md items 1, 2, 5 and 7): what reads may hold, what saves
leave behind when the disk fails, and the header fields a save must not invent.

- A region of a .nii.gz costs its outermost-axis span plus a bounded inflate window, whatever
  the header claims (a 4 MB file claiming 4 GiB, measured in a child with RLIMIT_AS).
- A read whose result cannot fit in memory raises LimitExceededError instead of allocating.
- A save that fails (disk full, file too large, I/O error) raises OSError with the errno and the
  target path, leaves an older file at that path as it was and no temp file; a later save
  removes the temp files of dead writers.
- A save keeps the source's qform/sform codes and forms; only a fresh image gets voxcore's.
- RGB images refuse a scalar dtype with a named error.
"""
from __future__ import annotations

import errno
import gzip
import io
import json
import os
import subprocess
import sys
import textwrap

import nibabel as nib
import numpy as np
import pytest
import voxcore as vc
from voxcore import _resources
from voxcore import _gzip
from voxcore.images import nifti

AS_LIMIT = 3 << 29  # 1.5 GiB address space for the children that read huge claims
RSS_LIMIT_MIB = 160  # the child measures 55-70 MiB (import alone: 39)
CLAIM = (1024, 1024, 1024)  # int32: 4 GiB


def header_bytes(shape, dtype, v2=False) -> bytes:
    """A nibabel-written single-file header with the extender, data at vox_offset."""
    hdr = (nib.Nifti2Header if v2 else nib.Nifti1Header)()
    hdr.set_data_dtype(np.dtype(dtype))
    hdr.set_data_shape(shape)
    hdr.set_sform(np.diag([1.0, 1.0, 1.0, 1.0]), code=1)
    buf = io.BytesIO()
    hdr.write_to(buf)
    head = buf.getvalue()
    return head + b"\0" * (int(hdr["vox_offset"]) - len(head))


def noise(shape, dtype="i2", seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(-3000, 3000, size=shape).astype(dtype)


def write_nib(path, data, qform=None, sform=None, qcode=1, scode=1, v2=False) -> None:
    """A file with exactly these codes: nibabel writes the header as built (affine=None keeps
    it from recoding the forms)."""
    hdr = (nib.Nifti2Header if v2 else nib.Nifti1Header)()
    hdr.set_data_dtype(data.dtype)
    hdr.set_data_shape(data.shape)
    if qform is not None:
        hdr.set_qform(qform, code=qcode)
    if sform is not None:
        hdr.set_sform(sform, code=scode)
    nib.save((nib.Nifti2Image if v2 else nib.Nifti1Image)(data, None, header=hdr), str(path))


def temp_files(directory) -> list[str]:
    return sorted(n for n in os.listdir(directory) if ".tmp-" in n)


def run_child(code: str, tmp_path, timeout: float = 120.0) -> dict:
    """Run code in a fresh interpreter (cwd tmp_path); it prints one JSON object last."""
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(code))
    env = dict(os.environ, VOXCORE_NUM_THREADS="2", PYTHONFAULTHANDLER="1")
    proc = subprocess.run([sys.executable, str(script)], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"child failed ({proc.returncode})\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---- bounded .nii.gz region reads ---------------------------------------------------------

@pytest.fixture(scope="module")
def zeros_claim(tmp_path_factory):
    """A 4 MB .nii.gz that really holds 4 GiB of zeros: int32 (1024, 1024, 1024), one gzip member
    per 16 MiB of zeros."""
    path = tmp_path_factory.mktemp("claim") / "zeros.nii.gz"
    member = gzip.compress(bytes(16 << 20), compresslevel=9, mtime=0)
    with open(path, "wb") as f:
        f.write(gzip.compress(header_bytes(CLAIM, "i4"), mtime=0))
        for _ in range((4 << 30) // (16 << 20)):
            f.write(member)
    assert os.path.getsize(path) < 5 << 20
    return path


@pytest.fixture(scope="module")
def truncated_claim(tmp_path_factory):
    """A 5 MB .nii.gz whose header claims 4 GiB and whose stream holds 5 MiB of noise."""
    path = tmp_path_factory.mktemp("claim") / "cut.nii.gz"
    body = np.random.default_rng(1).integers(0, 256, 5 << 20, dtype=np.uint8).tobytes()
    path.write_bytes(gzip.compress(header_bytes(CLAIM, "i4") + body, compresslevel=1, mtime=0))
    return path


# The child's own peak resident set: VmHWM belongs to its address space, which exec starts
# afresh. ru_maxrss would also count the pytest parent's peak (vfork+exec carries it over).
PEAK_RSS = """
def peak_rss_mib():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM")) / 1024
"""

CLAIM_CHILD = PEAK_RSS + """
import json, resource
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
import numpy as np
import voxcore as vc

out = {{}}
for caching in ("fill", "unchanged"):
    img = vc.open({path!r}, caching=caching)
    assert img.shape == (1024, 1024, 1024) and img.dtype == np.int32
    out[caching] = [img.read((slice(0, 1),) * 3).tolist(), int(img[0, 0, 0]),
                    # 400 MiB of the stream inflated and dropped before this slab
                    img.read((slice(5, 8), 7, 100)).tolist()]
out["rss_mib"] = peak_rss_mib()
print(json.dumps(out))
"""


def test_gz_region_read_of_a_4gib_claim_holds_only_its_span(zeros_claim, tmp_path):
    got = run_child(CLAIM_CHILD.format(limit=AS_LIMIT, path=str(zeros_claim)), tmp_path)
    for caching in ("fill", "unchanged"):
        assert got[caching] == [[[[0]]], 0, [0, 0, 0]], caching
    assert got["rss_mib"] < RSS_LIMIT_MIB, f"peak RSS {got['rss_mib']:.0f} MiB"


TRUNCATED_CHILD = PEAK_RSS + """
import json, resource
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
import voxcore as vc

img = vc.open({path!r}, caching="unchanged")
out = {{"first": int(img[0, 0, 0])}}
for name, region in (("past_the_end", (0, 0, 700)), ("whole", None)):
    try:
        img.read(region)
        out[name] = None
    except Exception as e:  # what it raises is checked by the parent
        out[name] = [type(e).__name__, str(e)]
out["rss_mib"] = peak_rss_mib()
print(json.dumps(out))
"""


def test_gz_truncated_claim_raises_named_errors_with_bounded_memory(truncated_claim, tmp_path):
    got = run_child(TRUNCATED_CHILD.format(limit=AS_LIMIT, path=str(truncated_claim)), tmp_path)
    body = np.random.default_rng(1).integers(0, 256, 5 << 20, dtype=np.uint8)
    assert got["first"] == int(body[:4].view("<i4")[0])  # the span inside the stream reads
    cls, msg = got["past_the_end"]
    assert cls == "CorruptDataError" and "truncated" in msg and "cut.nii.gz" in msg, got
    # the whole image cannot be allocated under the cap: refused by name, not MemoryError
    cls, msg = got["whole"]
    assert cls in ("LimitExceededError", "CorruptDataError"), got
    assert "cut.nii.gz" in msg
    assert got["rss_mib"] < RSS_LIMIT_MIB, f"peak RSS {got['rss_mib']:.0f} MiB"


def gz_variants(tmp_path, a):
    """The same image as .nii.gz three ways: voxcore's parallel members (4 MiB blocks), one
    Python gzip member, and members with zero padding between them."""
    plain = tmp_path / "src.nii"
    write_nib(plain, a, sform=np.eye(4))
    raw = plain.read_bytes()
    out = {}
    out["members"] = tmp_path / "members.nii.gz"
    vc.save(vc.open(plain), out["members"])
    out["single"] = tmp_path / "single.nii.gz"
    out["single"].write_bytes(gzip.compress(raw, compresslevel=6, mtime=0))
    out["padded"] = tmp_path / "padded.nii.gz"
    cuts = [0, 1000, len(raw) // 3, len(raw) // 3 + 1, len(raw)]
    out["padded"].write_bytes(b"\0\0\0".join(gzip.compress(raw[lo:hi], mtime=0)
                                             for lo, hi in zip(cuts, cuts[1:])))
    return out


# regions inside part of the z range (the span), then two that need every z plane (one pass
# over the whole stream, as a whole read)
REGIONS = [(slice(None), slice(None), slice(3, 4)), (0, 0, 0), (-1, -1, -1),
           (slice(2, 9), slice(None, None, 3), slice(10, 60, 7)), {"z": slice(60, 64), "x": 3},
           (slice(None), slice(None), slice(7, 2, -2)), (Ellipsis, 40), (slice(None), 5)]
PARTIAL = 6


@pytest.mark.parametrize("kind", ["members", "single", "padded"])
@pytest.mark.parametrize("caching", ["unchanged", "fill-large"])
def test_gz_region_reads_match_numpy(tmp_path, monkeypatch, kind, caching):
    a = noise((96, 80, 64), "i2", seed=2)
    path = gz_variants(tmp_path, a)[kind]
    if caching == "fill-large":  # an image over the fill limit streams regions in fill mode too
        monkeypatch.setattr(nifti, "REGION_FILL_MAX", 0)
    # small odd windows and blocks: they split planes, members and padding runs
    monkeypatch.setattr(_gzip, "INFLATE_WINDOW", 100_003)
    monkeypatch.setattr(_gzip, "READ_BLOCK", 4099)
    img = vc.open(path, caching="fill" if caching == "fill-large" else "unchanged")
    for i, region in enumerate(REGIONS):
        want = a[tuple(region.get(d, slice(None)) for d in "xyz")] if isinstance(region, dict) \
            else a[region]
        got = img.read(region)
        np.testing.assert_array_equal(got, want, err_msg=str(region))
        if i < PARTIAL:
            assert img._cache is None, region  # a span read never kept the whole image
        np.testing.assert_allclose(img.read(region, dtype=np.float32), want.astype(np.float32))
    np.testing.assert_array_equal(img.read(), a)


def test_gz_small_image_in_fill_mode_is_inflated_once(tmp_path):
    a = noise((20, 18, 16), "u2", seed=3)
    path = gz_variants(tmp_path, a)["members"]
    img = vc.open(path)  # caching="fill", far below REGION_FILL_MAX
    np.testing.assert_array_equal(img[:, :, 3], a[:, :, 3])
    os.remove(path)  # the first region read kept the whole image
    np.testing.assert_array_equal(img[:, 2], a[:, 2])
    img = vc.open(gz_variants(tmp_path, a)["members"], caching="unchanged")
    np.testing.assert_array_equal(img[:, :, 3], a[:, :, 3])
    assert img._cache is None


def test_gz_region_of_a_damaged_stream_raises_corrupt(tmp_path):
    a = noise((64, 64, 64), "i2", seed=4)
    path = tmp_path / "d.nii.gz"
    raw = gzip.compress(header_bytes(a.shape, "i2") + a.tobytes(order="F"), mtime=0)
    path.write_bytes(raw[: len(raw) // 2])
    img = vc.open(path, caching="unchanged")
    np.testing.assert_array_equal(img[:, :, 2], a[:, :, 2])  # before the cut
    with pytest.raises(vc.CorruptDataError, match="truncated") as info:
        img[:, :, 60]
    assert "d.nii.gz" in str(info.value)
    with pytest.raises(vc.CorruptDataError, match=r"d\.nii\.gz"):  # libdeflate's pass: "gzip"
        img.read()
    bad = bytearray(raw)
    bad[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(bad))
    img = vc.open(path, caching="unchanged")
    with pytest.raises(vc.CorruptDataError, match=r"d\.nii\.gz"):
        img[:, :, 63]


# ---- results that cannot fit in memory ----------------------------------------------------

@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_read_beyond_available_memory_raises_limit_exceeded(tmp_path, monkeypatch, suffix):
    a = noise((128, 128, 64), "i2", seed=5)  # 2 MiB
    path = tmp_path / f"m{suffix}"
    write_nib(path, a, sform=np.eye(4))
    monkeypatch.setattr(_resources, "available_memory", lambda: 1 << 20)
    img = vc.open(path, caching="unchanged")
    with pytest.raises(vc.LimitExceededError, match="m.nii"):
        img.read()
    with pytest.raises(vc.LimitExceededError):
        img.read((slice(None), slice(None), slice(0, 40)))  # a 1.25 MiB span
    with pytest.raises(vc.LimitExceededError):
        img.read((slice(None), slice(None), slice(0, 10)), dtype=np.float64)  # 1.25 MiB result
    with pytest.raises(vc.LimitExceededError):
        np.asarray(img)
    np.testing.assert_array_equal(img[:, :, 7], a[:, :, 7])  # what fits still reads
    np.testing.assert_array_equal(img.read((slice(None), slice(None), 7), dtype=np.float32),
                                  a[:, :, 7].astype(np.float32))
    monkeypatch.setattr(_resources, "available_memory", lambda: 3 << 20)
    with pytest.raises(vc.LimitExceededError, match="reorient"):  # the source fits, 8 MiB do not
        vc.reorient(vc.open(path), "LPS", dtype=np.float64)


# ---- failed saves -------------------------------------------------------------------------

def incompressible(nbytes: int, seed=6) -> np.ndarray:
    side = int(round((nbytes // 2) ** (1 / 3)))
    return np.random.default_rng(seed).integers(0, 1 << 16, (side, side, side), dtype=np.uint16)


def check_failed_save(exc: BaseException, want_errno: int, path, old: bytes) -> None:
    assert isinstance(exc, OSError) and not isinstance(exc, vc.VoxcoreError), repr(exc)
    assert exc.errno == want_errno, exc
    assert exc.filename == str(path), exc
    assert path.read_bytes() == old  # the file that was there is intact
    assert temp_files(path.parent) == []


@pytest.fixture
def tiny_fs(small_tmpfs):
    """A 1 MiB tmpfs (needs root); skipped where it cannot be mounted."""
    return small_tmpfs("1m")


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_save_on_a_full_disk_raises_enospc_and_keeps_the_old_file(tiny_fs, suffix):
    path = tiny_fs / f"out{suffix}"
    vc.save(vc.from_array(np.arange(1000, dtype=np.int16).reshape(10, 10, 10)), path)
    old = path.read_bytes()
    with pytest.raises(OSError) as info:
        vc.save(vc.from_array(incompressible(2 << 20)), path, overwrite=True)
    check_failed_save(info.value, errno.ENOSPC, path, old)
    assert "No space left" in str(info.value)
    vc.save(vc.from_array(np.ones((8, 8, 8), np.uint8)), path, overwrite=True)  # room again
    np.testing.assert_array_equal(vc.open(path).read(), np.ones((8, 8, 8), np.uint8))


FSIZE_CHILD = """
import errno, json, os, resource, signal
import numpy as np
import voxcore as vc

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
path = {path!r}
vc.save(vc.from_array(np.zeros((10, 10, 10), np.int16)), path)
old = open(path, "rb").read()
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
big = np.random.default_rng(7).integers(0, 1 << 16, (128, 128, 128), dtype=np.uint16)
try:
    vc.save(vc.from_array(big), path, overwrite=True)
    out = None
except BaseException as e:
    out = [type(e).__module__ + "." + type(e).__qualname__, getattr(e, "errno", None),
           getattr(e, "filename", None), str(e)]
print(json.dumps({{"exc": out, "intact": open(path, "rb").read() == old,
                   "left": sorted(n for n in os.listdir(os.path.dirname(path)) if ".tmp-" in n)}}))
"""


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_save_past_rlimit_fsize_raises_efbig_and_keeps_the_old_file(tmp_path, suffix):
    target = tmp_path / "out" / f"f{suffix}"
    target.parent.mkdir()
    got = run_child(FSIZE_CHILD.format(path=str(target)), tmp_path)
    assert got["exc"] is not None, "the save past RLIMIT_FSIZE did not fail"
    cls, err, filename, msg = got["exc"]
    assert cls == "builtins.OSError", got
    assert err == errno.EFBIG and filename == str(target), got
    assert got["intact"] and got["left"] == [], got


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
@pytest.mark.parametrize("code", [errno.EIO, errno.EBADF])
def test_save_io_error_keeps_errno_and_path(tmp_path, monkeypatch, suffix, code):
    path = tmp_path / f"io{suffix}"
    vc.save(vc.from_array(np.zeros((4, 4, 4), np.uint8)), path)
    old = path.read_bytes()

    def failing_fsync(fd):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError) as info:
        vc.save(vc.from_array(np.ones((4, 4, 4), np.uint8)), path, overwrite=True)
    check_failed_save(info.value, code, path, old)


def test_save_refuses_an_existing_target_with_errno_and_path(tmp_path):
    path = tmp_path / "e.nii"
    vc.save(vc.from_array(np.zeros((2, 2, 2), np.uint8)), path)
    with pytest.raises(FileExistsError) as info:
        vc.save(vc.from_array(np.ones((2, 2, 2), np.uint8)), path)
    assert info.value.errno == errno.EEXIST and info.value.filename == str(path)


# ---- temp files of dead writers -----------------------------------------------------------

def test_save_removes_temp_files_of_dead_writers_only(tmp_path):
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    dead = done.pid
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        stale = [f"a.nii.tmp-{dead}", f"b.nii.gz.tmp-{dead}", f"new.nii.tmp-{dead}"]
        kept = [f"c.nii.tmp-{live.pid}", f"notes.txt.tmp-{dead}", "d.nii.tmp-x"]
        for name in stale + kept:
            (tmp_path / name).write_bytes(b"partial")
        (tmp_path / f"dir.nii.tmp-{dead}").mkdir()  # not a file: not ours to remove
        mine = tmp_path / f"new.nii.tmp-{os.getpid()}"  # an earlier process with this PID
        mine.write_bytes(b"left over")
        vc.save(vc.from_array(np.zeros((3, 3, 3), np.uint8)), tmp_path / "new.nii")
        names = set(os.listdir(tmp_path))
        assert not names & set(stale), names
        assert set(kept) <= names and f"dir.nii.tmp-{dead}" in names
        assert not mine.exists()
        np.testing.assert_array_equal(vc.open(tmp_path / "new.nii").read(), np.zeros((3, 3, 3)))
    finally:
        live.kill()
        live.wait()


# ---- qform / sform codes ------------------------------------------------------------------

QFORM = np.array([[0.0, 0, -2.0, 90], [1.5, 0, 0, -120], [0, 3.0, 0, -60], [0, 0, 0, 1]])
SFORM = np.array([[0.1, 0, -2.0, 91], [1.5, 0.2, 0, -121], [0, 3.0, 0.05, -61], [0, 0, 0, 1]])
CODES = [(0, 0), (1, 0), (0, 1), (2, 2), (1, 4)]


def assert_same_forms(got_hdr, src_hdr) -> None:
    for getter in ("get_qform", "get_sform"):
        (g_aff, g_code), (s_aff, s_code) = (getattr(h, getter)(coded=True)
                                            for h in (got_hdr, src_hdr))
        assert int(g_code) == int(s_code), getter
        if s_aff is None:
            assert g_aff is None, getter
        else:
            np.testing.assert_array_equal(g_aff, s_aff, err_msg=getter)
    np.testing.assert_array_equal(got_hdr.get_best_affine(), src_hdr.get_best_affine())


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
@pytest.mark.parametrize("codes", CODES, ids=[f"q{q}s{s}" for q, s in CODES])
def test_save_keeps_the_sources_qform_and_sform(tmp_path, suffix, codes):
    qcode, scode = codes
    src = tmp_path / f"src{suffix}"
    write_nib(src, noise((6, 5, 4), "i2"), qform=QFORM, sform=SFORM, qcode=qcode, scode=scode)
    ref = nib.load(str(src))
    assert (int(ref.header["qform_code"]), int(ref.header["sform_code"])) == codes
    for out_suffix in (".nii", ".nii.gz"):
        out = tmp_path / f"out{out_suffix}"
        vc.save(vc.open(src), out, overwrite=True)  # writers.save -> writers.nifti.save_nifti
        back = nib.load(str(out))
        assert_same_forms(back.header, ref.header)
        np.testing.assert_array_equal(np.asanyarray(back.dataobj), np.asanyarray(ref.dataobj))
        np.testing.assert_array_equal(vc.open(out).affine, vc.open(src).affine)
    # the source opened with another affine_source: the header is still written as it is
    if qcode and scode:
        vc.save(vc.open(src, affine_source="qform"), tmp_path / "q.nii")
        assert_same_forms(nib.load(str(tmp_path / "q.nii")).header, ref.header)


def test_save_of_nifti2_keeps_the_codes(tmp_path):
    src = tmp_path / "two.nii"
    write_nib(src, noise((7, 6, 5), "i2"), qform=QFORM, sform=None, qcode=1, v2=True)
    ref = nib.load(str(src))
    assert isinstance(ref, nib.Nifti2Image) and int(ref.header["sform_code"]) == 0
    vc.save(vc.open(src), tmp_path / "two_out.nii.gz")
    back = nib.load(str(tmp_path / "two_out.nii.gz"))
    assert isinstance(back, nib.Nifti2Image)
    assert_same_forms(back.header, ref.header)


@pytest.mark.parametrize("codes", [(1, 0), (0, 1), (1, 4)], ids=["q1s0", "q0s1", "q1s4"])
def test_reoriented_save_keeps_the_codes_and_moves_each_form(tmp_path, codes):
    from nibabel import orientations as no

    src = tmp_path / "r.nii"
    shape = (6, 5, 4)
    write_nib(src, noise(shape, "i2"), qform=QFORM, sform=SFORM, qcode=codes[0], scode=codes[1])
    ref = nib.load(str(src)).header
    moved = vc.reorient(vc.open(src), "LPS")
    vc.save(moved, tmp_path / "lps.nii.gz")
    back = nib.load(str(tmp_path / "lps.nii.gz"))
    assert (int(back.header["qform_code"]), int(back.header["sform_code"])) == codes
    np.testing.assert_allclose(back.affine, moved.affine, atol=1e-4)
    assert nib.aff2axcodes(back.affine) == ("L", "P", "S")
    # each coded form still maps a voxel to the world point its source voxel had
    ornt = no.ornt_transform(no.io_orientation(ref.get_best_affine()), no.axcodes2ornt("LPS"))
    to_src = no.inv_ornt_aff(ornt, shape)
    if codes[0]:
        np.testing.assert_allclose(back.header.get_qform(), ref.get_qform() @ to_src, atol=1e-4)
    if codes[1]:
        np.testing.assert_allclose(back.header.get_sform(), ref.get_sform() @ to_src, atol=1e-4)


def test_fresh_image_gets_voxcores_codes(tmp_path):
    img = vc.from_array(np.zeros((4, 5, 6), np.uint8), scale=(3.0, 2.0, 1.0),
                        translation=(30.0, 20.0, 10.0))
    vc.save(img, tmp_path / "fresh.nii")
    hdr = nib.load(str(tmp_path / "fresh.nii")).header
    assert (int(hdr["qform_code"]), int(hdr["sform_code"])) == (2, 2)
    np.testing.assert_allclose(hdr.get_sform(), [[1, 0, 0, 10], [0, 2, 0, 20], [0, 0, 3, 30],
                                                 [0, 0, 0, 1]])


def test_pyramid_of_a_nifti_saved_as_nifti_keeps_the_codes(tmp_path):
    src = tmp_path / "p.nii"
    write_nib(src, noise((8, 8, 8), "i2"), qform=QFORM, sform=None, qcode=1)
    with pytest.warns(UserWarning, match="cannot be stored in OME-Zarr"):
        pyr = vc.build_pyramid(vc.open(src))
    vc.save(pyr, tmp_path / "back.nii")
    assert_same_forms(nib.load(str(tmp_path / "back.nii")).header, nib.load(str(src)).header)


# ---- RGB ----------------------------------------------------------------------------------

RGB = {"RGB24": [("R", "u1"), ("G", "u1"), ("B", "u1")],
       "RGBA32": [("R", "u1"), ("G", "u1"), ("B", "u1"), ("A", "u1")]}


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
@pytest.mark.parametrize("kind", sorted(RGB))
def test_rgb_refuses_a_scalar_dtype_by_name(tmp_path, kind, suffix):
    dt = np.dtype(RGB[kind])
    a = np.random.default_rng(8).integers(0, 256, (5, 4, 3, dt.itemsize), dtype=np.uint8)
    a = np.ascontiguousarray(a).view(dt)[..., 0]
    path = tmp_path / f"rgb{suffix}"
    write_nib(path, a, sform=np.eye(4))
    img = vc.open(path, caching="unchanged")
    for call in (lambda: img.read(dtype=np.float32), lambda: img.read((0,), dtype=np.float64),
                 lambda: np.asarray(img, dtype=np.float32)):
        with pytest.raises(vc.InvalidArgumentError) as info:
            call()
        msg = str(info.value)
        assert kind in msg and "scalar dtype" in msg and "without dtype" in msg, msg
    got = img.read()
    assert got.dtype == dt
    np.testing.assert_array_equal(got, np.asanyarray(nib.load(str(path)).dataobj))
    np.testing.assert_array_equal(img[:, :, 1]["G"], a[:, :, 1]["G"])
    np.testing.assert_array_equal(np.asarray(img, dtype=dt), a)
