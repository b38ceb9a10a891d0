"""Durable writes on the I/O threads: killed with fsyncs in flight, and failing fsyncs and renames.

- SIGKILL at random moments of a child that rewrites every chunk of an array in place (durable,
  so its sets and fsyncs run on the I/O threads): every chunk reads as its old or its new value,
  never torn or mixed, and the dead writer's temp files go with the next write.
- An fsync or rename that fails (EIO, injected by an LD_PRELOAD shim compiled here) reaches the
  caller as OSError with that errno and the key's path, leaves no temp file, and the key keeps its
  old value; the same for a directory fsync, an OME-Zarr save and a NIfTI save.
- A full tmpfs under an in-place write: OSError(ENOSPC), no temp file, every key old or new.
"""
from __future__ import annotations

import errno
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import voxcore as vc

SHAPE, CHUNK = (48, 48, 48), 8  # 216 chunks


def _env(**extra) -> dict:
    return dict(os.environ, **extra, PYTHONPATH=os.pathsep.join(filter(None, [
        str(Path(vc.__file__).parents[1]), os.environ.get("PYTHONPATH")])))


def _versions(seed: int, n: int = 2) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 60000, SHAPE, dtype=np.uint16) for _ in range(n)]


def _chunk_slices():
    steps = [range(0, s, CHUNK) for s in SHAPE]
    for z in steps[0]:
        for y in steps[1]:
            for x in steps[2]:
                yield (slice(z, z + CHUNK), slice(y, y + CHUNK), slice(x, x + CHUNK))


def _which_version(got: np.ndarray, versions: list[np.ndarray]) -> list[int]:
    """Per chunk, the index of the version it holds exactly; fails on a torn or mixed chunk."""
    out = []
    for sl in _chunk_slices():
        match = [i for i, v in enumerate(versions) if np.array_equal(got[sl], v[sl])]
        assert match, f"chunk at {[s.start for s in sl]} is neither version"
        out.append(match[0])
    return out


def _temps(root: Path) -> list[str]:
    return [str(p) for p in root.rglob("*") if ".vxtmp-" in p.name]


_KILL_CHILD = """
import sys
import numpy as np
import voxcore as vc
path = sys.argv[1]
versions = [np.load(p) for p in sys.argv[2:]]
img = vc.open(path)
img.write(versions[1])
print("ready", flush=True)
i = 0
while True:
    img.write(versions[i % 2])
    i += 1
"""


def test_sigkill_while_fsyncs_are_in_flight(tmp_path):
    """>= 30 kills of a child rewriting all 216 chunks durably: every chunk is one version."""
    versions = _versions(5)
    paths = []
    for i, v in enumerate(versions):
        paths.append(str(tmp_path / f"v{i}.npy"))
        np.save(paths[-1], v)
    target = tmp_path / "a.zarr"
    vc.create_array(target, SHAPE, np.uint16, chunks=CHUNK).write(versions[0])
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(_KILL_CHILD))
    rng = random.Random(99)
    mid, seen = 0, set()
    for run in range(30):
        child = subprocess.Popen([sys.executable, str(script), str(target), *paths],
                                 stdout=subprocess.PIPE, env=_env(), text=True)
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.08))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        assert child.returncode == -signal.SIGKILL
        mid += any(f"-{child.pid}-" in t for t in _temps(target))  # killed with sets in flight
        got = vc.open(target).read()
        seen.update(_which_version(got, versions))
    assert mid >= 5, f"only {mid} of 30 kills landed while sets were in flight"
    assert seen == {0, 1}
    img = vc.open(target)
    img.write(versions[0])  # the next write removes the dead writers' temp files
    assert _temps(target) == []
    assert np.array_equal(vc.open(target).read(), versions[0])


# ---------------------------------------------------------------------------- injected faults
_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* VXFAIL="call:pattern:n": the n-th call (n >= 1) of fsync/fdatasync/rename/renameat whose path
   contains pattern fails with EIO (the target path for renames); others go to libc. */
static int count;
static int should_fail(const char* call, const char* path) {
  const char* spec = getenv("VXFAIL");
  char c[32], pat[512];
  int n;
  if (!spec || sscanf(spec, "%31[^:]:%511[^:]:%d", c, pat, &n) != 3) return 0;
  if (strcmp(c, call) != 0 || strstr(path, pat) == NULL) return 0;
  return __atomic_add_fetch(&count, 1, __ATOMIC_SEQ_CST) == n;
}
static void fd_path(int fd, char* out, size_t size) {
  char link[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t got = readlink(link, out, size - 1);
  out[got < 0 ? 0 : got] = 0;
}
static int sync_call(const char* call, int fd) {
  char path[4096];
  fd_path(fd, path, sizeof path);
  if (should_fail("fsync", path)) { errno = EIO; return -1; }
  int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, call);
  return real(fd);
}
int fsync(int fd) { return sync_call("fsync", fd); }
int fdatasync(int fd) { return sync_call("fdatasync", fd); }
int renameat(int od, const char* o, int nd, const char* n) {
  char path[4096] = "";
  if (n[0] != '/' && nd != AT_FDCWD) fd_path(nd, path, sizeof path);
  strncat(path, "/", sizeof path - strlen(path) - 1);
  strncat(path, n, sizeof path - strlen(path) - 1);
  if (should_fail("rename", path)) { errno = EIO; return -1; }
  int (*real)(int, const char*, int, const char*) =
      (int (*)(int, const char*, int, const char*))dlsym(RTLD_NEXT, "renameat");
  return real(od, o, nd, n);
}
int rename(const char* o, const char* n) {
  if (should_fail("rename", n)) { errno = EIO; return -1; }
  int (*real)(const char*, const char*) = (int (*)(const char*, const char*))dlsym(RTLD_NEXT, "rename");
  return real(o, n);
}
"""


@pytest.fixture(scope="module")
def shim(tmp_path_factory) -> str:
    cc = shutil.which("gcc") or shutil.which("cc")
    assert cc, "a C compiler is needed (tests/install.sh installs g++)"
    d = tmp_path_factory.mktemp("shim")
    (d / "shim.c").write_text(_SHIM)
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", str(d / "shim.so"), str(d / "shim.c"), "-ldl"],
                   check=True, capture_output=True)
    return str(d / "shim.so")


_FAULT_CHILD = """
import errno, sys, json
import numpy as np
import voxcore as vc
kind, path, new = sys.argv[1], sys.argv[2], np.load(sys.argv[3])
try:
    if kind == "write":
        vc.open(path).write(new)
    elif kind == "save":
        vc.save(vc.build_pyramid(vc.from_array(new, dims=("z", "y", "x")), [2]), path, chunks=8, overwrite=True)
    elif kind == "nifti":
        vc.save(vc.from_array(new, dims=("z", "y", "x")), path, overwrite=True)
