"""OME-NGFF (OME-Zarr) 0.4 / 0.5 multiscales metadata: build it and read it back.

Rules (see FORMATS.md, "OME-NGFF multiscales"):

- ``axes``: 2-5 entries, unique names, order time -> channel -> space, 2-3 space axes, each with
  ``name``, ``type`` (space|time|channel) and, when known, a UDUNITS-2 ``unit``.
- ``datasets``: paths "0", "1", ... from highest to lowest resolution; each has exactly one
  ``scale`` then one ``translation`` transform, each with one value per axis.
- 0.4: the multiscales list sits in the group's ``.zattrs`` and each entry carries
  ``"version": "0.4"``. 0.5: it sits in ``zarr.json`` ``attributes.ome`` next to
  ``"version": "0.5"`` and the entries carry no version.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from .._core import check_key
from ..errors import (
    InferredMetadataWarning,
    InvalidArgumentError,
    InvalidMetadataError,
    UnsafeMetadataPathError,
    UnsafePathError,
    UnsupportedError,
)

VERSIONS = ("0.4", "0.5")
LEGACY_VERSIONS = ("0.1", "0.2", "0.3")  # read only

# The axis names voxcore knows the type of. Any other name is refused: OME allows custom types,
# but a wrong guess (space vs time) gives a wrong pyramid, so the caller must use these names.
AXIS_TYPES = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}

# UDUNITS-2 names the NGFF spec lists for space and time axes.
SPACE_UNITS = {
    "angstrom", "attometer", "centimeter", "decimeter", "exameter", "femtometer", "foot",
    "gigameter", "hectometer", "inch", "kilometer", "megameter", "meter", "micrometer", "mile",
    "millimeter", "nanometer", "parsec", "petameter", "picometer", "terameter", "yard",
    "yoctometer", "yottameter", "zeptometer", "zettameter",
}
TIME_UNITS = {
    "attosecond", "centisecond", "day", "decisecond", "exasecond", "femtosecond", "gigasecond",
    "hectosecond", "hour", "kilosecond", "megasecond", "microsecond", "millisecond", "minute",
    "nanosecond", "petasecond", "picosecond", "second", "terasecond", "yoctosecond",
    "yottasecond", "zeptosecond", "zettasecond",
}

_ORDER = {"time": 0, "channel": 1, "space": 2}


def default_dims(ndim: int) -> tuple[str, ...]:
    """Axis names by rank: the last 2-3 axes are space (z, y, x); earlier ones are c, then t.

    2 -> (y, x); 3 -> (z, y, x); 4 -> (c, z, y, x); 5 -> (t, c, z, y, x).
    """
    table = {2: ("y", "x"), 3: ("z", "y", "x"), 4: ("c", "z", "y", "x"), 5: ("t", "c", "z", "y", "x")}
    if ndim not in table:
        raise InvalidArgumentError(f"OME-Zarr images have 2 to 5 axes (got rank={ndim})")
    return table[ndim]


def check_axes(dims: Sequence[str], units: Sequence[str | None] | None = None) -> list[dict]:
    """Validate axis names (and units) and return the OME ``axes`` list."""
    dims = tuple(dims)
    if not 2 <= len(dims) <= 5:
        raise InvalidArgumentError(f"OME-Zarr images have 2 to 5 axes (got={len(dims)})")
    if len(set(dims)) != len(dims):
        raise InvalidArgumentError(f"axis names must be unique (got={dims})")
    bad = [d for d in dims if d not in AXIS_TYPES]
    if bad:
        raise InvalidArgumentError(f"unknown axis names {bad} (use t, c, z, y, x)")
    types = [AXIS_TYPES[d] for d in dims]
    if [_ORDER[t] for t in types] != sorted(_ORDER[t] for t in types):
        raise InvalidArgumentError(f"axes must be ordered time, channel, space (got={dims})")
    if types.count("time") > 1 or types.count("channel") > 1:
        raise InvalidArgumentError(f"at most one time and one channel axis (got={dims})")
    if not 2 <= types.count("space") <= 3:
        raise InvalidArgumentError(f"OME-Zarr needs 2 or 3 space axes (got={dims})")
    if units is None:
        units = (None,) * len(dims)
    units = tuple(units)
    if len(units) != len(dims):
        raise InvalidArgumentError(f"units length differs from dims (expected={len(dims)}, got={len(units)})")
    axes = []
    for name, typ, unit in zip(dims, types, units):
        axis: dict[str, Any] = {"name": name, "type": typ}
        if unit is not None:
            allowed = SPACE_UNITS if typ == "space" else TIME_UNITS if typ == "time" else set()
            if unit not in allowed:
                raise InvalidArgumentError(
                    f"unit {unit!r} is not a UDUNITS-2 {typ} unit the NGFF spec allows (axis={name})")
            axis["unit"] = unit
        axes.append(axis)
    return axes


def check_vector(values: Any, n: int, name: str, positive: bool = False) -> tuple[float, ...]:
    try:
        t = tuple(float(v) for v in values)
    except TypeError:
        raise InvalidArgumentError(f"{name} must be a sequence of numbers (got={values!r:.60})") from None
    if len(t) != n:
        raise InvalidArgumentError(f"{name} length differs from dims (expected={n}, got={len(t)})")
    if not all(math.isfinite(v) for v in t) or (positive and not all(v > 0 for v in t)):
        raise InvalidArgumentError(f"{name} must be finite{' and > 0' if positive else ''} (got={t})")
    return t


def multiscale(axes: list[dict], levels: Sequence[tuple[Sequence[float], Sequence[float]]],
               version: str, name: str | None = None, method: str | None = None,
               method_version: str | None = None) -> dict:
    """One ``multiscales`` entry. levels: (scale, translation) per level, highest resolution first."""
    if version not in VERSIONS:
        raise InvalidArgumentError(f"version must be one of {VERSIONS} (got={version!r})")
    entry: dict[str, Any] = {}
    if version == "0.4":
        entry["version"] = "0.4"
    if name is not None:
        entry["name"] = str(name)
    entry["axes"] = axes
    entry["datasets"] = [
        {"path": str(i), "coordinateTransformations": [
            {"type": "scale", "scale": [float(v) for v in scale]},
            {"type": "translation", "translation": [float(v) for v in translation]},
        ]}
        for i, (scale, translation) in enumerate(levels)
    ]
    if method is not None:
        entry["type"] = method
        entry["metadata"] = {"method": "voxcore.downsample", "version": method_version,
                             "kwargs": {"method": method}}
    return entry


# Keys of group attributes that belong to OME-NGFF (0.4 keeps them at the top level, 0.5 under
# "ome") or to voxcore: a user's attributes may not take them.
RESERVED_KEYS = ("ome", "multiscales", "omero", "labels", "image-label", "plate", "well",
                 "bioformats2raw.layout", "voxcore")


def with_user_attributes(attrs: dict, user: Any) -> dict:
    """attrs with a user's custom attributes beside (never inside) the OME keys: a dict of
    JSON values (no NaN or infinity) whose keys are not OME-NGFF's or voxcore's."""
    if user is None:
        return attrs
    import json

    if not isinstance(user, dict) or not all(isinstance(k, str) for k in user):
        raise InvalidArgumentError(f"attributes must be a dict with string keys (got={type(user).__name__})")
    taken = sorted(k for k in user if k in RESERVED_KEYS)
    if taken:
        raise InvalidArgumentError(f"attributes may not use the OME-NGFF / voxcore keys {taken}")
    try:
        json.dumps(user, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise InvalidArgumentError(f"attributes must be JSON values ({e})") from None
    return {**attrs, **user}


def per_axis_dict(value: Any, dims: Sequence[str], default: Any, what: str) -> Any:
    """value as one entry per axis when given as {axis name: value} (axes left out get default);
    anything else as it is."""
    if not isinstance(value, dict):
        return value
    unknown = sorted(str(k) for k in value if k not in dims)
    if unknown:
        raise InvalidArgumentError(f"{what} names axes the image does not have: {unknown} (dims={tuple(dims)})")
    return tuple(value.get(d, default) for d in dims)


def group_attributes(entry: dict, version: str) -> dict:
    """The group attributes for one multiscale: .zattrs content (0.4) or zarr.json attributes (0.5)."""
    if version == "0.4":
        return {"multiscales": [entry]}
    return {"ome": {"version": "0.5", "multiscales": [entry]}}


def read_multiscales(attrs: dict) -> tuple[str, list[dict]]:
    """(version, multiscales) from group attributes of either version."""
    if isinstance(attrs.get("ome"), dict):
        ome = attrs["ome"]
        version = ome.get("version")
        ms = ome.get("multiscales")
    else:
        ms = attrs.get("multiscales")
        version = ms[0].get("version") if isinstance(ms, list) and ms and isinstance(ms[0], dict) else None
    if not isinstance(ms, list) or not ms:
        raise InvalidMetadataError("no OME multiscales in the group attributes")
    if not isinstance(version, str):
        raise InvalidMetadataError(f"OME version missing or not a string (got={version!r:.20})")
    if version not in VERSIONS + LEGACY_VERSIONS:
        raise UnsupportedError(
            f"OME-NGFF version {version!r:.20} is not supported (supported: {', '.join(LEGACY_VERSIONS + VERSIONS)})")
    return version, ms


def check_path(path: str, where: str) -> str:
    """``path`` if it is a relative key inside the group, else UnsafeMetadataPathError (an
    InvalidMetadataError and an UnsafePathError) naming ``where`` and the path."""
    try:
        check_key(path)
    except UnsafePathError as e:
        raise UnsafeMetadataPathError(f"{where}={path!r:.80} leaves the group or is malformed: {e}") from e
    return path


def _transforms(cts: Any, n: int, where: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(scale, translation) from a coordinateTransformations list: one scale, then an optional
    translation, each with one finite value per axis; or a lone identity."""
    if not isinstance(cts, list) or not cts:
        raise InvalidMetadataError(f"{where}.coordinateTransformations must be a non-empty list")
    if cts == [{"type": "identity"}]:  # iohub writes it (0.4 defines the type): unit scale, no shift
        return (1.0,) * n, (0.0,) * n
    scale: tuple[float, ...] | None = None
    trans: tuple[float, ...] = (0.0,) * n
    for i, t in enumerate(cts):
        kind = t.get("type") if isinstance(t, dict) else None
        if kind not in ("scale", "translation") or (kind == "scale") != (i == 0) or i > 1:
            raise InvalidMetadataError(
                f"{where}.coordinateTransformations must be a scale then an optional translation (got={cts!r:.80})")
        values = t.get(kind)
        if not isinstance(values, list) or len(values) != n or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
            raise InvalidMetadataError(f"{where}.{kind} must be {n} finite numbers (got={values!r:.60})")
        if kind == "scale":
            if not all(v > 0 for v in values):
                raise InvalidMetadataError(f"{where}.scale must be > 0 (got={values!r:.60})")
            scale = tuple(float(v) for v in values)
        else:
            trans = tuple(float(v) for v in values)
    return scale, trans


