"""HCS plates and wells (OME-NGFF ``plate`` / ``well``): collections of images of the model.

``vc.open(plate_root)`` gives a :class:`Plate`: rows, columns, acquisitions and ``wells``, a
mapping from "A/1"-style paths to :class:`Well`; ``vc.open(well_path)`` gives the well. A well's
``fields`` are its images (OME-Zarr multiscale groups, opened as :class:`voxcore.Image` when
first asked for). The metadata mapping is :mod:`voxcore.formats.hcs`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

from .._stores import is_zarr_store
from ..errors import InvalidMetadataError, VoxcoreError
from ..formats import hcs
from .acquisition import AcquisitionAccess
from .group_node import GroupNode, join


class Well(AcquisitionAccess):
    """One well: its fields (images, level 0 of each multiscale) and their acquisitions. Its
    fields are also positions, read with navigate's names (get_data(position=), ...)."""

    def __init__(self, node: GroupNode, path: str, meta: dict, row: str | None = None, column: str | None = None,
                 prefix: str = ""):
        # path: "row/column"; prefix: where the well's group is below node ("" when node is it)
        self._node, self.path, self._meta, self._prefix = node, path, meta, prefix
        parts = path.split("/")
        self.row = row if row is not None else (parts[-2] if len(parts) >= 2 else None)
        self.column = column if column is not None else parts[-1]
        self._fields: dict[int, Any] = {}

    @property
    def field_paths(self) -> list[str]:
        return [im["path"] for im in self._meta["images"]]

    @property
    def acquisitions(self) -> list[int | None]:
        """The acquisition id of each field (None where the well does not say)."""
        return [im["acquisition"] for im in self._meta["images"]]

    @property
    def fields(self) -> list[Any]:
        """The fields' images, in the well's order."""
        return [self[i] for i in range(len(self))]

    def __getitem__(self, i: int) -> Any:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"well {self.path} has {n} fields (got={i})")
        i %= n
        if i not in self._fields:
            self._fields[i] = self._node.image(join(self._prefix, self.field_paths[i]))
        return self._fields[i]

    def __len__(self) -> int:
        return len(self._meta["images"])

    def __iter__(self) -> Iterator[Any]:
        return (self[i] for i in range(len(self)))

    def _position_count(self) -> int:
        return len(self)

    def _position_image(self, p: int) -> Any:
        return self[p]

    def summary(self) -> list[str]:
        """``voxcore info``: the fields as a table."""
        lines = [f"path:   {self._node.label(self._prefix)}", f"format: OME-Zarr {self._meta['version']} well "
                 f"{self.path} ({len(self)} fields)"]
        lines += _field_rows([(self.path, i, self) for i in range(len(self))])
        return lines

    def __repr__(self) -> str:
        return f"<voxcore.Well {self.path} fields={len(self)}>"


def _field_rows(items: list[tuple[str, int, Well]]) -> list[str]:
    rows = [f"{'well':8s} {'field':6s} {'shape':24s} {'dtype':8s} levels"]
    for path, i, well in items:
        img = well[i]
        rows.append(f"{path:8s} {well.field_paths[i]:6s} {str(img.shape):24s} {str(img.dtype):8s} "
                    f"{len(img.levels)}")
    return rows


