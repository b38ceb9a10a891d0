"""The trees ``voxcore check`` walks, behind one small interface: list a directory's entries,
read a metadata document (refused over MAX_METADATA_BYTES), tell a directory from a file.

Keys are '/'-joined paths relative to the tree's root ("" is the root). LocalTree reads a local
directory with os calls; FsspecTree a URL whose directories can be listed, through the
FsspecStore that voxcore._urls.resolve returns, each request bounded and retried by the store's
RequestPolicy and its failures raised as ZarrStoreAdapter raises them (PermissionError for a
refusal, StoreError for anything else); a key that is not there is FileNotFoundError.
"""

from __future__ import annotations

import errno
import os
import posixpath
from dataclasses import dataclass
from typing import Any

from ._files import RemoteFile
from ._stores import ZarrStoreAdapter
from ._urls import is_url, resolve
from .errors import LimitExceededError, UnsupportedError
from .formats.zarr import MAX_METADATA_BYTES

# fsspec protocols without directory listings: a tree behind them cannot be walked.
UNLISTABLE = frozenset({"http", "https"})


@dataclass(frozen=True)
class Entry:
    """One name in a directory: is_dir for a directory (never a symlink to one); size in
    bytes where the listing gives it (remote trees), else None."""

    name: str
    is_dir: bool
    size: int | None = None


def _too_large(size: int) -> LimitExceededError:
    return LimitExceededError(f"{size} bytes, over the {MAX_METADATA_BYTES}-byte metadata limit")


def _join(rel: str, name: str) -> str:
    return f"{rel}/{name}" if rel else name


class LocalTree:
    """A local directory. Directory symlinks are listed as non-directories (never followed);
    a document is read through its link, as a reader opens it."""

    def __init__(self, root: str):
        self.root = root

    def label(self) -> str:
        """The root, for messages."""
        return self.root

    def _full(self, rel: str) -> str:
        return os.path.join(self.root, rel) if rel else self.root

    def is_dir(self, rel: str = "") -> bool:
        """Whether rel is a directory (the root: also through a symlink)."""
        return os.path.isdir(self._full(rel))

    def list(self, rel: str) -> list[Entry]:
        """rel's entries by name; OSError when it cannot be listed."""
        with os.scandir(self._full(rel)) as it:
            return sorted((Entry(e.name, e.is_dir(follow_symlinks=False)) for e in it), key=lambda e: e.name)

    def read(self, key: str, size: int | None = None) -> bytes:
        """key's bytes: LimitExceededError over MAX_METADATA_BYTES (before reading), OSError
        when it cannot be read. size is not needed here (it is looked up)."""
        full = self._full(key)
        size = os.stat(full).st_size
        if size > MAX_METADATA_BYTES:
            raise _too_large(size)
        with open(full, "rb") as f:
            raw = f.read(MAX_METADATA_BYTES + 1)
        if len(raw) > MAX_METADATA_BYTES:  # it grew since
            raise _too_large(len(raw))
        return raw

    def locate(self, rel: str) -> tuple[Any, str | None]:
        """(source, path) that zarr.open_group and voxcore's openers take for the node at rel."""
        return self._full(rel), None


class FsspecTree:
    """A listable URL's tree: an FsspecStore (its ``.fs`` lists, the store reads) under an
    optional key prefix."""

    def __init__(self, store: Any, prefix: str = ""):
        self.store = store
        self.prefix = prefix.strip("/")
        self._adapter = ZarrStoreAdapter(store, self.prefix)
        self._fs = store.fs
        base = store.path.rstrip("/")
        self._base = f"{base}/{self.prefix}" if self.prefix else base

    def label(self) -> str:
        """The tree's URL, for messages."""
        return self._adapter.label()

    def _path(self, rel: str) -> str:
        return f"{self._base}/{rel}" if rel else self._base

    def _missing(self, rel: str) -> FileNotFoundError:
        return FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), _join(self.label(), rel))

    def _call(self, make, what: str, rel: str) -> Any:
        """make()'s result as one request through the adapter, as its reads go (None: not
        there)."""
        return self._adapter.call(make, what, _join(self.prefix, rel))

    def is_dir(self, rel: str = "") -> bool:
        """Whether rel is a directory (a prefix with keys below it, for an object store)."""
        path = self._path(rel)
        info = self._call(lambda: self._fs._info(path), "look up", rel)
        return info is not None and info.get("type") == "directory"

    def list(self, rel: str) -> list[Entry]:
        """rel's entries by name, listed afresh (not from fsspec's listings cache)."""
        path = self._path(rel)
        self._fs.invalidate_cache(path)
        found = self._call(lambda: self._fs._ls(path, detail=True), "list", rel)
        if found is None:
            raise self._missing(rel)
        entries = []
        for d in found:
            name = d["name"].rstrip("/")
            if name == path.rstrip("/"):  # a file's own listing, or a directory marker object
                continue
            size = d.get("size")
            entries.append(Entry(posixpath.basename(name), d.get("type") == "directory",
                                 size if isinstance(size, int) else None))
        return sorted(entries, key=lambda e: e.name)

    def read(self, key: str, size: int | None = None) -> bytes:
        """key's bytes: LimitExceededError over MAX_METADATA_BYTES (before reading, by the size
        the listing gave or a size request), FileNotFoundError when it is not there."""
        if size is None:
            size = self._adapter.size(key)
            if size is None:
                raise self._missing(key)
        if size > MAX_METADATA_BYTES:
            raise _too_large(size)
        if size:  # at most one byte over the limit, whatever the object holds by now
            [raw] = self._adapter.get_many([(key, "range", 0, MAX_METADATA_BYTES + 1)])
        else:  # an empty object has no byte range (S3 answers 416)
            raw = self._adapter.get(key)
        if raw is None:
            raise self._missing(key)
        if len(raw) > MAX_METADATA_BYTES:  # it grew since
            raise _too_large(len(raw))
        return raw

    def locate(self, rel: str) -> tuple[Any, str | None]:
        """(source, path) that zarr.open_group and voxcore's openers take for the node at rel."""
        return self.store, _join(self.prefix, rel) or None


def open_tree(path: Any, storage_options: dict | None = None) -> LocalTree | FsspecTree:
    """The tree at path: a local directory (or file:// URL) or a URL fsspec can list, opened
    with storage_options. A URL of a protocol without listings (http, https) is UnsupportedError;
    storage_options= with a local path is InvalidArgumentError."""
    path = os.fspath(path)
    if is_url(path):
        scheme = path.split("://", 1)[0].lower()
        if scheme in UNLISTABLE:
            raise UnsupportedError(
                f"check and validate read a local tree or a URL whose directories can be listed (s3://, "
                f"gs://, az://, memory://, ...): {scheme}:// has no directory listings, so the tree's files "
                f"cannot be found (copy it to a local directory first): {path}")
    target = resolve(path, storage_options)
    if isinstance(target, str):
        return LocalTree(target)
    if isinstance(target, RemoteFile):  # a URL named like a file (NIfTI): walked as what it is
        return FsspecTree(target.adapter.store, target.name)
    return FsspecTree(target)
