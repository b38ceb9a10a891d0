"""overwrite=True is safe and atomic.

- Refused targets (a user's file or non-Zarr directory, ".", "..", a symbolic link, the working
  directory or an ancestor, a plain file) raise a named error that lists what is in the way, and
  nothing on disk changes: every case compares a snapshot (paths and bytes) before and after.
- Accepted targets (Zarr / OME-Zarr hierarchies written by voxcore, zarr-python, ome-zarr-py)
  are replaced and read back as the new data, with no temp siblings left.
- A save that fails (an injected ENOSPC, a real full tmpfs) or is killed (SIGKILL at random
  moments) leaves the old tree whole; stale siblings of dead writers are cleaned by the next save.
"""
from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

import voxcore as vc
from voxcore import _replace
from voxcore.errors import TargetNotReplaceableError, UnsafePathError

SHAPE = (32, 32, 32)


def snapshot(root) -> dict:
    """Every path under root (and root itself) -> its bytes, '<dir>' or '-> link target'."""
    root = Path(root)
    out = {}
    for p in [root, *sorted(root.rglob("*"))] if root.is_dir() and not root.is_symlink() else [root]:
        rel = p.relative_to(root).as_posix() if p != root else "."
        if p.is_symlink():
            out[rel] = "-> " + os.readlink(p)
        elif p.is_dir():
            out[rel] = "<dir>"
        else:
            out[rel] = p.read_bytes()
    return out


def siblings(directory) -> list[str]:
    return sorted(n for n in os.listdir(directory) if ".vxnew-" in n or ".vxold-" in n)


def pyramid(make_volume, seed: int):
    return vc.build_pyramid(vc.from_array(make_volume(SHAPE, "u2", seed)), [2], "mean")


def assert_holds(path, pyr) -> None:
    img = vc.open(path)
    assert len(img.levels) == len(pyr.levels)
    for k, lv in enumerate(pyr.levels):
        np.testing.assert_array_equal(img.read(level=k), lv.data, err_msg=f"level {k}")


@pytest.fixture
def old(tmp_path, make_volume):
    """A voxcore OME-Zarr pyramid at tmp_path/t.zarr and the pyramid written there."""
    pyr = pyramid(make_volume, 1)
    vc.save(pyr, tmp_path / "t.zarr", chunks=16)
    return tmp_path / "t.zarr", pyr


def refused(exc, target, match, where=None, call=None):
    """Assert that overwriting target raises exc naming `match`, and nothing under `where` changed."""
    where = Path(where if where is not None else Path(target).parent)
    before = snapshot(where)
    call = call or (lambda: vc.save(vc.from_array(np.ones((4, 4), "u1")), target, overwrite=True))
    with pytest.raises(exc) as info:
        call()
    for m in [match] if isinstance(match, str) else match:
        assert m in str(info.value), str(info.value)
    assert snapshot(where) == before, "a refused overwrite changed the disk"
    return info.value


# ---- refused ------------------------------------------------------------------------------

def _entry_points(target):
    return {
        "save": lambda: vc.save(vc.from_array(np.ones((4, 4), "u1")), target, overwrite=True),
        "create": lambda: vc.create(target, (4, 4), "u1", overwrite=True),
        "create_array": lambda: vc.create_array(target, (4, 4), "u1", overwrite=True),
    }


@pytest.mark.parametrize("entry", ["save", "create", "create_array"])
def test_user_file_in_a_zarr_tree_is_refused(old, entry):
    path, pyr = old
    (path / "notes.txt").write_text("my notes")
    (path / "0" / "data.csv").write_text("1,2,3")
    e = refused(TargetNotReplaceableError, path, ["notes.txt", "0/data.csv"],
                call=_entry_points(path)[entry])
    assert isinstance(e, FileExistsError) and isinstance(e, vc.VoxcoreError)
    assert (path / "notes.txt").read_text() == "my notes"
    assert_holds(path, pyr)


