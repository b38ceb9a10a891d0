"""OME-NGFF high-content screening metadata: ``plate`` and ``well`` (0.4 and 0.5), parsed and
checked. Metadata only: which wells a plate has and where, which fields a well has.

0.4 keeps ``version`` inside ``plate`` / ``well`` in ``.zattrs``; 0.5 puts both under the
``ome`` key of ``zarr.json`` attributes with one ``version`` there. A well path is exactly
``row/column``; rowIndex / columnIndex must point at those names.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import InvalidMetadataError, UnsupportedError
from .ngff import VERSIONS, check_path

_NAME = re.compile(r"^[A-Za-z0-9]+$")


def _section(attrs: dict, key: str) -> tuple[dict, str] | None:
    """(the plate or well object, its version), or None when attrs has no such section."""
    ome = attrs.get("ome") if isinstance(attrs.get("ome"), dict) else None
    node = (ome or attrs).get(key)
    if node is None:
        return None
    if not isinstance(node, dict):
        raise InvalidMetadataError(f"{key} must be an object (got={node!r:.40})")
    version = (ome or {}).get("version") if ome is not None else node.get("version")
    if not isinstance(version, str):
        raise InvalidMetadataError(f"{key}: OME version missing or not a string (got={version!r:.20})")
    if version not in VERSIONS:
        raise UnsupportedError(f"OME-NGFF {key} version {version!r:.20} is not supported "
                               f"(supported: {', '.join(VERSIONS)})")
    return node, version


def has_plate(attrs: dict) -> bool:
    return _has(attrs, "plate")


def has_well(attrs: dict) -> bool:
    return _has(attrs, "well")


def _has(attrs: dict, key: str) -> bool:
    ome = attrs.get("ome") if isinstance(attrs.get("ome"), dict) else attrs
    return key in ome


def _int(v: Any, where: str, low: int = 0) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise InvalidMetadataError(f"{where} must be an integer >= {low} (got={v!r:.40})")
    return v


def _names(items: Any, where: str) -> list[str]:
    if not isinstance(items, list) or not items:
        raise InvalidMetadataError(f"plate.{where} must be a non-empty list")
    out = []
    for i, item in enumerate(items):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not _NAME.match(name):
            raise InvalidMetadataError(f"plate.{where}[{i}].name must be alphanumeric (got={name!r:.40})")
        if name in out:
            raise InvalidMetadataError(f"plate.{where}[{i}].name={name!r} is listed twice")
        out.append(name)
    return out


def read_plate(attrs: dict) -> dict:
    """The plate section, checked: version, name, rows, columns, wells [{path, row, column,
    row_index, column_index}], acquisitions [{id, name, maximumfieldcount, ...}], field_count."""
    found = _section(attrs, "plate")
    if found is None:
        raise InvalidMetadataError("no OME plate in the group attributes")
    plate, version = found
    rows, columns = _names(plate.get("rows"), "rows"), _names(plate.get("columns"), "columns")
    wells = plate.get("wells")
    if not isinstance(wells, list):
        raise InvalidMetadataError("plate.wells must be a list")
    out_wells, seen = [], set()
    for i, w in enumerate(wells):
        where = f"plate.wells[{i}]"
        path = w.get("path") if isinstance(w, dict) else None
        if not isinstance(path, str):
            raise InvalidMetadataError(f"{where}.path must be a string (got={path!r:.40})")
        check_path(path, f"{where}.path")
        parts = path.split("/")
        if len(parts) != 2:
            raise InvalidMetadataError(f"{where}.path must be 'row/column' (got={path!r:.40})")
        row, col = parts
        if row not in rows or col not in columns:
            raise InvalidMetadataError(f"{where}.path={path!r} names a row or column the plate does not list "
                                       f"(rows={rows}, columns={columns})")
        ri, ci = rows.index(row), columns.index(col)
        for key, expect, names in (("rowIndex", ri, rows), ("columnIndex", ci, columns)):
            if key in w and _int(w[key], f"{where}.{key}") != expect:
                raise InvalidMetadataError(
                    f"{where}.{key}={w[key]} points at {names[w[key]] if w[key] < len(names) else 'nothing'!r}"
                    f", not at {path.split('/')[0 if key == 'rowIndex' else 1]!r} of its path")
        if path in seen:
            raise InvalidMetadataError(f"{where}.path={path!r} is listed twice")
        seen.add(path)
        out_wells.append({"path": path, "row": row, "column": col, "row_index": ri, "column_index": ci})
    acquisitions = plate.get("acquisitions", [])
    if not isinstance(acquisitions, list):
        raise InvalidMetadataError("plate.acquisitions must be a list")
    out_acq = []
    for i, a in enumerate(acquisitions):
        if not isinstance(a, dict):
            raise InvalidMetadataError(f"plate.acquisitions[{i}] must be an object")
        out_acq.append({**a, "id": _int(a.get("id"), f"plate.acquisitions[{i}].id")})
    field_count = plate.get("field_count")
    if field_count is not None:
        _int(field_count, "plate.field_count", 1)
    name = plate.get("name")
    if name is not None and not isinstance(name, str):
        raise InvalidMetadataError(f"plate.name must be a string (got={name!r:.40})")
    return {"version": version, "name": name, "rows": rows, "columns": columns, "wells": out_wells,
            "acquisitions": out_acq, "field_count": field_count}


def read_well(attrs: dict) -> dict:
    """The well section, checked: version and images [{path, acquisition}]."""
    found = _section(attrs, "well")
    if found is None:
        raise InvalidMetadataError("no OME well in the group attributes")
    well, version = found
    images = well.get("images")
    if not isinstance(images, list) or not images:
        raise InvalidMetadataError("well.images must be a non-empty list")
    out, seen = [], set()
    for i, im in enumerate(images):
        path = im.get("path") if isinstance(im, dict) else None
        if not isinstance(path, str) or not path:
            raise InvalidMetadataError(f"well.images[{i}].path must be a non-empty string (got={path!r:.40})")
        check_path(path, f"well.images[{i}].path")
        if path in seen:
            raise InvalidMetadataError(f"well.images[{i}].path={path!r} is listed twice")
        seen.add(path)
        acq = im.get("acquisition")
        if acq is not None:
            _int(acq, f"well.images[{i}].acquisition")
        out.append({"path": path, "acquisition": acq})
    return {"version": version, "images": out}


def plate_attributes(version: str, rows: list[str], columns: list[str], wells: list[str],
                     name: str | None = None, acquisitions: list[dict] | None = None,
                     field_count: int | None = None) -> dict:
    """The group attributes of a plate (.zattrs for 0.4, zarr.json attributes for 0.5), checked
    by :func:`read_plate` before they are returned: one copy of the rules for both ways."""
    plate: dict[str, Any] = {}
    if name is not None:
        plate["name"] = name
    plate["rows"] = [{"name": r} for r in rows]
    plate["columns"] = [{"name": c} for c in columns]
    plate["wells"] = [{"path": w, "rowIndex": rows.index(w.split("/")[0]) if w.split("/")[0] in rows else -1,
                       "columnIndex": columns.index(w.split("/")[-1]) if w.split("/")[-1] in columns else -1}
                      for w in wells]
    if acquisitions:
        plate["acquisitions"] = [dict(a) for a in acquisitions]
    if field_count is not None:
        plate["field_count"] = field_count
    attrs = _versioned(version, "plate", plate)
    read_plate(attrs)
    return attrs


def well_attributes(version: str, images: list[dict]) -> dict:
    """The group attributes of a well; images: [{"path", "acquisition" (optional)}]."""
    well = {"images": [{k: v for k, v in im.items() if v is not None} for im in images]}
    attrs = _versioned(version, "well", well)
    read_well(attrs)
    return attrs


def _versioned(version: str, key: str, node: dict) -> dict:
    if version not in VERSIONS:
        raise InvalidMetadataError(f"OME-NGFF version must be one of {VERSIONS} (got={version!r:.20})")
    if version == "0.4":
        return {key: {**node, "version": "0.4"}}
    if key == "plate":  # ome-zarr-py writes it there too, and ome-zarr-models' 0.5 models look for it
        node = {**node, "version": version}
    return {"ome": {"version": version, key: node}}
