"""A group in a directory or a zarr-python store, as the collections of images (plates,
wells, bioformats2raw series) see it: its attributes, and the images below it."""

from __future__ import annotations

import os
from typing import Any

from .._stores import FileAdapter, ZarrStoreAdapter, is_zarr_store
from ..errors import InvalidMetadataError
from ..formats import zarr as zmeta
from . import zarr as zimage


def join(*parts: str | None) -> str:
    return "/".join(p.strip("/") for p in parts if p)


class GroupNode:
    """Where a group lives (a directory or a zarr-python store and a path) and how to open
    what is below it."""

    def __init__(self, source: Any, path: str | None, options: dict):
        self.source, self.path, self.options = source, path or "", options

    def label(self, sub: str = "") -> str:
        if is_zarr_store(self.source):
            return f"{type(self.source).__name__}:{join(self.path, sub)}"
        return os.path.join(os.fspath(self.source), *[p for p in (self.path, sub) if p])

    def attrs(self, sub: str = "") -> dict | None:
        """The group attributes at sub (None: no group there, or an array)."""
        if is_zarr_store(self.source):
            adapter = ZarrStoreAdapter(self.source, join(self.path, sub))
        else:
            root = self.label(sub)
            if not os.path.isdir(root):
                return None
            adapter = FileAdapter(root, self.options.get("durable", True),
                                  self.options.get("allow_external_links", False))
        try:
            node = zmeta.read_metadata(adapter.get)
        except FileNotFoundError:
            return None
        return node if isinstance(node, dict) else None

    def image(self, sub: str, what: str = "a field the well lists"):
        keep = {k: self.options[k] for k in ("cache_bytes", "durable", "allow_external_links") if k in self.options}
        if is_zarr_store(self.source):
            keep.pop("durable", None)
            keep.pop("allow_external_links", None)
        try:
            return zimage.open_image(self.source, join(self.path, sub) or None, **keep)
        except FileNotFoundError as e:
            raise InvalidMetadataError(f"{self.label(sub)}: {what} is not an image ({e})") from None