def test_empty_zattrs_with_user_files_is_refused(tmp_path):
    d = tmp_path / "looks.zarr"
    d.mkdir()
    (d / ".zattrs").write_bytes(b"")
    (d / "notes.txt").write_text("keep")
    (d / "data.csv").write_text("1,2")
    refused(TargetNotReplaceableError, d, ["not a Zarr node", "notes.txt", "data.csv"])


def test_directory_without_zarr_metadata_is_refused(tmp_path):
    d = tmp_path / "plain"
    (d / "sub").mkdir(parents=True)
    (d / "a.txt").write_text("a")
    (d / "sub" / "b.txt").write_text("b")
    refused(TargetNotReplaceableError, d, ["a.txt", "sub/"])


def test_non_zarr_subdirectory_and_symlink_inside_are_refused(old, tmp_path):
    path, _ = old
    (path / "backup").mkdir()
    (path / "backup" / "x.bin").write_bytes(b"\0" * 10)
    os.symlink(tmp_path, path / "0" / "escape")
    refused(TargetNotReplaceableError, path, ["backup/ (not a Zarr node", "0/escape (symbolic link)"])


def test_the_list_of_offenders_is_capped(tmp_path):
    d = tmp_path / "many"
    d.mkdir()
    for i in range(30):
        (d / f"f{i:02d}.txt").write_text("x")
    e = refused(TargetNotReplaceableError, d, ["f00.txt", ", ..."])
    assert "f20.txt" not in str(e)


def test_plain_file_target_is_refused(tmp_path):
    f = tmp_path / "data.csv"
    f.write_text("1,2,3\n")
    refused(TargetNotReplaceableError, f, ["data.csv", "is a file"])


def test_dot_is_refused_in_a_child_process(tmp_path, run_isolated):
    """The reported bug: save(a, ".", overwrite=True) emptied the working directory."""
    (tmp_path / "keep.txt").write_text("precious")
    vc.save(vc.from_array(np.ones((4, 4), "u1")), tmp_path / "x.zarr")
    before = snapshot(tmp_path)
    out = run_isolated("""
        import numpy as np, voxcore as vc
        try:
            vc.save(vc.from_array(np.ones((4, 4), "u1")), ".", overwrite=True)
        except vc.UnsafePathError as e:
            print("refused:", e)
    """)
    assert "refused:" in out and "current directory" in out
    after = snapshot(tmp_path)
    assert {k: v for k, v in after.items() if not k.startswith("isolated_")} == \
           {k: v for k, v in before.items() if not k.startswith("isolated_")}


def test_dot_and_dotdot_are_refused_even_inside_a_zarr_tree(old, monkeypatch):
    path, _ = old
    monkeypatch.chdir(path)
    refused(UnsafePathError, ".", "'.'", where=path)
    monkeypatch.chdir(path / "0")
    refused(UnsafePathError, "..", "'..'", where=path)


def test_dotdot_after_a_child_is_refused(tmp_path, make_volume, monkeypatch):
    """"parent/child.zarr/.." used to delete parent."""
    vc.save(pyramid(make_volume, 2), tmp_path / "parent", chunks=16)
    vc.save(pyramid(make_volume, 3), tmp_path / "parent" / "child.zarr", chunks=16)
    monkeypatch.chdir(tmp_path)
    refused(UnsafePathError, "parent/child.zarr/..", "contains '..'", where=tmp_path)
    refused(UnsafePathError, str(tmp_path / "parent" / "child.zarr" / ".."), "contains '..'",
            where=tmp_path)


@pytest.mark.parametrize("trailing", ["", "/"])
def test_symlink_target_is_refused(old, tmp_path, trailing):
    path, pyr = old
    link = tmp_path / "link.zarr"
    os.symlink(path, link)
    refused(UnsafePathError, str(link) + trailing, "symbolic link", where=tmp_path)
    assert link.is_symlink()
    assert_holds(path, pyr)


