"""Collections of images under one root: the bioformats2raw layout (series ``0/``, ``1/``, ...
beside ``OME/``), as bioformats2raw writes a multi-series file (positions, tiles of a sample).

``vc.open(root)`` gives a :class:`Series`: a mapping from series path to image (each opened
as :class:`voxcore.Image` when first asked for), with the OME-XML text when ``OME/`` has it.
A bioformats2raw root that holds a plate opens as the plate. The metadata mapping is
:mod:`voxcore.formats.bioformats2raw`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

from .._stores import is_zarr_store
from ..errors import InvalidMetadataError, LimitExceededError, VoxcoreError
from ..formats import bioformats2raw as b2r
from ..formats import hcs
from .group_node import GroupNode

MAX_OME_XML_BYTES = 64 << 20


class Series(Mapping):
    """The images of a bioformats2raw-layout root, by series path ("0", "1", ...)."""

    def __init__(self, node: GroupNode, paths: list[str]):
        self._node, self._paths = node, paths
        self._images: dict[str, Any] = {}

    @property
    def paths(self) -> list[str]:
        return list(self._paths)

    @property
    def images(self) -> list[Any]:
        """Every series' image, in order."""
        return [self[p] for p in self._paths]

    def __getitem__(self, path: Any) -> Any:
        key = str(path)
        if key not in self._paths:
            raise KeyError(f"no series {path!r} (series: {self._paths[:8]}{'...' if len(self._paths) > 8 else ''})")
        if key not in self._images:
            self._images[key] = self._node.image(key, f"series {key!r}")
        return self._images[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)

    def ome_xml(self) -> str | None:
        """The text of OME/METADATA.ome.xml (local directories), or None when there is none."""
        if is_zarr_store(self._node.source):
            return None
        path = os.path.join(self._node.label("OME"), "METADATA.ome.xml")
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:
            return None
        if size > MAX_OME_XML_BYTES:
            raise LimitExceededError(f"{path}: {size} bytes of OME-XML (limit={MAX_OME_XML_BYTES})")
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def summary(self) -> list[str]:
        """``voxcore info``: one row per series (shape, dtype, levels)."""
        lines = [f"path:   {self._node.label()}",
                 f"format: OME-Zarr bioformats2raw layout, {len(self)} series",
                 f"{'series':8s} {'shape':24s} {'dtype':8s} {'dims':18s} levels"]
        for p in self._paths:
            img = self[p]
            lines.append(f"{p:8s} {str(img.shape):24s} {str(img.dtype):8s} {','.join(img.dims):18s} "
                         f"{len(img.levels)}")
        return lines

    def __repr__(self) -> str:
        return f"<voxcore.Series {self._node.label()} series={len(self)}>"


def _series_paths(node: GroupNode) -> list[str]:
    listed = b2r.listed_series(node.attrs("OME"))
    if listed is not None:
        for p in listed:
            if node.attrs(p) is None:
                raise InvalidMetadataError(f"{node.label()}: OME/series lists {p!r}, which is not a group")
        return listed
    paths = []  # consecutively numbered groups from 0
    while node.attrs(str(len(paths))) is not None:
        if len(paths) >= b2r.MAX_SERIES:
            raise LimitExceededError(f"{node.label()}: more than {b2r.MAX_SERIES} series")
        paths.append(str(len(paths)))
    if not paths:
        raise InvalidMetadataError(f"{node.label()}: a bioformats2raw layout without series (no group 0/)")
    return paths


# -- the opener (voxcore.images.registry) ------------------------------------------------------
def _root(source: Any, path: str | None) -> tuple[GroupNode, dict] | None:
    if not is_zarr_store(source) and not isinstance(source, (str, os.PathLike)):
        return None
    node = GroupNode(source, path, {})
    try:
        attrs = node.attrs()
    except (OSError, VoxcoreError):
        return None
    return (node, attrs) if attrs is not None else None


def opens(source: Any, path: str | None) -> bool:
    found = _root(source, path)
    if found is None or hcs.has_plate(found[1]):  # a plate keeps its own opener
        return False
    ome = found[1].get("ome") if isinstance(found[1].get("ome"), dict) else found[1]
    return b2r.LAYOUT_KEY in ome


def open_image(source: Any, path: str | None = None, **options: Any) -> Series:
    """The series of the bioformats2raw-layout root at source/path."""
    node = GroupNode(source, path, options)
    b2r.layout(node.attrs() or {})
    return Series(node, _series_paths(node))
