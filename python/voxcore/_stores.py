"""Adapting zarr-python store objects into a core CallbackStore (bytes fetched in batches)."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

from ._core import CallbackStore, FileStore, check_key
from .errors import CorruptDataError, IgnoredRangeWarning, LimitExceededError, StoreError, VoxcoreError
from .formats.zarr import MAX_METADATA_BYTES


def is_zarr_store(obj: Any) -> bool:
    try:
        from zarr.abc.store import Store
    except ImportError:  # pragma: no cover - zarr is a dependency
        return False
    return isinstance(obj, Store)


def _sync(coro):
    from zarr.core.sync import sync

    return sync(coro)


class ZarrStoreAdapter:
    """Serves a zarr-python Store (under an optional path prefix) to the core."""

    def __init__(self, store: Any, prefix: str = ""):
        from zarr.core.buffer import default_buffer_prototype

        self.store = store
        self.prefix = prefix.strip("/")
        if self.prefix:
            check_key(self.prefix)
        self._proto = default_buffer_prototype()
        if not getattr(store, "_is_open", True):
            _sync(store._open())

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def sub(self, path: str) -> ZarrStoreAdapter:
        path = path.strip("/")
        return ZarrStoreAdapter(self.store, f"{self.prefix}/{path}" if self.prefix else path)

    def get(self, key: str) -> bytes | None:
        return self.get_many([(key, "whole", 0, 0)])[0]

    def get_many(self, requests) -> list:
        from zarr.abc.store import RangeByteRequest, SuffixByteRequest

        async def one(key, kind, offset, length):
            rng = None
            if kind == "range":
                rng = RangeByteRequest(offset, offset + length)
            elif kind == "suffix":
                rng = SuffixByteRequest(length)
            full = self._key(key)
            try:
                buf = await self.store.get(full, prototype=self._proto, byte_range=rng)
            except (KeyError, FileNotFoundError):  # a mapping-style store's "not there"
                return None
            except Exception as e:
                self._failed(e, "read", full)
            if buf is None:
                return None
            data = buf.to_bytes()
            if kind != "whole" and len(data) > length:
                data = self._whole_body(data, kind, offset, length, full)
            return data

        async def gather():
            return await asyncio.gather(*(one(*r) for r in requests))

        return list(_sync(gather()))

    def set_many(self, items) -> None:
        from zarr.core.buffer import default_buffer_prototype

        proto = default_buffer_prototype()

        async def one(key, value):
            full = self._key(key)
            try:
                await self.store.set(full, proto.buffer.from_bytes(value))
            except Exception as e:
                self._failed(e, "write", full)

        async def gather():
            await asyncio.gather(*(one(k, v) for k, v in items))

        _sync(gather())

    def set(self, key: str, value: bytes) -> None:
        self.set_many([(key, value)])

    def erase(self, key: str) -> None:
        full = self._key(key)
        try:
            _sync(self.store.delete(full))
        except (KeyError, FileNotFoundError):
            return
        except Exception as e:
            self._failed(e, "delete", full)

    def _whole_body(self, data: bytes, kind: str, offset: int, length: int, key: str) -> bytes:
        """A range asked for and more bytes back: a server that ignores Range sent the whole
        object (HTTP 200). The range is cut out here, with a warning once per store."""
        if not getattr(self.store, "_voxcore_warned_range", False):
            try:
                self.store._voxcore_warned_range = True
            except AttributeError:  # a store with slots: warn each time
                pass
            warnings.warn(f"{type(self.store).__name__}: the server ignores byte ranges (asked {length} bytes of "
                          f"{key!r}, got {len(data)}): each range read fetches the whole object",
                          IgnoredRangeWarning, stacklevel=2)
        if kind == "suffix":
            return data[-length:]
        if offset + length > len(data):
            raise CorruptDataError(f"{key}: asked bytes {offset}..{offset + length}, got a body of {len(data)}")
        return data[offset:offset + length]

    def _failed(self, e: Exception, what: str, key: str) -> None:
        """Raises a store's own exception as voxcore does: voxcore errors and PermissionError as
        they are, anything else as a StoreError naming the store and the key."""
        if isinstance(e, (VoxcoreError, PermissionError)):
            raise e
        status = getattr(e, "status", None) or getattr(e, "code", None)
        if status in (401, 403):  # HTTP: not allowed to see it
            raise PermissionError(f"{type(self.store).__name__}: {what} {key!r} refused ({status}): {e}") from e
        raise StoreError(f"{type(self.store).__name__} failed to {what} {key!r}: {type(e).__name__}: {e}") from e

    def core_store(self) -> CallbackStore:
        writable = not getattr(self.store, "read_only", False)
        return CallbackStore(
            self.get_many,
            self.set_many if writable else None,
            self.erase if writable else None,
        )


class FileAdapter:
    """The same small interface over a local directory, through the core's FileStore.

    Keys resolve beneath the store's root: a symlink that leads out of it raises UnsafePathError
    unless allow_external_links is set. sub() keeps the root as the boundary. unpublished: a tree
    no reader sees until it is renamed into place, whose values go straight to their keys.
    """

    def __init__(self, root: str, durable: bool = True, allow_external_links: bool = False,
                 store: Any = None, unpublished: bool = False):
        self.root = root
        self.store = store if store is not None else FileStore(root, durable, allow_external_links, unpublished)

    def get(self, key: str) -> bytes | None:
        """A metadata document, refused before reading when it is implausibly large."""
        import os

        check_key(key)
        if not self.store.exists(key):
            return None
        try:
            size = os.stat(os.path.join(self.root, key)).st_size
        except (FileNotFoundError, NotADirectoryError):
            return None
        if size > MAX_METADATA_BYTES:
            raise LimitExceededError(
                f"metadata too large (key={key}, limit={MAX_METADATA_BYTES}, got={size} bytes)")
        return self.store.get(key)

    def set(self, key: str, value: bytes) -> None:
        self.store.set(key, value)

    def sub(self, path: str) -> FileAdapter:
        import os

        return FileAdapter(os.path.join(self.root, path), store=self.store.sub(path))

    def core_store(self) -> FileStore:
        return self.store