def test_ancestor_of_the_working_directory_is_refused(old, tmp_path, monkeypatch):
    path, pyr = old
    monkeypatch.chdir(path / "0" / "c")
    refused(UnsafePathError, str(path), "working directory", where=tmp_path)
    refused(UnsafePathError, str(path / "0"), "working directory", where=tmp_path)
    assert_holds(path, pyr)


def test_paths_that_resolve_elsewhere_are_refused(old, tmp_path):
    """A symlinked component that leads up: the target resolves to an ancestor of itself."""
    path, _ = old
    os.symlink("..", path / "0" / "up")  # t.zarr/0/up -> t.zarr
    refused(UnsafePathError, str(path / "0" / "up" / "0"), "an ancestor of the path itself",
            where=tmp_path)


def test_a_symlinked_parent_directory_is_fine(tmp_path, make_volume):
    """Only the target itself must not be a link: data disks are often reached through one."""
    (tmp_path / "disk").mkdir()
    os.symlink(tmp_path / "disk", tmp_path / "data")
    vc.save(pyramid(make_volume, 1), tmp_path / "data" / "x.zarr", chunks=16)
    new = pyramid(make_volume, 2)
    vc.save(new, tmp_path / "data" / "x.zarr", chunks=16, overwrite=True)
    assert_holds(tmp_path / "disk" / "x.zarr", new)
    assert (tmp_path / "data").is_symlink() and siblings(tmp_path / "disk") == []


def test_root_and_home_are_refused():
    with pytest.raises(UnsafePathError, match="filesystem root"):
        _replace.check_replaceable("/")
    with pytest.raises(UnsafePathError, match="home directory|working directory"):
        _replace.check_replaceable(os.path.expanduser("~"))


def _store_items(store) -> dict:
    from voxcore._stores import _sync
    from zarr.core.buffer import default_buffer_prototype

    async def items():
        return {k: (await store.get(k, prototype=default_buffer_prototype())).to_bytes()
                async for k in store.list()}
    return _sync(items())


def test_store_prefix_with_a_foreign_key_is_refused(make_volume, quiet_zarr):
    """A zarr-python store is still cleared by deletion, but only when it holds only Zarr keys."""
    from voxcore._stores import _sync
    from zarr.core.buffer import default_buffer_prototype

    store = zarr.storage.MemoryStore()
    with quiet_zarr():
        sub = zarr.open_group(store, mode="w").create_group("img")
    vc.save(pyramid(make_volume, 4), sub, chunks=16, overwrite=True)
    _sync(store.set("img/0/notes.txt", default_buffer_prototype().buffer.from_bytes(b"mine")))
    before = _store_items(store)
    for call in (lambda: vc.save(pyramid(make_volume, 5), sub, overwrite=True),
                 lambda: vc.create_array(store, (4,), "u1", path="img", overwrite=True)):
        with pytest.raises(TargetNotReplaceableError, match="0/notes.txt"):
            call()
        assert _store_items(store) == before
    _sync(store.delete("img/0/notes.txt"))
    new = pyramid(make_volume, 5)
    vc.save(new, sub, chunks=16, overwrite=True)
    assert_holds(zarr.open_group(store, path="img", mode="r"), new)


# ---- accepted -----------------------------------------------------------------------------

@pytest.mark.parametrize("first,second", [("0.5", "0.5"), ("0.4", "0.4"), ("0.4", "0.5"),
                                          ("0.5", "0.4")])
