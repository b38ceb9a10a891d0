"""create_array: a new Zarr v2/v3 array (sharded or not), as a writable Image."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._core import ChunkedArray, check_key
from .._replace import check_store_prefix, replace_now
from .._stores import FileAdapter, ZarrStoreAdapter, _sync, is_zarr_store
from .._urls import resolve_target
from ..errors import InvalidArgumentError
from ..formats import zarr as zmeta
from ..formats import zarr_emit as emit
from ..images.zarr import Image, remember_origin


def _prepared(shape, dtype, chunks, shards, codec, level, zarr_format, dims, fill_value, order,
              dimension_separator, attributes):
    """The parsed metadata of a new array, and a function writing its document(s) to an adapter."""
    if codec == "none":  # as the CLI's --codec none
        codec = None
    shape = tuple(int(s) for s in shape)
    nd = len(shape)
    dtype = np.dtype(dtype)
    if not dtype.isnative:
        dtype = dtype.newbyteorder("=")

    def per_axis(v, name):
        if v is None:
            return None
        t = (int(v),) * nd if np.isscalar(v) else tuple(int(x) for x in v)
        if len(t) != nd:
            raise InvalidArgumentError(f"{name} rank differs from shape (expected={nd}, got={len(t)})")
        return t

    chunks_t = per_axis(chunks, "chunks") or tuple(max(1, min(64, s)) for s in shape)
    shards_t = per_axis(shards, "shards")
    if order not in ("C", "F"):
        raise InvalidArgumentError(f"order must be 'C' or 'F' (got={order!r})")
    if dims is not None and len(dims) != nd:
        raise InvalidArgumentError(f"dims length differs from rank (expected={nd}, got={len(dims)})")
    if zarr_format == 3:
        if shards_t is not None and any(s % c for s, c in zip(shards_t, chunks_t)):
            raise InvalidArgumentError(
                f"shards must be multiples of chunks (chunks={chunks_t}, shards={shards_t})")
        doc = emit.metadata_v3(shape, dtype, chunks_t, shards_t, codec, level, fill_value, order,
                                dims, attributes)
        meta_key = "zarr.json"
    elif zarr_format == 2:
        if shards_t is not None:
            raise InvalidArgumentError("shards need zarr_format=3")
        sep = dimension_separator or "."
        doc = emit.metadata_v2(shape, dtype, chunks_t, codec, level, fill_value, order, sep)
        meta_key = ".zarray"
    else:
        raise InvalidArgumentError(f"zarr_format must be 2 or 3 (got={zarr_format!r})")
    # Parse what we are about to write: one validation path for read and write.
    meta = zmeta.parse_v3(doc) if zarr_format == 3 else zmeta.parse_v2(doc, attributes)
    if dims is not None:
        meta.dims = tuple(dims)

    def write_metadata(adapter) -> None:
        adapter.set(meta_key, emit.dumps(doc))
        if zarr_format == 2 and attributes:
            adapter.set(".zattrs", emit.dumps(attributes))

    return meta, write_metadata


def create_array(source: Any, shape: Sequence[int], dtype: Any, *, chunks: Sequence[int] | int | None = None,
                 shards: Sequence[int] | int | None = None, codec: str | None = "zstd",
                 level: int | None = None, zarr_format: int = 3, dims: Sequence[str] | None = None,
                 fill_value: Any = 0, order: str = "C", dimension_separator: str | None = None,
                 overwrite: bool = False, durable: bool = True, path: str | None = None,
                 attributes: dict | None = None, storage_options: dict | None = None) -> Image:
    """Create a Zarr array and return it as a writable Image.

    chunks defaults to 64 per axis (clipped to the shape); shards (v3 only) groups chunks into
    one file each and must be a multiple of chunks. codec: "zstd" (level 1), "blosc-lz4",
    "gzip", "lz4", "zlib" or None ("none"). zarr_format 2 writes .zarray with dimension_separator "."
    unless given. overwrite=True replaces an existing Zarr node at the target (anything else
    there is refused, nothing touched): locally the new metadata is built beside the old node
    and swapped in by one atomic rename, then the old node is removed. source may be a URL
    (``s3://``, ``memory://``, any writable fsspec protocol, with storage_options=).
    """
    source = resolve_target(source, storage_options, zarr_only="create_array writes a Zarr array")
    meta, write_metadata = _prepared(shape, dtype, chunks, shards, codec, level, zarr_format, dims,
                                     fill_value, order, dimension_separator, attributes)
    store_path = getattr(source, "store_path", None)
    if store_path is not None:
        source, path = store_path.store, "/".join(p for p in (store_path.path, path) if p)
    if is_zarr_store(source):
        adapter = ZarrStoreAdapter(source, path or "")
        if not overwrite and (adapter.get("zarr.json") is not None or adapter.get(".zarray") is not None):
            raise FileExistsError(f"an array already exists at {path or '/'} (pass overwrite=True)")
        label = adapter.label()
        if overwrite:
            check_store_prefix(source, adapter.prefix, label)
            _sync(source.delete_dir(adapter.prefix)) if adapter.prefix else _sync(source.clear())
        write_metadata(adapter)
    else:
        root = os.fspath(source)
        if path:
            check_key(path)
            root = os.path.join(root, path)
        if overwrite:  # build the new node beside the old one and swap it in (refuses non-Zarr)
            replace_now(root, lambda new: write_metadata(FileAdapter(new, durable)), durable)
        elif os.path.exists(root) and any(os.path.exists(os.path.join(root, k))
                                          for k in ("zarr.json", ".zarray", ".zgroup")):
            raise FileExistsError(f"a Zarr node already exists at {root} (pass overwrite=True)")
        os.makedirs(root, exist_ok=True)
        adapter = FileAdapter(root, durable)
        if not overwrite:  # (after replace_now, root already holds the new metadata)
            write_metadata(adapter)
        label = root
    core = ChunkedArray(meta.array_spec(), adapter.core_store(), None)
    img = Image(core, meta, label)
    img._adapter = adapter
    if is_zarr_store(source):
        return remember_origin(img, source, {"path": path})
    return remember_origin(img, label, {"durable": durable})


def create_in_new_tree(adapter: FileAdapter, path: str, shape: Sequence[int], dtype: Any, chunks, shards,
                       codec: str | None, level: int | None, zarr_format: int, dims, dimension_separator) -> Image:
    """A new array at path in a tree that no reader sees until it is renamed into place (a save's
    tree built beside its target): adapter is that tree's unpublished FileAdapter, so the array's
    metadata and chunks go straight to their keys. The layout arguments are create_array's."""
    check_key(path)
    meta, write_metadata = _prepared(shape, dtype, chunks, shards, codec, level, zarr_format, dims,
                                     0, "C", dimension_separator, None)
    sub = adapter.sub(path)
    write_metadata(sub)
    label = os.path.join(adapter.root, path)
    img = Image(ChunkedArray(meta.array_spec(), sub.core_store(), None), meta, label)
    img._adapter = sub
    return remember_origin(img, label, {"durable": adapter.store.durable})