class Plate(Mapping, AcquisitionAccess):
    """An HCS plate: ``rows``, ``columns``, ``acquisitions``, ``name`` and its wells by path.

    Its fields, well by well in the plate's order, are also the positions of an acquisition,
    read with navigate's names: ``get_data(timepoint=, position=, channel=, z=-1,
    resolution=1)``, ``get_slice``, ``positions``, ``position_names``, ``bits``,
    ``dx/dy/dz/dt``, ``shapes``, ``resolutions``, ``nbytes`` (a multi-position acquisition
    written by ``vc.create(..., positions=)`` is a one-well plate)."""

    def __init__(self, node: GroupNode, meta: dict):
        self._node, self._meta = node, meta
        self._wells: dict[str, Well] = {}

    name = property(lambda self: self._meta["name"])
    rows = property(lambda self: list(self._meta["rows"]))
    columns = property(lambda self: list(self._meta["columns"]))
    acquisitions = property(lambda self: [dict(a) for a in self._meta["acquisitions"]])
    field_count = property(lambda self: self._meta["field_count"])
    version = property(lambda self: self._meta["version"])

    @property
    def wells(self) -> Mapping[str, Well]:
        """Wells by "row/column" path, in the plate's order."""
        return {w["path"]: self[w["path"]] for w in self._meta["wells"]}

    def __getitem__(self, path: str) -> Well:
        if path not in self._wells:
            entry = next((w for w in self._meta["wells"] if w["path"] == path), None)
            if entry is None:
                raise KeyError(f"plate has no well {path!r}")
            attrs = self._node.attrs(path)
            if attrs is None or not hcs.has_well(attrs):
                raise InvalidMetadataError(f"{self._node.label(path)}: the plate lists well {path!r} "
                                           "but there is no well group there")
            self._wells[path] = Well(self._node, path, hcs.read_well(attrs), entry["row"], entry["column"], path)
        return self._wells[path]

    def __iter__(self) -> Iterator[str]:
        return (w["path"] for w in self._meta["wells"])

    def _position_list(self) -> list[tuple[str, int]]:
        if not hasattr(self, "_positions"):
            self._positions = [(p, i) for p, w in self.wells.items() for i in range(len(w))]
        return self._positions

    def _position_count(self) -> int:
        return len(self._position_list())

    def _position_image(self, p: int) -> Any:
        well, i = self._position_list()[p]
        return self[well][i]

    @property
    def position_names(self) -> list[str]:
        """Each position's name: as the writer recorded it, else "well/field"."""
        recorded = (self._node.attrs() or {}).get("voxcore", {})
        names = recorded.get("positions") if isinstance(recorded, dict) else None
        listed = [f"{w}/{self[w].field_paths[i]}" for w, i in self._position_list()]
        if isinstance(names, list) and len(names) == len(listed):
            return [str(n.get("name")) if isinstance(n, dict) else str(n) for n in names]
        return listed

    def __len__(self) -> int:
        return len(self._meta["wells"])

    def summary(self) -> list[str]:
        """``voxcore info``: the plate as a table of wells x fields (shape, dtype, levels)."""
        m = self._meta
        lines = [f"path:   {self._node.label()}",
                 f"format: OME-Zarr {m['version']} plate" + (f" {m['name']!r}" if m["name"] else "")
                 + f": {len(m['rows'])} rows x {len(m['columns'])} columns, {len(self)} wells"
                 + (f", {len(m['acquisitions'])} acquisitions" if m["acquisitions"] else "")]
        items = [(p, i, w) for p, w in self.wells.items() for i in range(len(w))]
        return lines + _field_rows(items)

    def __repr__(self) -> str:
        return f"<voxcore.Plate {self._node.label()} {len(self.rows)}x{len(self.columns)} wells={len(self)}>"


# -- the opener (voxcore.images.registry) ------------------------------------------------------
def _node_attrs(source: Any, path: str | None, options: dict) -> tuple[GroupNode, dict] | None:
    if not is_zarr_store(source) and not isinstance(source, (str, os.PathLike)):
        return None
    node = GroupNode(source, path, options)
    try:
        attrs = node.attrs()
    except (OSError, VoxcoreError):  # not a group this opener reads: the next opener says why
        return None
    return (node, attrs) if attrs is not None else None


def opens(source: Any, path: str | None) -> bool:
    found = _node_attrs(source, path, {})
    return found is not None and (hcs.has_plate(found[1]) or hcs.has_well(found[1]))


def open_image(source: Any, path: str | None = None, **options: Any) -> Plate | Well:
    """The plate or well group at source/path (see :func:`voxcore.open` for the options)."""
    node, attrs = _node_attrs(source, path, options)
    if hcs.has_plate(attrs):
        return Plate(node, hcs.read_plate(attrs))
    where = node.path if is_zarr_store(source) else os.path.normpath(node.label())
    well_path = "/".join(where.replace(os.sep, "/").split("/")[-2:])  # "row/column", by convention
    return Well(node, well_path, hcs.read_well(attrs))