def test_overwrite_voxcore_pyramid(tmp_path, make_volume, first, second):
    path = tmp_path / "p.ome.zarr"
    labels = {"cells": (make_volume(SHAPE, "u2", 7) % 5).astype(np.uint16)}
    vc.save(pyramid(make_volume, 1), path, version=first, chunks=16, labels=labels)
    (path / "0" / ".vxlock").write_bytes(b"")  # voxcore's own lock file belongs to the tree
    new = pyramid(make_volume, 2)
    assert vc.save(new, path, version=second, chunks=8, overwrite=True) == str(path)
    assert_holds(path, new)
    assert not (path / "labels").exists(), "nothing of the old tree stays"
    assert not (path / ("zarr.json" if second == "0.4" else ".zgroup")).exists()
    assert siblings(tmp_path) == []


@pytest.mark.parametrize("fmt", [2, 3])
def test_overwrite_zarr_python_hierarchy(tmp_path, make_volume, quiet_zarr, fmt):
    path = tmp_path / "zp.zarr"
    with quiet_zarr():
        root = zarr.open_group(str(path), mode="w", zarr_format=fmt)
        a = root.create_array("data", shape=(20, 20), chunks=(8, 8), dtype="u2")
        a[...] = make_volume((20, 20), "u2", 3)
        sub = root.create_group("nested").create_array("x", shape=(10,), chunks=(3,), dtype="i4")
        sub[...] = np.arange(10)
        dotted = {"chunk_key_encoding": {"name": "default", "separator": "."}} if fmt == 3 else {}
        flat = zarr.create_array(str(path / "flat"), shape=(6, 6), chunks=(2, 2), dtype="u1",
                                 zarr_format=fmt, **dotted)  # chunk files "c.0.1" / "0.1"
        flat[...] = 1
    new = pyramid(make_volume, 5)
    vc.save(new, path, chunks=16, overwrite=True)
    assert_holds(path, new)
    assert sorted(os.listdir(path)) == ["0", "1", "zarr.json"]
    assert siblings(tmp_path) == []


@pytest.mark.parametrize("v04", [False, True])
def test_overwrite_ome_zarr_py_image(tmp_path, make_volume, quiet_zarr, v04):
    writer = pytest.importorskip("ome_zarr.writer")
    from ome_zarr.format import FormatV04

    fmt = {"fmt": FormatV04()} if v04 else {}
    path = tmp_path / "omezarrpy.zarr"
    with quiet_zarr():
        root = zarr.open_group(str(path), mode="w", zarr_format=2 if v04 else 3)
        writer.write_image(make_volume(SHAPE, "u2", 6), root, axes="zyx", scale_factors=[2],
                           storage_options={"chunks": (16, 16, 16)}, **fmt)
        writer.write_labels((make_volume(SHAPE, "u2", 8) % 3).astype("u1"), root, name="seg", axes="zyx",
                            scale_factors=[2], **fmt)
    assert any(p.is_file() and p.name[0].isdigit() for p in path.rglob("*")), "chunks were written"
    new = pyramid(make_volume, 9)
    vc.save(new, path, version="0.4", chunks=16, overwrite=True)
    assert_holds(path, new)
    assert siblings(tmp_path) == []


def test_create_array_overwrite_replaces_an_array(tmp_path, make_volume):
    path = tmp_path / "a.zarr"
    vc.create_array(path, (20, 20), "u2", chunks=(8, 8)).write(make_volume((20, 20), "u2", 1))
    img = vc.create_array(path, (12, 12), "f4", chunks=(4, 4), zarr_format=2, overwrite=True)
    img.write(np.full((12, 12), 2.5, "f4"))
    back = vc.open(path)
    assert back.zarr_format == 2 and back.shape == (12, 12)
    np.testing.assert_array_equal(back.read(), np.full((12, 12), 2.5, "f4"))
    assert not (path / "zarr.json").exists() and not (path / "c").exists()
    assert siblings(tmp_path) == []


def test_create_overwrite_then_stream_planes(old, make_volume):
    path, _ = old
    w = vc.create(path, (8, 16, 16), "u2", chunks=8, pyramid=[2], overwrite=True)
    assert sorted(os.listdir(path)) == ["0", "1", "zarr.json"], "the new metadata is in place at once"
    vol = make_volume((8, 16, 16), "u2", 4)
    with w:
        for z in range(8):
            w.write_plane(vol[z], z=z)
    np.testing.assert_array_equal(vc.open(path).read(), vol)
    assert siblings(path.parent) == []


