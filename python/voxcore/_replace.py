"""overwrite=True without losing data: decide whether a target may be replaced, and replace it
by building the new tree beside it and swapping it in with one rename.

A target may be replaced only when it is absent, an empty directory, or holds nothing but a
Zarr hierarchy: metadata documents, the chunk (shard) keys of its arrays, nested groups and
arrays of the same, and voxcore's own temp and lock files. Anything else (a user's file, a
directory that is not a Zarr node, a symbolic link) is named in the error and nothing is touched.
Paths that could name more than the user meant are refused first: ``.``, any ``..``, a symbolic
link, the filesystem root, a home directory, a mount point, the working directory or one of its
ancestors.

:class:`Beside` builds into ``.NAME.vxnew-PID-RAND`` next to NAME and :meth:`Beside.commit`
exchanges the two directories atomically (Linux ``renameat2(RENAME_EXCHANGE)``), so NAME always
holds either the whole old tree or the whole new one, also when the process is killed.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import platform
import re
import secrets
import shutil
import stat
import sys
from collections.abc import Callable

from ._resources import LOCK_FILE, fsync_dir, stale_temp_files, temp_owner
from ._stores import ZarrStoreAdapter, _sync
from .errors import TargetNotReplaceableError, UnsafePathError
from .formats.zarr import MAX_METADATA_BYTES, METADATA_FILES

MAX_LISTED = 10
_CHUNK_KEY = re.compile(r"(?:c|\d+)(?:\.\d+)*\Z")  # v3 "c", "c.0.1"; v2 "0", "0.1.2"
_DIGITS = re.compile(r"\d+\Z")
_RENAME_NOREPLACE, _RENAME_EXCHANGE = 1, 2
_SYS_RENAMEAT2 = {"x86_64": 316, "aarch64": 276}


# ---- deciding ---------------------------------------------------------------------------

class _Found:
    """Offending relative paths, up to MAX_LISTED + 1 (the walk stops once there are more)."""

    def __init__(self):
        self.items: list[str] = []

    @property
    def full(self) -> bool:
        return len(self.items) > MAX_LISTED

    def add(self, what: str) -> None:
        if not self.full:
            self.items.append(what)


def _join(rel: str, name: str) -> str:
    return f"{rel}/{name}" if rel else name


def _node_kind(rel: str, files: set[str], read: Callable[[str], bytes | None],
               found: _Found) -> str | None:
    """'array', 'group', None (not a Zarr node) or 'bad' (unreadable zarr.json, reported)."""
    if ".zarray" in files:
        return "array"
    if ".zgroup" in files:
        return "group"
    if "zarr.json" not in files:
        return None
    key = _join(rel, "zarr.json")
    try:
        raw = read(key)
        kind = json.loads(raw).get("node_type") if raw is not None else None
    except (OSError, ValueError, AttributeError):
        kind = None
    if kind not in ("array", "group"):
        found.add(f"{key} (not Zarr v3 metadata)")
        return "bad"
    return kind


def _check_dir(rel: str, entries, read, found: _Found, top: bool = False) -> None:
    """Walk one directory of the tree: a Zarr node, or at the top an empty directory."""
    items = dict(entries(rel))
    kind = _node_kind(rel, {n for n, k in items.items() if k == "file"}, read, found)
    if kind == "bad":
        return
    if kind is None:
        if not top:
            found.add(f"{rel}/ (not a Zarr node: no zarr.json, .zarray or .zgroup)")
            return
        if not items:
            return  # an empty directory: nothing to lose
        found.add("./ (not a Zarr node: no zarr.json, .zarray or .zgroup)")
    for name in sorted(items):
        if found.full:
            return
        k, path = items[name], _join(rel, name)
        if temp_owner(name) is not None:
            continue  # voxcore's own temp files and build directories
        if k == "dir" and kind == "array" and (name == "c" or _DIGITS.match(name)):
            _check_chunk_dir(path, entries, found)
        elif k == "dir":
            _check_dir(path, entries, read, found)
        elif k == "file" and (name in METADATA_FILES or (kind == "array" and (
                name == LOCK_FILE or _CHUNK_KEY.match(name)))):
            continue
        else:
            found.add(_describe(path, k))


def _check_chunk_dir(rel: str, entries, found: _Found) -> None:
    """A directory of '/'-separated chunk keys: numeric names only, all the way down."""
    for name, k in sorted(entries(rel)):
        if found.full:
            return
        path = _join(rel, name)
        if temp_owner(name) is not None or (k in ("file", "dir") and _DIGITS.match(name)):
            if k == "dir":
                _check_chunk_dir(path, entries, found)
        else:
            found.add(_describe(path, k))


def _describe(path: str, kind: str) -> str:
    if kind == "link":
        return f"{path} (symbolic link)"
    if kind == "other":
        return f"{path} (not a regular file or directory)"
    return f"{path}/" if kind == "dir" else path


def _local_entries(root: str):
    def entries(rel: str):
        out = []
        with os.scandir(os.path.join(root, rel) if rel else root) as it:
            for e in it:
                if e.is_symlink():
                    k = "link"
                elif e.is_dir(follow_symlinks=False):
                    k = "dir"
                elif e.is_file(follow_symlinks=False):
                    k = "file"
                else:
                    k = "other"
                out.append((e.name, k))
        return out
    return entries


def _local_read(root: str):
    def read(rel: str) -> bytes | None:
        with open(os.path.join(root, rel), "rb") as f:
            return f.read(MAX_METADATA_BYTES + 1)
    return read


def _refuse(label: str, found: _Found) -> None:
    if found.items:
        listed = ", ".join(found.items[:MAX_LISTED]) + (", ..." if found.full else "")
        raise TargetNotReplaceableError(
            f"overwrite=True refused: {label} holds more than a Zarr hierarchy, so nothing was "
            f"removed (in the way: {listed}); remove these or pick another target")


def _within(path: str, ancestor: str) -> bool:
    return path == ancestor or path.startswith(ancestor.rstrip("/") + "/")


def _homes() -> set[str]:
    try:
        import pwd
    except ImportError:  # not POSIX
        return set()
    return {os.path.realpath(p.pw_dir) for p in pwd.getpwall() if p.pw_dir}


def _check_path(root: str) -> None:
    """Refuse paths that could name more than a user meant to replace (UnsafePathError)."""
    def unsafe(why: str):
        raise UnsafePathError(f"overwrite=True refused: {root!r} {why}; nothing was changed")

    parts = [p for p in root.split(os.sep) if p]
    if not parts or parts[-1] == ".":
        unsafe("names the current directory or the filesystem root")
    if ".." in parts:
        unsafe("contains '..' (pass the path you mean without it, e.g. os.path.abspath(path))")
    bare = root.rstrip(os.sep)  # "link/" would follow the link
    if os.path.islink(bare):
        unsafe(f"is a symbolic link (to {os.readlink(bare)!r}); pass the directory it points to")
    real = os.path.realpath(root)
    try:
        cwd = os.path.realpath(os.getcwd())
    except OSError:
        cwd = None
    home = os.path.realpath(os.path.expanduser("~"))
    if real == "/" or (cwd is not None and _within(cwd, real)):
        unsafe(f"resolves to {real}, the working directory or one of its ancestors")
    lexical = os.path.abspath(bare)
    if real != lexical and _within(lexical, real):
        unsafe(f"resolves to {real}, an ancestor of the path itself (through a symbolic link)")
    if _within(home, real) or real in _homes():
        unsafe(f"resolves to {real}, a home directory or one of its ancestors")
    if os.path.ismount(real):
        unsafe(f"resolves to {real}, a mount point")


def check_replaceable(root: str) -> None:
    """Raise unless ``root`` (which exists) may be removed by overwrite=True.

    UnsafePathError for paths that could name more than meant (see the module docstring);
    TargetNotReplaceableError, listing the first offending entries, when it is a file or holds
    anything that is not part of a Zarr hierarchy. Reads only; never changes anything.
    """
    _check_path(root)
    if not os.path.isdir(root):
        raise TargetNotReplaceableError(
            f"overwrite=True refused: {root} is a file, not a Zarr directory; nothing was removed")
    found = _Found()
    _check_dir("", _local_entries(root), _local_read(root), found, top=True)
    _refuse(root, found)


def check_store_prefix(store, prefix: str, label: str) -> None:
    """Raise TargetNotReplaceableError when the keys under ``prefix`` of a zarr-python store are
    not all Zarr metadata and chunk keys (so deleting the prefix would lose something else)."""

    async def keys():
        listing = store.list_prefix(prefix + "/") if prefix else store.list()
        return [k async for k in listing]

    tree: dict = {}
    for key in _sync(keys()):
        parts = (key[len(prefix) + 1:] if prefix else key).split("/")
        node = tree
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                break
        else:
            node.setdefault(parts[-1], None)

    def entries(rel: str):
        node = tree
        for p in rel.split("/") if rel else ():
            node = node[p]
        return [(n, "file" if v is None else "dir") for n, v in node.items()]

    found = _Found()
    _check_dir("", entries, ZarrStoreAdapter(store, prefix).get, found, top=True)
    _refuse(label, found)


# ---- swapping ---------------------------------------------------------------------------

_libc = None


def _renameat2(src: str, dst: str, flags: int) -> bool:
    """Linux renameat2(2); False when this kernel or filesystem cannot (the caller falls back)."""
    global _libc
    if not sys.platform.startswith("linux"):
        return False
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    at_fdcwd = -100
    args = (ctypes.c_int(at_fdcwd), os.fsencode(src), ctypes.c_int(at_fdcwd), os.fsencode(dst),
            ctypes.c_uint(flags))
    fn = getattr(_libc, "renameat2", None)
    if fn is not None:
        rc = fn(*args)
    elif platform.machine() in _SYS_RENAMEAT2:
        _libc.syscall.restype = ctypes.c_long
        rc = _libc.syscall(ctypes.c_long(_SYS_RENAMEAT2[platform.machine()]), *args)
    else:
        return False
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL):
        return False
    raise OSError(err, os.strerror(err), src, None, dst)


def remove_stale(parent: str, name: str) -> None:
    """Remove ``.NAME.vxnew-*`` / ``.NAME.vxold-*`` left in ``parent`` by writers that are gone."""
    for entry in stale_temp_files(parent):
        if entry.startswith((f".{name}.vxnew-", f".{name}.vxold-")):
            path = os.path.join(parent, entry)
            try:
                if stat.S_ISDIR(os.lstat(path).st_mode):
                    shutil.rmtree(path, ignore_errors=True)
            except OSError:  # another writer removed it first
                pass


class Beside:
    """A new tree for ``root``, built in a sibling directory (``new``) and put in place by
    :meth:`commit`; :meth:`abort` (a no-op after commit) removes it and leaves ``root`` as it was.

    The caller has decided that ``root`` may go (overwrite=True) when it exists; this checks
    that it may (:func:`check_replaceable`) before anything is created, then removes stale
    siblings of dead writers.
    """

    def __init__(self, root: str, durable: bool = True):
        self.replacing = os.path.lexists(root)
        if self.replacing:
            check_replaceable(root)
        self.root, self.durable = root.rstrip(os.sep), durable
        name = os.path.basename(self.root)
        if name in ("", ".", ".."):
            raise UnsafePathError(f"cannot write a tree at {root!r}: name it (e.g. out.zarr)")
        self.parent, self.name = os.path.dirname(self.root) or ".", name
        os.makedirs(self.parent, exist_ok=True)
        remove_stale(self.parent, name)
        self.new = self._sibling("vxnew")
        os.mkdir(self.new)
        self._done = False

    def _sibling(self, kind: str) -> str:
        return os.path.join(self.parent, f".{self.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}")

    def commit(self) -> None:
        """Put the new tree at ``root`` in one step and remove the old one.

        With renameat2(RENAME_EXCHANGE) the two directories trade places atomically. Without it
        (non-Linux, or a filesystem that refuses the flag) the old tree is renamed aside and the
        new one renamed in: between those two renames ``root`` is briefly absent (the old tree is
        then at ``.NAME.vxold-PID-...``, which the next save to NAME removes once PID is gone).
        """
        if self.durable:
            fsync_dir(self.new)
        if not self.replacing:
            if not _renameat2(self.new, self.root, _RENAME_NOREPLACE):
                if os.path.lexists(self.root):
                    raise FileExistsError(errno.EEXIST, "appeared while the save ran", self.root)
                os.rename(self.new, self.root)
            old = None
        elif _renameat2(self.new, self.root, _RENAME_EXCHANGE):
            old = self._sibling("vxold")  # the sibling now holds the old tree: say so
            try:
                os.rename(self.new, old)
            except OSError:
                old = self.new
        else:
            old = self._sibling("vxold")
            os.rename(self.root, old)
            try:
                os.rename(self.new, self.root)
            except BaseException:
                os.rename(old, self.root)
                raise
        self._done = True
        if self.durable:
            fsync_dir(self.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def abort(self) -> None:
        """Remove the half-built tree (nothing happens after a commit)."""
        if not self._done:
            self._done = True
            shutil.rmtree(self.new, ignore_errors=True)


def replace_now(root: str, build: Callable[[str], None], durable: bool = True) -> None:
    """Build a fresh tree for ``root`` with ``build(directory)`` beside it and swap it in now."""
    b = Beside(root, durable)
    try:
        build(b.new)
        b.commit()
    finally:
        b.abort()
