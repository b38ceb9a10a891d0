"""Durable writes, proven from the system calls: a small write of every kind runs under strace.

Asserted from the trace (completion order; strace -y names each descriptor's path):
- every temp file (or tree) renamed into place was fsync'd before that rename;
- every directory that received a rename was fsync'd after its last rename, before the process
  ended (each durable call syncs the directories it renamed into before it returns);
- every directory that a chunk write created has its parent fsync'd after the creation;
- a tree built beside its target (.NAME.vxnew-...) has its files written straight to their keys,
  no temp file: each such file, and its directory, is fsync'd before the tree is renamed into place;
- no temp file is left in the written trees.
strace comes from Debian's strace package (tests/install.sh installs it).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent("""
    import sys, warnings
    import numpy as np
    import nibabel as nib
    import voxcore as vc
    warnings.simplefilter("ignore", vc.UnalignedWriteWarning)
    out = sys.argv[1]
    vol = np.arange(16 * 12 * 10, dtype=np.uint16).reshape(16, 12, 10)
    for name, shards in (("plain.zarr", None), ("sharded.zarr", 8)):
        img = vc.create_array(f"{out}/{name}", vol.shape, vol.dtype, chunks=4, shards=shards)
        img.write(vol)                                      # whole chunks / shards
        img.write(vol[1:5, 2:7, 3:9] + 1, offset=(1, 2, 3))  # read-modify-write
    vc.save(vc.build_pyramid(vc.from_array(vol, dims=("z", "y", "x")), [2]), f"{out}/p.ome.zarr", chunks=4,
            labels={"cells": (vol % 5).astype(np.uint8)})
    vc.save(vc.from_array(vol, dims=("z", "y", "x")), f"{out}/p.ome.zarr", chunks=4, overwrite=True)
    vc.save(vc.open(f"{out}/plain.zarr"), f"{out}/v.nii.gz")
    with vc.create(f"{out}/acq.ome.zarr", shape=(8, 12, 10), dtype="uint16", chunks=4, pyramid=[2]) as w:
        for z in range(8):
            w.write_plane(vol[z], z=z)