def test_empty_directory_and_absent_target_are_accepted(tmp_path, make_volume):
    new = pyramid(make_volume, 3)
    (tmp_path / "empty.zarr").mkdir()
    vc.save(new, tmp_path / "empty.zarr", chunks=16, overwrite=True)
    vc.save(new, tmp_path / "deep" / "er" / "new.zarr", chunks=16, overwrite=True)
    assert_holds(tmp_path / "empty.zarr", new)
    assert_holds(tmp_path / "deep" / "er" / "new.zarr", new)
    assert siblings(tmp_path) == [] and siblings(tmp_path / "deep" / "er") == []


def test_without_renameat2_the_fallback_swaps_too(old, make_volume, monkeypatch):
    path, _ = old
    monkeypatch.setattr(_replace, "_renameat2", lambda src, dst, flags: False)
    new = pyramid(make_volume, 8)
    vc.save(new, path, chunks=16, overwrite=True)
    vc.save(new, path.parent / "fresh.zarr", chunks=16)
    assert_holds(path, new)
    assert_holds(path.parent / "fresh.zarr", new)
    assert siblings(path.parent) == []


def test_exchange_works_here(tmp_path):
    """Report (not require) whether this kernel and filesystem exchange atomically."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "A").write_text("")
    done = _replace._renameat2(str(tmp_path / "a"), str(tmp_path / "b"), _replace._RENAME_EXCHANGE)
    if sys.platform.startswith("linux"):
        assert done and (tmp_path / "b" / "A").exists()


# ---- failures -----------------------------------------------------------------------------

def test_failure_mid_save_leaves_the_old_tree(old, make_volume, monkeypatch):
    path, pyr = old
    before = snapshot(path)
    from voxcore.images import zarr as zarr_images

    real_write_all = zarr_images.write_all
    calls = []

    def failing_write_all(jobs, *run):
        calls.append(len(jobs))
        real_write_all(jobs[:1], *run)  # level 0 is written, then the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(zarr_images, "write_all", failing_write_all)
    with pytest.raises(OSError) as info:
        vc.save(pyramid(make_volume, 2), path, chunks=16, overwrite=True)
    assert info.value.errno == errno.ENOSPC and calls == [2]
    assert snapshot(path) == before
    assert siblings(path.parent) == []
    monkeypatch.undo()
    assert_holds(path, pyr)


def test_failure_in_create_leaves_the_old_tree(old, monkeypatch):
    from voxcore.writers import target as target_module

    path, pyr = old
    before = snapshot(path)

    def fail(*args, **kwargs):
        raise OSError(errno.EIO, "injected")

    monkeypatch.setattr(target_module.Target, "group", fail)
    with pytest.raises(OSError, match="injected"):
        vc.create(path, (8, 8), "u1", overwrite=True)
    assert snapshot(path) == before and siblings(path.parent) == []


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_siblings_are_removed_and_live_ones_kept(old, make_volume):
    path, _ = old
    parent = path.parent
    dead = parent / f".t.zarr.vxnew-{_dead_pid()}-0001"
    dead_old = parent / f".t.zarr.vxold-{_dead_pid()}-0002"
    other_name = parent / f".other.zarr.vxnew-{_dead_pid()}-0003"  # another target's sibling
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = parent / f".t.zarr.vxnew-{sleeper.pid}-0004"
        for d in (dead, dead_old, other_name, live):
            (d / "0").mkdir(parents=True)
            (d / "0" / "zarr.json").write_text("{}")
        vc.save(pyramid(make_volume, 2), path, chunks=16, overwrite=True)
        assert not dead.exists() and not dead_old.exists()
        assert live.exists() and other_name.exists()
        vc.save(pyramid(make_volume, 2), path.parent / "other.zarr", chunks=16)
        assert not other_name.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


_KILL_CHILD = """
import sys
import numpy as np
import voxcore as vc