except OSError as e:
    print(json.dumps({"type": type(e).__name__, "errno": e.errno, "message": str(e)}))
    sys.exit(0)
print(json.dumps({"type": None}))
"""


def _run_faulty(shim, tmp_path, kind, path, new, spec) -> dict:
    import json

    np.save(tmp_path / "new.npy", new)
    script = tmp_path / "fault.py"
    script.write_text(textwrap.dedent(_FAULT_CHILD))
    proc = subprocess.run([sys.executable, str(script), kind, str(path), str(tmp_path / "new.npy")],
                          env=_env(LD_PRELOAD=shim, VXFAIL=spec), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("call,key", [("fsync", "c/2/1/0"), ("rename", "c/0/3/5"),
                                      ("fsync", "c/4/4")])
def test_failed_sync_or_rename_of_a_chunk_names_the_key(shim, tmp_path, call, key):
    """EIO from a chunk's fsync, its rename, or a chunk directory's fsync (c/4/4)."""
    old, new = _versions(7)
    target = tmp_path / "a.zarr"
    vc.create_array(target, SHAPE, np.uint16, chunks=CHUNK).write(old)
    if call == "fsync" and key.count("/") == 3:  # the chunk's temp file
        pattern = f"a.zarr/{key.rsplit('/', 1)[0]}/.{key.rsplit('/', 1)[1]}.vxtmp-"
    else:  # the rename over the chunk, or the directory itself
        pattern = f"a.zarr/{key}"
    got = _run_faulty(shim, tmp_path, "write", target, new, f"{call}:{pattern}:1")
    assert got["type"] is not None, "the injected failure did not surface"
    assert got["errno"] == errno.EIO, got
    assert str(target) in got["message"] and key in got["message"], got["message"]
    assert _temps(target) == []
    held = vc.open(target).read()
    which = _which_version(held, [old, new])
    if key.count("/") == 3:  # that chunk kept its old value
        index = [int(k) for k in key.split("/")[1:]]
        k = (index[0] * (SHAPE[1] // CHUNK) + index[1]) * (SHAPE[2] // CHUNK) + index[2]
        assert which[k] == 0
    vc.open(target).write(new)  # the array is whole: a later write succeeds
    assert np.array_equal(vc.open(target).read(), new)


@pytest.mark.parametrize("kind,name,pattern", [("save", "p.ome.zarr", "/1/c/0/0/0"),
                                               ("nifti", "v.nii.gz", "v.nii.gz.tmp-")])
def test_failed_fsync_in_a_save_keeps_the_old_file(shim, tmp_path, kind, name, pattern):
    old, new = _versions(8)
    where = tmp_path / "out"
    where.mkdir()
    target = where / name
    if kind == "save":
        vc.save(vc.build_pyramid(vc.from_array(old, dims=("z", "y", "x")), [2]), target, chunks=8)
    else:
        vc.save(vc.from_array(old, dims=("z", "y", "x")), target)
    held = vc.open(target).read()
    got = _run_faulty(shim, tmp_path, kind, target, new, f"fsync:{pattern}:1")
    assert got["type"] is not None and got["errno"] == errno.EIO, got
    assert name in got["message"], got["message"]
    assert os.listdir(where) == [name], "a temp file or sibling is left"
    assert np.array_equal(vc.open(target).read(), held)


def test_disk_full_under_an_in_place_write(small_tmpfs):
    mnt = small_tmpfs("1m")
    old = np.zeros((64, 64, 64), np.uint8)  # compresses to almost nothing
    img = vc.create_array(mnt / "a.zarr", old.shape, old.dtype, chunks=16, codec=None)
    img.write(old)
    new = np.random.default_rng(0).integers(0, 255, old.shape, dtype=np.uint8)  # 256 KiB x 4 > 1 MiB
    big = np.concatenate([new] * 4)
    img2 = vc.create_array(mnt / "b.zarr", big.shape, big.dtype, chunks=16, codec=None)
    with pytest.raises(OSError) as info:
        img2.write(big)
    assert info.value.errno == errno.ENOSPC, info.value
    assert "b.zarr/c/" in str(info.value), str(info.value)
    assert _temps(mnt) == []
    assert np.array_equal(vc.open(mnt / "a.zarr").read(), old)