""")

_CALL = re.compile(r"^(\w+)\((.*)\)\s+=\s+(-?\d+)")
_FD = r"(?:-?\d+|AT_FDCWD)<([^>]*)>"
_RENAMEAT = re.compile(_FD + r', "([^"]*)", ' + _FD + r', "([^"]*)"')
_RENAME = re.compile(r'"([^"]*)", "([^"]*)"')
_SYNCED = re.compile(r"^-?\d+<([^>]*)>")
_TEMP = re.compile(r"\.vxtmp-|\.vxnew-|\.vxold-|\.tmp-\d+$")


def _events(trace: str) -> list[tuple[str, str, int]]:
    """(call, arguments, result) per completed system call, in completion order."""
    pending: dict[str, str] = {}
    out = []
    for line in trace.splitlines():
        pid, _, rest = line.partition(" ")
        rest = rest.strip()
        if rest.endswith("<unfinished ...>"):
            pending[pid] = rest[: -len("<unfinished ...>")].rstrip()
            continue
        resumed = re.match(r"<\.\.\. \w+ resumed>(.*)$", rest)
        if resumed:
            rest = pending.pop(pid, "") + resumed.group(1)
        m = _CALL.match(rest)
        if m:
            out.append((m.group(1), m.group(2), int(m.group(3))))
    return out


def _path(base: str, name: str) -> str:
    return os.path.normpath(name if name.startswith("/") else os.path.join(base, name))


def test_durable_writes_sync_data_before_rename_and_directories_after(tmp_path):
    strace = shutil.which("strace")
    assert strace, "strace is needed (tests/install.sh installs Debian's strace)"
    out = tmp_path / "out"
    out.mkdir()
    log = tmp_path / "trace.txt"
    calls = "openat,fsync,fdatasync,sync_file_range,syncfs,rename,renameat,renameat2,mkdirat"
    proc = subprocess.run([strace, "-f", "-y", "-qq", "-e", "signal=none", "-e", f"trace={calls}",
                           "-o", str(log), sys.executable, "-c", CHILD, str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    root = str(out)
    syncs: dict[str, list[int]] = {}  # path -> indexes of its fsyncs
    renames = []  # (index, source, destination)
    made = []  # (index, directory) created by mkdirat
    created = []  # (index, file) opened with O_CREAT
    for i, (call, args, result) in enumerate(_events(log.read_text())):
        if call == "openat" and result >= 0 and "O_CREAT" in args:
            m = re.match(_FD + r', "([^"]*)"', args)
            assert m, args
            created.append((i, _path(m.group(1), m.group(2))))
        if result != 0:
            continue
        if call in ("fsync", "fdatasync"):
            m = _SYNCED.match(args)
            assert m, args
            syncs.setdefault(os.path.normpath(m.group(1)), []).append(i)
        elif call in ("renameat", "renameat2"):
            m = _RENAMEAT.match(args)
            assert m, args
            renames.append((i, _path(m.group(1), m.group(2)), _path(m.group(3), m.group(4))))
        elif call == "rename":
            m = _RENAME.match(args)
            assert m, args
            renames.append((i, _path(os.getcwd(), m.group(1)), _path(os.getcwd(), m.group(2))))
        elif call == "mkdirat":
            m = re.match(_FD + r', "([^"]*)"', args)
            assert m, args
            made.append((i, _path(m.group(1), m.group(2))))
    ours = [r for r in renames if r[2].startswith(root)]
    kinds = {os.path.basename(d) for _, _, d in ours}
    assert {"zarr.json", "0", "v.nii.gz", "p.ome.zarr"} <= kinds, sorted(kinds)[:20]
    last_into: dict[str, int] = {}
    for i, src, dst in ours:
        before = [k for k in syncs.get(src, []) if k < i]
        assert before, f"{src} was renamed to {dst} before it was synced"
        last_into[os.path.dirname(dst)] = i
    for directory, i in last_into.items():
        after = [k for k in syncs.get(directory, []) if k > i]
        assert after, f"{directory} received a rename but was not synced after it"
    chunk_dirs = [(i, d) for i, d in made if d.startswith(root) and re.search(r"/(c|\d+)$", d)]
    assert chunk_dirs, "no chunk directory was created"
    for i, d in chunk_dirs:
        parent = os.path.dirname(d)
        assert [k for k in syncs.get(parent, []) if k > i], f"{parent} got the new directory {d} but was not synced"
    published = [(i, src) for i, src, dst in ours if ".vxnew-" in os.path.basename(src)]
    assert published, "no tree was built beside its target"
    in_place = 0
    for i, tree in published:
        for k, f in created:
            name = os.path.basename(f)
            if k > i or not f.startswith(tree + os.sep) or _TEMP.search(name) or name == ".vxlock":
                continue  # (the lock file holds no data)
            in_place += 1
            assert [j for j in syncs.get(f, []) if k < j < i], f"{f} was published unsynced"
            d = os.path.dirname(f)
            assert [j for j in syncs.get(d, []) if k < j < i], f"{d} got {f} but was published unsynced"
    assert in_place > 20, "the trees' chunks did not go straight to their keys"
    left = [os.path.join(d, n) for d, dirs, files in os.walk(out) for n in dirs + files if _TEMP.search(n)]
    assert not left, left


@pytest.mark.parametrize("shards", [None, 8])
def test_one_directory_sync_per_directory_per_write(tmp_path, shards):
    """A write of many chunks syncs each directory it renamed into, or created a directory in,
    once (not once per chunk)."""
    strace = shutil.which("strace")
    assert strace, "strace is needed (tests/install.sh installs Debian's strace)"
    child = textwrap.dedent("""
        import sys, numpy as np, voxcore as vc
        img = vc.create_array(sys.argv[1], (16, 16, 16), "uint16", chunks=4, shards=None if sys.argv[2] == "-" else 8)
        print("WRITE", flush=True)
        img.write(np.ones((16, 16, 16), np.uint16))
    """)
    log = tmp_path / "trace.txt"
    path = tmp_path / "a.zarr"
    proc = subprocess.run([strace, "-f", "-y", "-qq", "-e", "signal=none", "-e", "trace=fsync,renameat",
                           "-o", str(log), sys.executable, "-c", child, str(path), "-" if shards is None else "8"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    dir_syncs: dict[str, int] = {}
    renamed: dict[str, int] = {}
    for call, args, result in _events(log.read_text()):
        m = _SYNCED.match(args) if call == "fsync" and result == 0 else None
        target = os.path.normpath(m.group(1)) if m else ""
        if m and os.path.isdir(target) and target.startswith(str(path / "c")):
            dir_syncs[target] = dir_syncs.get(target, 0) + 1
        if call == "renameat" and result == 0:
            m = _RENAMEAT.match(args)
            renamed[m.group(3)] = renamed.get(m.group(3), 0) + 1
    chunk_dirs = {d for d in renamed if d.startswith(str(path / "c"))}
    top = str(path / "c")
    parents = set()  # the directories the write created directories in
    for d in chunk_dirs:
        while d != top:
            d = os.path.dirname(d)
            parents.add(d)
    assert chunk_dirs and set(dir_syncs) == chunk_dirs | parents, sorted(set(dir_syncs) ^ (chunk_dirs | parents))
    assert all(n == 1 for n in dir_syncs.values()), dir_syncs
    assert sum(renamed[d] for d in chunk_dirs) > len(chunk_dirs)  # several chunks per directory