def parse_multiscale(attrs: dict, rank: Callable[[], int] | None = None) -> dict:
    """The first multiscale of a group, checked: version, name, type, axes (name, type, unit)
    and datasets (path, scale, translation), the top-level transformations folded in.

    A multiscale of 0.1-0.3 (or tifffile's stores) may have no axes: they are inferred from the
    rank of its first level (rank(), by :func:`default_dims`), with an InferredMetadataWarning,
    and its levels without transformations get unit scales."""
    version, ms = read_multiscales(attrs)
    m = ms[0]
    if not isinstance(m, dict):
        raise InvalidMetadataError("multiscales[0] must be an object")
    axes = m.get("axes")
    if axes is None and version in LEGACY_VERSIONS and rank is not None:
        n = rank()
        try:
            axes = list(default_dims(n))
        except InvalidArgumentError:
            raise InvalidMetadataError(f"multiscales[0] has no axes and its first level has {n} dimensions "
                                       "(2 to 5 can be inferred)") from None
        warnings.warn(f"OME-NGFF {version} multiscale without axes: dims inferred from its rank as {tuple(axes)}",
                      InferredMetadataWarning, stacklevel=4)
        m = {**m, "axes": axes, "datasets": [
            {**d, "coordinateTransformations": d.get("coordinateTransformations",
                                                     [{"type": "scale", "scale": [1.0] * n}])}
            if isinstance(d, dict) else d for d in (m.get("datasets") or [])]}
    elif version in LEGACY_VERSIONS and isinstance(m.get("datasets"), list):
        n = len(axes) if isinstance(axes, list) else 0  # 0.3: axes as names, levels without transformations
        m = {**m, "datasets": [
            {**d, "coordinateTransformations": d.get("coordinateTransformations",
                                                     [{"type": "scale", "scale": [1.0] * n}])}
            if isinstance(d, dict) else d for d in m["datasets"]]}
    if not isinstance(axes, list) or not 2 <= len(axes) <= 5:
        raise InvalidMetadataError(f"multiscales[0].axes must list 2 to 5 axes (got={axes!r:.60})")
    out_axes = []
    for i, a in enumerate(axes):
        if isinstance(a, str):  # 0.3 style: names only
            a = {"name": a}
        if not isinstance(a, dict) or not isinstance(a.get("name"), str):
            raise InvalidMetadataError(f"multiscales[0].axes[{i}] needs a string name (got={a!r:.40})")
        typ = a.get("type", AXIS_TYPES.get(a["name"]))
        if typ is not None and not isinstance(typ, str):
            raise InvalidMetadataError(f"multiscales[0].axes[{i}].type must be a string (got={typ!r:.40})")
        unit = a.get("unit")
        if unit is not None and not isinstance(unit, str):
            raise InvalidMetadataError(f"multiscales[0].axes[{i}].unit must be a string (got={unit!r:.40})")
        out_axes.append({"name": a["name"], "type": typ, "unit": unit})
    if len({a["name"] for a in out_axes}) != len(out_axes):
        raise InvalidMetadataError(f"multiscales[0].axes names must be unique (got={[a['name'] for a in out_axes]})")
    lowered = [a["name"].lower() for a in out_axes]
    if set(lowered) <= set(AXIS_TYPES) and len(set(lowered)) == len(lowered):
        for a, low in zip(out_axes, lowered):  # "T", "C", "Z", "Y", "X" (iohub): the model's names
            a["name"] = low
    n = len(out_axes)
    datasets = m.get("datasets")
    if not isinstance(datasets, list) or not datasets:
        raise InvalidMetadataError("multiscales[0].datasets must be a non-empty list")
    top = m.get("coordinateTransformations")
    gscale, gtrans = _transforms(top, n, "multiscales[0]") if top is not None else ((1.0,) * n, (0.0,) * n)
    levels = []
    seen: dict[str, int] = {}
    for i, d in enumerate(datasets):
        where = f"multiscales[0].datasets[{i}]"
        if not isinstance(d, dict) or not isinstance(d.get("path"), str) or not d["path"]:
            raise InvalidMetadataError(f"{where}.path must be a non-empty string")
        check_path(d["path"], f"{where}.path")
        if d["path"] in seen:
            raise InvalidMetadataError(
                f"{where}.path={d['path']!r:.80} is listed twice (first at datasets[{seen[d['path']]}])")
        seen[d["path"]] = i
        scale, trans = _transforms(d.get("coordinateTransformations"), n, where)
        levels.append({
            "path": d["path"],
            "scale": tuple(s * g for s, g in zip(scale, gscale)),
            "translation": tuple(t * g + h for t, g, h in zip(trans, gscale, gtrans)),
        })
    return {"version": version, "name": m.get("name"), "type": m.get("type"), "axes": out_axes, "levels": levels}


def read_labels(attrs: dict) -> list[str]:
    """The label names a labels/ group lists (either version): unique relative paths."""
    ome = attrs.get("ome") if isinstance(attrs.get("ome"), dict) else attrs
    names = ome.get("labels", [])
    if not isinstance(names, list) or not all(isinstance(x, str) and x for x in names):
        raise InvalidMetadataError(f"labels must be a list of names (got={names!r:.60})")
    seen: set[str] = set()
    for i, name in enumerate(names):
        check_path(name, f"labels[{i}]")
        if name in seen:
            raise InvalidMetadataError(f"labels[{i}]={name!r:.80} is listed twice")
        seen.add(name)
    return names
