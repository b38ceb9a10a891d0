"""Adapting zarr-python store objects into a core CallbackStore (bytes fetched in batches)."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import errno
import random
import warnings
from dataclasses import dataclass
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


# The objects read by get() while read_once() is in force, by (store, full key): the openers
# voxcore.open asks in turn each read the node's metadata, which costs a round trip per read.
_READ_ONCE: contextvars.ContextVar[dict | None] = contextvars.ContextVar("voxcore_read_once", default=None)


@contextlib.contextmanager
def read_once():
    """Within: a store key read by a ZarrStoreAdapter's get() is fetched once (missing keys
    too); later gets of it return the first answer. For the span of one open, where nothing
    writes."""
    token = _READ_ONCE.set({})
    try:
        yield
    finally:
        _READ_ONCE.reset(token)


def _sync(coro):
    from zarr.core.sync import sync

    return sync(coro)


@dataclass(frozen=True)
class RequestPolicy:
    """How the requests to a store are bounded and retried (a URL's: vc.open(url, retries=,
    timeout=)).

    retries: further attempts after a transient failure (a timeout, a reset or dropped
    connection, an HTTP 5xx; never a 4xx), the first after ``backoff`` seconds, doubling, with
    jitter. timeout: seconds one request may take, all its attempts together (a read never
    hangs). in_flight: requests of one read in flight together. Ranges of one object (the
    chunks of a shard) at most ``gap`` bytes apart are fetched as one request of at most
    ``merged`` bytes, then cut apart: a few MiB each, so that a whole shard comes as several
    responses, decoded while the later ones are still arriving."""

    retries: int = 3
    backoff: float = 0.1
    timeout: float = 60.0
    in_flight: int = 128
    gap: int = 256 << 10
    merged: int = 8 << 20

    def __post_init__(self):
        from .errors import InvalidArgumentError

        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise InvalidArgumentError(f"retries must be an int >= 0 (got={self.retries!r})")
        if isinstance(self.in_flight, bool) or not isinstance(self.in_flight, int) or self.in_flight < 1:
            raise InvalidArgumentError(f"in_flight must be an int >= 1 (got={self.in_flight!r})")
        for name in ("gap", "merged"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise InvalidArgumentError(f"{name} must be an int >= 0 (got={v!r})")
        for name in ("backoff", "timeout"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0 or v == float("inf"):
                raise InvalidArgumentError(f"{name} must be a positive number of seconds (got={v!r})")


DEFAULT_POLICY = RequestPolicy()


_TRANSIENT_ERRNOS = {errno.ECONNRESET, errno.ECONNABORTED, errno.ECONNREFUSED, errno.EPIPE, errno.ETIMEDOUT}


def _status(e: Exception) -> int | None:
    status = getattr(e, "status", None) or getattr(e, "code", None)
    return status if isinstance(status, int) and 100 <= status < 600 else None


def is_transient(e: Exception) -> bool:
    """Whether a failed request may succeed when tried again: a timeout, a connection reset or
    dropped, a truncated body, an HTTP 5xx. Never a 4xx, a missing key or a refusal."""
    status = _status(e)
    if status is not None:
        return status >= 500
    if isinstance(e, (FileNotFoundError, PermissionError, VoxcoreError)):
        return False
    if isinstance(e, (TimeoutError, ConnectionError)):
        return True
    try:
        import aiohttp
    except ImportError:  # pragma: no cover - http's optional extra
        aiohttp = None
    if aiohttp is not None and isinstance(e, (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError)):
        return True
    return isinstance(e, OSError) and e.errno in _TRANSIENT_ERRNOS


async def _bounded(coro, seconds: float):
    """coro, cancelled with TimeoutError after seconds (asyncio.timeout where there is one: no
    extra task per request)."""
    if hasattr(asyncio, "timeout"):
        async with asyncio.timeout(seconds):
            return await coro
    return await asyncio.wait_for(coro, timeout=seconds)  # pragma: no cover - Python 3.10


class _Ungated:
    """A gate that never waits (for requests already holding their read's gate)."""

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        return False


_UNGATED = _Ungated()


def coalesce(requests, gap: int, merged: int) -> list[tuple]:
    """The fetches serving requests ((key, kind, offset, length) each): the "range" requests of
    one key sorted and merged where they lie at most gap bytes apart and the merged range stays
    within merged bytes; others as they are. Each fetch is (key, kind, offset, length, parts),
    parts listing (request index, offset within the fetch, length)."""
    out: list[tuple] = []
    ranges: dict[str, list[tuple[int, int, int]]] = {}
    for i, (key, kind, offset, length) in enumerate(requests):
        if kind == "range":
            ranges.setdefault(key, []).append((offset, length, i))
        else:
            out.append((key, kind, offset, length, [(i, 0, None)]))
    for key, items in ranges.items():
        items.sort()
        start, end, parts = None, 0, []
        for offset, length, i in items:
            if start is not None and offset - end <= gap and max(end, offset + length) - start <= merged:
                end = max(end, offset + length)
            else:
                if start is not None:
                    out.append((key, "range", start, end - start, parts))
                start, end, parts = offset, offset + length, []
            parts.append((i, offset - start, length))
        out.append((key, "range", start, end - start, parts))
    return out


class ZarrStoreAdapter:
    """Serves a zarr-python Store (under an optional path prefix) to the core. Its requests
    follow the store's RequestPolicy (bounded, retried; see there)."""

    def __init__(self, store: Any, prefix: str = ""):
        from zarr.core.buffer import default_buffer_prototype

        self.store = store
        self.policy = getattr(store, "_voxcore_policy", DEFAULT_POLICY)
        self.prefix = prefix.strip("/")
        if self.prefix:
            check_key(self.prefix)
        self._proto = default_buffer_prototype()
        if not getattr(store, "_is_open", True):
            _sync(store._open())

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _where(self) -> str:
        """The store, for messages: its URL where it has one (an FsspecStore), else its type."""
        path, fs = getattr(self.store, "path", None), getattr(self.store, "fs", None)
        if isinstance(path, str) and fs is not None:
            proto = fs.protocol[0] if isinstance(fs.protocol, (tuple, list)) else fs.protocol
            return path if "://" in path else f"{proto}://{path}"
        return type(self.store).__name__

    def label(self) -> str:
        """Where this adapter reads and writes, for messages and return values: the store's URL
        and the prefix for a URL's store (``s3://bucket/x.ome.zarr``), else "StoreType:prefix"."""
        where = self._where()
        if "://" in where:
            return f"{where.rstrip('/')}/{self.prefix}" if self.prefix else where
        return f"{where}:{self.prefix}"

    def sub(self, path: str) -> ZarrStoreAdapter:
        path = path.strip("/")
        return ZarrStoreAdapter(self.store, f"{self.prefix}/{path}" if self.prefix else path)

    def get(self, key: str) -> bytes | None:
        memo = _READ_ONCE.get()
        if memo is None:
            return self.get_many([(key, "whole", 0, 0)])[0]
        self.prefetch([key])
        return memo[self._memo_at(key)]

    def _memo_at(self, key: str) -> tuple[int, str]:
        # (the store is held by its caller for the memo's span: its id stays its own)
        return id(self.store), self._key(key)

    def prefetch(self, keys) -> None:
        """While read_once() is in force: the keys' objects fetched together, in one round trip,
        for the get()s about to ask them one by one (elsewhere nothing is done)."""
        memo = _READ_ONCE.get()
        if memo is None:
            return
        todo = [k for k in dict.fromkeys(keys) if self._memo_at(k) not in memo]
        if todo:
            for key, value in zip(todo, self.get_many([(k, "whole", 0, 0) for k in todo])):
                memo[self._memo_at(key)] = value

    def size(self, key: str) -> int | None:
        """The byte size of key's object (None when there is none), under the policy."""
        full = self._key(key)
        return self.call(lambda: self.store.getsize(full), "size", full)

    def size_and_prefix(self, key: str, n: int) -> tuple[int | None, Any]:
        """key's byte size and its first n bytes (fewer where it is shorter), asked together in
        one round trip under the policy; (None, None) when there is no such object."""
        full = self._key(key)

        async def run():
            return await asyncio.gather(
                self._request(lambda: self.store.getsize(full), "size", full, _UNGATED),
                self._fetch(_UNGATED, key, "range", 0, n), return_exceptions=True)

        size, prefix = _sync(run())
        for got in (size, prefix):
            if isinstance(got, BaseException):
                raise got
        return (None, None) if size is None or prefix is None else (size, prefix)

    def call(self, make, what: str, key: str) -> Any:
        """make()'s awaitable as one request under the policy (bounded, transient failures
        retried, failures raised as this adapter raises them); None when key is not there.
        what and key (the full key) name it in messages."""

        async def run():
            return await self._request(make, what, key, _UNGATED)

        return _sync(run())

    async def _request(self, call, what: str, key: str, gate: asyncio.Semaphore):
        """call() under the policy: at most in_flight at once (gate), transient failures tried
        again with backoff, the whole within timeout; a missing key is None."""
        pol = self.policy
        loop = asyncio.get_running_loop()
        async with gate:
            deadline = loop.time() + pol.timeout
            for attempt in range(pol.retries + 1):
                try:
                    return await _bounded(call(), max(deadline - loop.time(), 1e-3))
                except (KeyError, FileNotFoundError) as e:  # a mapping-style store's "not there"
                    if _status(e.__cause__) in (401, 403):  # (fsspec's info() says so for a refusal)
                        self._failed(e.__cause__, what, key)
                    if what == "write":  # a PUT answered "not found": no bucket, nothing written
                        self._failed(e, what, key)
                    return None
                except Exception as e:
                    if isinstance(e, TimeoutError) and loop.time() >= deadline:
                        raise StoreError(f"{self._where()}: {what} {key!r} timed out after "
                                         f"{pol.timeout:g} s ({attempt + 1} attempts; raise timeout= to wait "
                                         f"longer)") from e
                    if not is_transient(e) or attempt == pol.retries:
                        self._failed(e, what, key, attempt + 1)
                    delay = pol.backoff * 2 ** attempt * (0.5 + random.random())
                    await asyncio.sleep(min(delay, max(deadline - loop.time(), 0.0)))
            raise AssertionError("unreachable")  # pragma: no cover

    async def _fetch(self, gate, key, kind, offset, length, raw: bool = False):
        """One request's bytes (None when the key is missing): bytes, or with raw a zero-copy
        uint8 array over the response body."""
        from zarr.abc.store import RangeByteRequest, SuffixByteRequest

        rng = None
        if kind == "range":
            rng = RangeByteRequest(offset, offset + length)
        elif kind == "suffix":
            rng = SuffixByteRequest(length)
        full = self._key(key)
        buf = await self._request(lambda: self.store.get(full, prototype=self._proto, byte_range=rng),
                                  "read", full, gate)
        if buf is None:
            return None
        data = buf.as_numpy_array() if raw else buf.to_bytes()
        if kind != "whole" and len(data) > length:
            data = await self._whole_body(data, kind, offset, length, full, gate)
        return data

    async def _fetch_into(self, requests, put, raw: bool, stopped=lambda: False) -> None:
        """Every request's bytes handed to put(i, data) as its fetch lands (None: missing): the
        requests coalesced, at most in_flight at once, none started once stopped(); on a failure
        the rest are cancelled and it is raised."""
        pol = self.policy
        gate = asyncio.Semaphore(pol.in_flight)

        async def fetch(key, kind, offset, length, parts):
            async with gate:
                if stopped():
                    return
                data = await self._fetch(_UNGATED, key, kind, offset, length, raw=raw)
            for i, at, n in parts:
                put(i, data if data is None or n is None else data[at:at + n])

        tasks = [asyncio.ensure_future(fetch(*f)) for f in coalesce(requests, pol.gap, pol.merged)]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    def get_many(self, requests) -> list:
        out: list = [None] * len(requests)
        _sync(self._fetch_into(requests, out.__setitem__, raw=False))
        return out

    def start_many(self, requests, sink):
        """get_many streamed: the fetch runs on zarr-python's I/O loop and puts each value into
        sink (a core ArrivalSink) as it comes, not copied, while the core decodes the ones before
        (none is asked once a decode failed). Returns wait(), which returns when the fetch is
        over and raises its failure."""
        from zarr.core.sync import _get_loop

        async def stream():
            try:
                await self._fetch_into(requests, sink.put, raw=True, stopped=lambda: sink.aborted)
            except BaseException:
                sink.fail()
                raise

        future = asyncio.run_coroutine_threadsafe(stream(), _get_loop())
        return future.result

    def set_many(self, items) -> None:
        from zarr.core.buffer import default_buffer_prototype

        proto = default_buffer_prototype()

        async def one(gate, key, value):
            full = self._key(key)
            # A PUT replaces the whole object or nothing: trying it again is safe.
            await self._request(lambda: self.store.set(full, proto.buffer.from_bytes(value)), "write", full, gate)

        async def gather():
            gate = asyncio.Semaphore(self.policy.in_flight)
            await asyncio.gather(*(one(gate, k, v) for k, v in items))

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

    async def _whole_body(self, data: bytes, kind: str, offset: int, length: int, key: str,
                          gate: asyncio.Semaphore) -> bytes:
        """A range asked for and more bytes back: a server that ignores Range sent the whole
        object (HTTP 200). The range is cut out here, with a warning once per store. A body that
        is not the whole object either (its size asked for once) is CorruptDataError."""
        size = await self._request(lambda: self.store.getsize(key), "size", key, gate)
        if size is not None and size != len(data):
            raise CorruptDataError(f"{key}: asked {length} bytes at {offset}, got a body of {len(data)} "
                                   f"(neither the range nor the whole object of {size} bytes)")
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

    def _failed(self, e: Exception, what: str, key: str, attempts: int = 1) -> None:
        """Raises a store's own exception as voxcore does: voxcore errors and PermissionError as
        they are, anything else as a StoreError naming the store and the key."""
        if isinstance(e, (VoxcoreError, PermissionError)):
            raise e
        status = _status(e)
        if status in (401, 403):  # HTTP: not allowed to see it
            raise PermissionError(f"{self._where()}: {what} {key!r} refused ({status}): {e}") from e
        tries = f" ({attempts} attempts)" if attempts > 1 else ""
        raise StoreError(f"{self._where()}: failed to {what} {key!r}{tries}: {type(e).__name__}: {e}") from e

    def core_store(self) -> CallbackStore:
        writable = not getattr(self.store, "read_only", False)
        return CallbackStore(
            self.get_many,
            self.set_many if writable else None,
            self.erase if writable else None,
            self.start_many,
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

    def prefetch(self, keys) -> None:
        """Nothing: a local file is read when asked (ZarrStoreAdapter.prefetch's counterpart)."""

    def sub(self, path: str) -> FileAdapter:
        import os

        return FileAdapter(os.path.join(self.root, path), store=self.store.sub(path))

    def core_store(self) -> FileStore:
        return self.store