path, a, b = sys.argv[1], np.load(sys.argv[2]), np.load(sys.argv[3])
pyrs = [(vc.build_pyramid(vc.from_array(x), [2], "mean"), v) for x, v in ((a, "0.5"), (b, "0.4"))]
for pyr, version in pyrs:  # warm up elsewhere (lazy imports), so the kills land in real saves
    vc.save(pyr, path + ".warm", version=version, chunks=16, overwrite=True)
print("ready", flush=True)
i = 0
while True:
    pyr, version = pyrs[i % 2]
    vc.save(pyr, path, version=version, chunks=16, overwrite=True)
    i += 1
"""


def test_sigkill_mid_overwrite_leaves_old_or_new(tmp_path, make_volume):
    """>= 50 kills at random moments of a child that overwrites the target, alternating two
    pyramids (v3 and v2): the target is always exactly one of them, every level readable."""
    a, b = make_volume(SHAPE, "u2", 11), make_volume(SHAPE, "u2", 12)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    want = {"0.5": vc.build_pyramid(vc.from_array(a), [2], "mean"),
            "0.4": vc.build_pyramid(vc.from_array(b), [2], "mean")}
    target = tmp_path / "t.zarr"
    vc.save(want["0.5"], target, chunks=16)
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(_KILL_CHILD))
    env = dict(os.environ, VOXCORE_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(Path(vc.__file__).parents[1]),
                                                        os.environ.get("PYTHONPATH")])))
    rng = random.Random(1234)
    seen = {"0.4": 0, "0.5": 0}
    mid = 0
    start = time.monotonic()
    for run in range(50):
        child = subprocess.Popen([sys.executable, str(script), str(target), str(tmp_path / "a.npy"),
                                  str(tmp_path / "b.npy")], stdout=subprocess.PIPE, env=env, text=True)
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.06))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        assert child.returncode == -signal.SIGKILL
        mid += any(f"-{child.pid}-" in n for n in siblings(tmp_path))  # killed inside a save
        img = vc.open(target)
        version = img.ome["version"]
        seen[version] += 1
        top = set(os.listdir(target))
        tops = {"0.5": {"0", "1", "zarr.json"}, "0.4": {"0", "1", ".zgroup", ".zattrs"}}
        assert top == tops[version], f"run {run}: a mixed tree {sorted(top)}"
        assert_holds(target, want[version])
    assert seen["0.4"] and seen["0.5"], f"kills landed on one version only: {seen}"
    assert mid >= 10, f"only {mid} of 50 kills landed inside a save"
    vc.save(want["0.5"], target, chunks=16, overwrite=True)  # cleans the dead children's siblings
    assert siblings(tmp_path) == []
    assert time.monotonic() - start < 120


def test_disk_full_on_a_real_tmpfs(small_tmpfs, make_volume):
    mnt = small_tmpfs("2m")
    prior = pyramid(make_volume, 1)
    vc.save(prior, mnt / "prior.zarr", chunks=16)
    before = snapshot(mnt / "prior.zarr")
    # 3 MiB of incompressible data, uncompressed: cannot fit in 2 MiB
    big = np.random.default_rng(0).integers(0, 255, (48, 256, 256), dtype=np.uint8)
    with pytest.raises(OSError) as info:
        vc.save(vc.build_pyramid(vc.from_array(big), [2], "mean"), mnt / "prior.zarr", chunks=32,
                codec=None, overwrite=True)
    assert info.value.errno == errno.ENOSPC, info.value
    assert snapshot(mnt / "prior.zarr") == before
    assert_holds(mnt / "prior.zarr", prior)
    assert os.listdir(mnt) == ["prior.zarr"], "no sibling is left"
