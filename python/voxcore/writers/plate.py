"""voxcore.create_plate: an HCS plate (OME-NGFF ``plate`` / ``well``) written field by field.

The plate group is published first with no wells. Each field is then written by :func:`save`
(its pyramid built beside its final place and renamed in; in a store, its arrays first and its
group's metadata last), and only after that are its well's and the plate's metadata rewritten,
each document by one atomic replace (one whole PUT in a store): at every moment, also after a
crash, the plate is valid and lists exactly the fields that are complete.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from .._stores import FileAdapter, _sync, is_zarr_store
from .._urls import resolve_target
from ..errors import InvalidArgumentError, InvalidMetadataError
from ..formats import hcs, ngff
from .create import create_image
from .save import save
from .target import Target, write_group


def create_plate(path: Any, rows: Sequence[str], columns: Sequence[str], *, name: str | None = None,
                 acquisitions: Sequence[dict] | None = None, version: str = "0.5",
                 overwrite: bool = False, durable: bool = True, attributes: dict | None = None,
                 storage_options: dict | None = None) -> PlateWriter:
    """Start an HCS plate at path: ``w.write_field(well, image, ...)`` adds one field (an image,
    array or :func:`build_pyramid` result, with its levels) to a well such as "B/3";
    ``w.close()`` or leaving a ``with`` block ends it.

    path : a local directory, a URL (``s3://``, ``memory://``, any writable fsspec protocol,
        with storage_options=: every object PUT whole, a field's arrays before its metadata and
        its well's and the plate's documents after it), or a zarr-python store / zarr.Group.
    rows / columns : the plate's row and column names (alphanumeric, e.g. "A".."H", "1".."12").
    acquisitions : [{"id": int, "name": ..., "maximumfieldcount": ..., ...}], as OME-NGFF has them.
    The plate is valid from the start and after every field; ``field_count`` is kept at the
    largest number of fields of a well. overwrite=True replaces a Zarr / OME-Zarr hierarchy at
    path (anything else is refused, as for :func:`save`; without it a Zarr node there is
    FileExistsError). attributes: custom root attributes beside the OME keys, as for :func:`save`.
    """
    return start_plate(path, rows, columns, name=name, acquisitions=acquisitions, version=version,
                       overwrite=overwrite, durable=durable, attributes=attributes,
                       storage_options=storage_options)


def start_plate(path: Any, rows: Sequence[str], columns: Sequence[str], *, name: str | None = None,
                acquisitions: Sequence[dict] | None = None, version: str = "0.5", overwrite: bool = False,
                durable: bool = True, attributes: dict | None = None, storage_options: dict | None = None,
                own: dict | None = None) -> PlateWriter:
    """:func:`create_plate`, with own: voxcore's own root attributes (a multi-position
    acquisition's {"voxcore": ...}), written after the user's in every plate document."""
    if version not in ngff.VERSIONS:
        raise InvalidArgumentError(f"version must be one of {ngff.VERSIONS} (got={version!r:.20})")
    for what, names in (("rows", rows), ("columns", columns)):
        if isinstance(names, str) or not all(isinstance(n, str) for n in names):
            raise InvalidArgumentError(f"{what} must be a list of names (got={names!r:.60})")
    acq = [dict(a) for a in acquisitions] if acquisitions is not None else []
    meta = {"rows": list(rows), "columns": list(columns), "name": name, "acquisitions": acq,
            "extra": {**ngff.with_user_attributes({}, attributes), **(own or {})}}
    attrs = _checked(lambda: hcs.plate_attributes(version, meta["rows"], meta["columns"], [], name, acq))
    attrs = {**attrs, **meta["extra"]}
    path = resolve_target(path, storage_options, zarr_only="create_plate writes an OME-Zarr plate")
    if not (isinstance(path, (str, os.PathLike)) or is_zarr_store(path) or hasattr(path, "store_path")):
        raise InvalidArgumentError("create_plate writes a local directory, a URL or a zarr-python store "
                                   f"(got={type(path).__name__})")
    target = Target(path, overwrite, durable)
    try:  # the empty plate is swapped in (or PUT) now; fields are written in place later
        target.group("", attrs, version == "0.5")
        target.commit()
    finally:
        target.abort()
    return PlateWriter(target.published(), target.label, version, meta, durable)


def _checked(make):
    try:
        return make()
    except InvalidMetadataError as e:  # what the caller passed, not what a file says
        raise InvalidArgumentError(str(e)) from None


async def _holds_any(store: Any, prefix: str) -> bool:
    async for _ in store.list_prefix(f"{prefix}/"):
        return True
    return False


class _InStore:
    """A node's place in a zarr-python store, given to save / create_image as a zarr.Group
    gives its own (``store_path``)."""

    def __init__(self, store: Any, path: str):
        from zarr.storage import StorePath

        self.store_path = StorePath(store, path)


class PlateWriter:
    """Adds fields to a plate created by :func:`create_plate` (see there)."""

    def __init__(self, adapter: Any, root: str, version: str, meta: dict, durable: bool):
        self.root, self.version, self._meta, self._durable = root, version, meta, durable
        self._adapter = adapter  # the plate's root: a FileAdapter, or a ZarrStoreAdapter in a store
        self._wells: dict[str, list[dict]] = {}  # well path -> its images, in the plate's order
        self._groups: set[str] = set()  # the row and well groups written (the plate is new)
        self._closed = False

    @property
    def wells(self) -> dict[str, list[str]]:
        """The fields written so far, by well path."""
        return {w: [im["path"] for im in images] for w, images in self._wells.items()}

    def write_field(self, well: str, image: Any, *, field: str | int | None = None,
                    acquisition: int | None = None, **save_options: Any) -> str:
        """Write one field of `well` ("row/column") and list it; returns the field's path (a URL
        for a plate at a URL).

        field : its name in the well (default: the next integer); acquisition : the id of one of
        the plate's acquisitions. save_options go to :func:`save` (chunks, shards, codec, level,
        channels, labels, attributes, progress); the version and durability are the plate's.
        """
        row, column, name, images = self._new_field(well, field, acquisition, save_options)
        where = self._written(f"{row}/{column}/{name}", lambda at: save(
            image, at, version=self.version, durable=self._durable, **save_options))
        self._list(well, images, {"path": name, "acquisition": acquisition})
        return where

    def create_field(self, well: str, shape: Any, dtype: Any, *, field: str | int | None = None,
                     acquisition: int | None = None, **create_options: Any) -> Any:
        """Start one field of `well` written plane by plane (:func:`create`'s writer, returned);
        it is listed at once: its metadata is complete and unwritten planes read as the fill
        value until they arrive."""
        row, column, name, images = self._new_field(well, field, acquisition, create_options)
        writer = self._written(f"{row}/{column}/{name}", lambda at: create_image(
            at, shape, dtype, version=self.version, durable=self._durable, **create_options))
        self._list(well, images, {"path": name, "acquisition": acquisition})
        return writer

    def _written(self, sub: str, write: Any) -> Any:
        """write(at) for the field at sub: at is its local directory (a failed save there leaves
        nothing: it is built beside), or the plate's store at its prefix, where a failed write's
        objects are deleted when the prefix held nothing before (the field is not listed, so its
        name is free again)."""
        if isinstance(self._adapter, FileAdapter):
            return write(os.path.join(self._adapter.root, *sub.split("/")))
        at = self._adapter.sub(sub)
        fresh = not _sync(_holds_any(at.store, at.prefix))
        try:
            return write(_InStore(at.store, at.prefix))
        except BaseException:
            if fresh:
                try:
                    _sync(at.store.delete_dir(at.prefix))
                except Exception:  # the write's own error is the one raised
                    pass
            raise

    def _new_field(self, well: str, field: Any, acquisition: Any, options: dict) -> tuple[str, str, str, list]:
        """Checks for a new field; makes its row and well groups. (row, column, name, images)."""
        if self._closed:
            raise InvalidArgumentError("the plate writer is closed")
        for bad in ("version", "durable", "overwrite", "executor", "storage_options"):
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
        for sub in (row, f"{row}/{column}"):  # the row and well groups: the field's parents are Zarr groups
            if sub not in self._groups:
                self._group(sub, {})
                self._groups.add(sub)
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
