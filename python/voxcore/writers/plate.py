"""voxcore.create_plate: an HCS plate (OME-NGFF ``plate`` / ``well``) written field by field.

The plate group is published first with no wells. Each field is then written by :func:`save`
(its pyramid built beside its final place and renamed in), and only after that are its well's
and the plate's metadata rewritten, each document by one atomic replace: at every moment, also
after a crash, the plate on disk is valid and lists exactly the fields that are complete.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from .._stores import FileAdapter
from .._urls import local_only
from ..errors import InvalidArgumentError, InvalidMetadataError
from ..formats import hcs, ngff
from .create import create_image
from .save import save
from .target import Target, write_group


def create_plate(path: Any, rows: Sequence[str], columns: Sequence[str], *, name: str | None = None,
                 acquisitions: Sequence[dict] | None = None, version: str = "0.5",
                 overwrite: bool = False, durable: bool = True, attributes: dict | None = None) -> PlateWriter:
    """Start an HCS plate at path (a local directory): ``w.write_field(well, image, ...)`` adds
    one field (an image, array or :func:`build_pyramid` result, with its levels) to a well such
    as "B/3"; ``w.close()`` or leaving a ``with`` block ends it.

    rows / columns : the plate's row and column names (alphanumeric, e.g. "A".."H", "1".."12").
    acquisitions : [{"id": int, "name": ..., "maximumfieldcount": ..., ...}], as OME-NGFF has them.
    The plate is valid from the start and after every field; ``field_count`` is kept at the
    largest number of fields of a well. overwrite=True replaces a Zarr / OME-Zarr hierarchy at
    path (anything else is refused, as for :func:`save`). attributes: custom root attributes
    beside the OME keys, as for :func:`save`.
    """
    if version not in ngff.VERSIONS:
        raise InvalidArgumentError(f"version must be one of {ngff.VERSIONS} (got={version!r:.20})")
    path = local_only(path, "create_plate")
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidArgumentError(f"create_plate writes a local directory (got={type(path).__name__})")
    for what, names in (("rows", rows), ("columns", columns)):
        if isinstance(names, str) or not all(isinstance(n, str) for n in names):
            raise InvalidArgumentError(f"{what} must be a list of names (got={names!r:.60})")
    acq = [dict(a) for a in acquisitions] if acquisitions is not None else []
    meta = {"rows": list(rows), "columns": list(columns), "name": name, "acquisitions": acq,
            "extra": ngff.with_user_attributes({}, attributes)}
    attrs = _checked(lambda: hcs.plate_attributes(version, meta["rows"], meta["columns"], [], name, acq))
    attrs = {**attrs, **meta["extra"]}
    target = Target(path, overwrite, durable)
    try:  # the empty plate is swapped in now; fields are written in place later
        target.group("", attrs, version == "0.5")
        target.commit()
    finally:
        target.abort()
    return PlateWriter(target.label, version, meta, durable)


def _checked(make):
    try:
        return make()
    except InvalidMetadataError as e:  # what the caller passed, not what a file says
        raise InvalidArgumentError(str(e)) from None


class PlateWriter:
    """Adds fields to a plate created by :func:`create_plate` (see there)."""

    def __init__(self, root: str, version: str, meta: dict, durable: bool):
        self.root, self.version, self._meta, self._durable = root, version, meta, durable
        self._adapter = FileAdapter(root, durable)
        self._wells: dict[str, list[dict]] = {}  # well path -> its images, in the plate's order
        self._closed = False

    @property
    def wells(self) -> dict[str, list[str]]:
        """The fields written so far, by well path."""
        return {w: [im["path"] for im in images] for w, images in self._wells.items()}

    def write_field(self, well: str, image: Any, *, field: str | int | None = None,
                    acquisition: int | None = None, **save_options: Any) -> str:
        """Write one field of `well` ("row/column") and list it; returns the field's path.

        field : its name in the well (default: the next integer); acquisition : the id of one of
        the plate's acquisitions. save_options go to :func:`save` (chunks, shards, codec, level,
        channels, labels, attributes, progress); the version and durability are the plate's.
        """
        row, column, name, images = self._new_field(well, field, acquisition, save_options)
        field_dir = os.path.join(self.root, row, column, name)
        save(image, field_dir, version=self.version, durable=self._durable, **save_options)
        self._list(well, images, {"path": name, "acquisition": acquisition})
        return field_dir

    def create_field(self, well: str, shape: Any, dtype: Any, *, field: str | int | None = None,
                     acquisition: int | None = None, **create_options: Any) -> Any:
        """Start one field of `well` written plane by plane (:func:`create`'s writer, returned);
        it is listed at once: its metadata is complete and unwritten planes read as the fill
        value until they arrive."""
        row, column, name, images = self._new_field(well, field, acquisition, create_options)
        writer = create_image(os.path.join(self.root, row, column, name), shape, dtype, version=self.version,
                        durable=self._durable, **create_options)
        self._list(well, images, {"path": name, "acquisition": acquisition})
        return writer

    def _new_field(self, well: str, field: Any, acquisition: Any, options: dict) -> tuple[str, str, str, list]:
        """Checks for a new field; makes its row and well groups. (row, column, name, images)."""
        if self._closed:
            raise InvalidArgumentError("the plate writer is closed")
        for bad in ("version", "durable", "overwrite", "executor"):
            if bad in options:
                raise InvalidArgumentError(f"{bad}= is the plate's, not a field's")
        row, column = self._well_parts(well)
        images = self._wells.get(well, [])
        name = str(len(images)) if field is None else str(field)
        ngff.check_path(name, "field")
        if "/" in name or name in (im["path"] for im in images):
            raise InvalidArgumentError(f"well {well} already has a field {name!r} (or it is not one name)")
        ids = [a["id"] for a in self._meta["acquisitions"]]
        if acquisition is not None and acquisition not in ids:
            raise InvalidArgumentError(f"acquisition {acquisition!r} is not one of the plate's (ids={ids})")
        if not images:  # the row and well groups, so that the field's parents are Zarr groups
            for sub in (row, f"{row}/{column}"):
                os.makedirs(os.path.join(self.root, sub), exist_ok=True)
                if not any(os.path.exists(os.path.join(self.root, sub, k)) for k in ("zarr.json", ".zgroup")):
                    self._group(sub, {})
        return row, column, name, images

    def _list(self, well: str, images: list, entry: dict) -> None:
        """The field is complete (or, for create_field, its metadata is): list it."""
        row, column = well.split("/")
        self._group(f"{row}/{column}", hcs.well_attributes(self.version, images + [entry]))
        self._wells[well] = images + [entry]
        self._write_plate()

    def _well_parts(self, well: Any) -> tuple[str, str]:
        parts = well.split("/") if isinstance(well, str) else []
        if len(parts) != 2 or parts[0] not in self._meta["rows"] or parts[1] not in self._meta["columns"]:
            raise InvalidArgumentError(f"well must be 'row/column' of the plate's rows {self._meta['rows']} and "
                                       f"columns {self._meta['columns']} (got={well!r:.40})")
        return parts[0], parts[1]

    def _write_plate(self) -> None:
        m = self._meta
        order = {(r, c): i for i, (r, c) in enumerate((r, c) for r in m["rows"] for c in m["columns"])}
        wells = sorted(self._wells, key=lambda w: order[tuple(w.split("/"))])
        count = max(len(v) for v in self._wells.values())
        attrs = hcs.plate_attributes(self.version, m["rows"], m["columns"], wells, m["name"], m["acquisitions"], count)
        self._group("", {**attrs, **m.get("extra", {})})

    def _group(self, sub: str, attrs: dict) -> None:
        write_group(self._adapter, sub, attrs, self.version == "0.5")

    def close(self) -> None:
        """End the plate (every field is already complete and listed)."""
        self._closed = True

    def __enter__(self) -> PlateWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        n = sum(len(v) for v in self._wells.values())
        return f"<voxcore.PlateWriter {self.root} wells={len(self._wells)} fields={n}>"
