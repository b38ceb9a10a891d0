"""Where a save or create writes (a local directory built beside its target, or a zarr-python
store with a prefix), and the chunk/shard layout asked for."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from .. import _replace
from .._core import WriteRun
from .._stores import FileAdapter, ZarrStoreAdapter, _sync, is_zarr_store
from ..errors import InvalidArgumentError
from ..formats import ngff
from ..images.zarr import open_image
from .arrays import create_array, create_in_new_tree


def _per_axis(v: Any, n: int, name: str, dims) -> tuple[int, ...]:
    if isinstance(v, dict):  # {"z": 16, "y": 128, ...} (ngff-zarr's form): axes left out as for an int
        unknown = sorted(str(k) for k in v if k not in dims)
        if unknown:
            raise InvalidArgumentError(f"{name} names axes the image does not have: {unknown} (dims={tuple(dims)})")
        base = _per_axis(64, n, name, dims)
        return tuple(int(v[d]) if d in v else b for d, b in zip(dims, base))
    if np.isscalar(v):
        # an int applies to space axes; time/channel axes get 1 (one plane per chunk)
        return tuple(int(v) if ngff.AXIS_TYPES[d] == "space" else 1 for d in dims)
    t = tuple(int(x) for x in v)
    if len(t) != n:
        raise InvalidArgumentError(f"{name} length differs from dims (expected={n}, got={len(t)})")
    return t


class Target:
    """Where a save or create writes: a local directory or a zarr-python store (with a prefix)."""

    def __init__(self, path: Any, overwrite: bool, durable: bool = True, store_path: str | None = None):
        sp = getattr(path, "store_path", None)
        if sp is not None:  # a zarr.Group
            path, store_path = sp.store, "/".join(p for p in (sp.path, store_path) if p)
        markers = ("zarr.json", ".zgroup", ".zarray", ".zattrs")
        self._beside = None
        self._run = None
        self._created: dict[str, Any] = {}  # the arrays written, by path, for written()
        if is_zarr_store(path):
            self.store, self.prefix, self.durable = path, (store_path or "").strip("/"), True
            self.adapter = ZarrStoreAdapter(path, self.prefix)
            self.label = self.adapter.label()
            if any(self.adapter.get(k) is not None for k in markers):
                if not overwrite:
                    raise FileExistsError(f"a Zarr node exists at {self.label} (pass overwrite=True)")
                _replace.check_store_prefix(path, self.prefix, self.label)
                _sync(path.delete_dir(self.prefix)) if self.prefix else _sync(path.clear())
            return
        root = os.fspath(path)
        if store_path:
            root = os.path.join(root, store_path)
        if os.path.lexists(root) and not overwrite:
            raise FileExistsError(f"{root} exists (pass overwrite=True)")
        # Written beside root, swapped in by commit(): root holds the old tree or the new one.
        self._beside = _replace.Beside(root, durable)
        self.store, self.prefix, self.label = self._beside.new, "", root
        self.durable = durable
        # No reader sees the tree before commit(): its values go straight to their keys.
        self.adapter = FileAdapter(self._beside.new, durable, unpublished=True)
        # Nothing in the new tree is visible before commit(): the chunk writes of every array share
        # one run, made durable once, before the swap, so that no write ends waiting for its fsyncs.
        self._run = WriteRun() if durable else None
        self._arrays: list = []  # written through the run: they must outlive its finish()

    def written(self, sub: str) -> Any:
        """An array this save wrote, for reading back before commit(): its writes settled first."""
        if self._run is not None:
            self._run.finish()  # every chunk written so far in place; later arrays get a new run
            self._run = WriteRun()
        return self._created[sub]

    def commit(self) -> None:
        """Put what was written in place (local directories; a store was written in place)."""
        if self._beside is not None:
            if self._run is not None:
                self._run.finish()  # every chunk durable before the swap publishes it
            self._beside.commit()

    def abort(self) -> None:
        """Remove what was written beside the target unless committed; the old tree stays."""
        if self._beside is not None:
            if self._run is not None:
                try:
                    self._run.finish()  # no write still in flight into the tree being removed
                except Exception:  # the save's own error is the one raised
                    pass
            self._beside.abort()

    def published(self) -> Any:
        """An adapter for the tree where it is after commit() (writes in place from then on)."""
        if self._beside is None:
            return self.adapter
        return FileAdapter(self.label, self.durable)

    def reopen(self, sub: str, array: Any) -> Any:
        """An array written before commit(), opened where it is now."""
        if self._beside is None:
            return array
        return open_image(self.label, path=sub, durable=self.durable)

    def array(self, sub: str, shape, dtype, chunks, shards, codec, level, v3: bool, dims):
        path = "/".join(p for p in (self.prefix, sub) if p)
        layout = (chunks, shards, codec, level, 3 if v3 else 2, dims if v3 else None, None if v3 else "/")
        if self._beside is not None:
            img = create_in_new_tree(self.adapter, path, shape, dtype, *layout)
        else:
            img = create_array(self.store, shape, dtype, chunks=chunks, shards=shards, codec=codec, level=level,
                               zarr_format=layout[4], dims=layout[5], dimension_separator=layout[6], path=path,
                               durable=self.durable)
        if self._run is not None:
            img._run = self._run
            self._arrays.append(img)
        self._created[sub] = img
        return img

    def group(self, sub: str, attrs: dict, v3: bool) -> None:
        """Write a group's metadata document(s); each is one atomic set."""
        write_group(self.adapter, sub, attrs, v3)


def write_group(adapter: Any, sub: str, attrs: dict, v3: bool) -> None:
    """A group's metadata at sub through adapter: zarr.json (v3) or .zgroup + .zattrs (v2), each
    document one atomic set."""
    key = (lambda k: f"{sub}/{k}" if sub else k)  # noqa: E731
    dump = lambda d: json.dumps(d, indent=2, allow_nan=False).encode()  # noqa: E731
    if v3:
        adapter.set(key("zarr.json"), dump({"zarr_format": 3, "node_type": "group", "attributes": attrs}))
    else:
        adapter.set(key(".zgroup"), dump({"zarr_format": 2}))
        adapter.set(key(".zattrs"), dump(attrs))


def storage(chunks: Any, shards: Any, version: str, dims) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    n = len(dims)
    chunk_t = _per_axis(chunks, n, "chunks", dims)
    shard_t = None if shards is None else _per_axis(shards, n, "shards", dims)
    if any(c < 1 for c in chunk_t):
        raise InvalidArgumentError(f"chunks must be >= 1 (got={chunk_t})")
    if shard_t is not None:
        if version != "0.5":
            raise InvalidArgumentError("shards need version='0.5' (Zarr v3)")
        if any(s < 1 or s % c for s, c in zip(shard_t, chunk_t)):
            raise InvalidArgumentError(f"shards must be multiples of chunks (chunks={chunk_t}, shards={shard_t})")
    return chunk_t, shard_t
