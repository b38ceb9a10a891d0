"""Label images saved with an OME-Zarr image (labels/NAME): checked before anything is written."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InvalidArgumentError
from ..images.memory import MemoryImage, from_array
from ..operations.pyramid import Pyramid


def label_images(labels: Any, pyr: Pyramid) -> list[tuple[str, MemoryImage, dict]]:
    """(name, image, image-label extras) per label image; each must match level 0's grid."""
    if labels is None:
        return []
    if not isinstance(labels, dict):
        raise InvalidArgumentError("labels must be a dict {name: array or {'data': array, 'colors': ...}}")
    img = pyr.image
    out = []
    for name, item in labels.items():
        if (not isinstance(name, str) or not name or name.startswith(".")
                or any(c in name for c in "/\\\0")):
            raise InvalidArgumentError(f"label names must be plain names (got={name!r:.40})")
        extra: dict = {}
        if isinstance(item, dict):
            extra = {k: v for k, v in item.items() if k in ("colors", "properties")}
            unknown = set(item) - {"data", "colors", "properties"}
            if unknown or "data" not in item:
                raise InvalidArgumentError(f"label {name}: keys are data, colors, properties (got={sorted(item)})")
            item = item["data"]
        if isinstance(item, Pyramid):
            item = item.image
        try:
            lab = from_array(item, dims=img.dims, scale=img.scale, translation=img.translation, units=img.units,
                             name=name)
        except InvalidArgumentError as e:
            raise InvalidArgumentError(f"label {name}: {e}") from None
        extra = _check_label_extra(name, extra)
        if not np.issubdtype(lab.dtype, np.integer):
            raise InvalidArgumentError(f"label {name} must have an integer dtype (got={lab.dtype})")
        if lab.shape != img.shape:
            raise InvalidArgumentError(f"label {name} must have level 0's shape (expected={img.shape}, got={lab.shape})")
        out.append((name, lab, extra))
    return out


def _check_label_extra(name: str, extra: dict) -> dict:
    """colors ({value: rgba} or OME's [{"label-value", "rgba"}]) and properties (a list of
    objects with "label-value"), checked and put in OME form before anything is written."""
    out: dict[str, Any] = {}
    colors = extra.get("colors")
    if colors is not None:
        items = colors.items() if isinstance(colors, dict) else None
        if isinstance(colors, list) and all(isinstance(c, dict) and set(c) == {"label-value", "rgba"}
                                            for c in colors):
            items = [(c["label-value"], c["rgba"]) for c in colors]
        ok = items is not None
        rows = []
        for value, rgba in (items or []):
            if (isinstance(value, bool) or not isinstance(value, (int, np.integer))
                    or not isinstance(rgba, (list, tuple)) or len(rgba) != 4
                    or not all(isinstance(c, (int, np.integer)) and 0 <= c <= 255 for c in rgba)):
                ok = False
                break
            rows.append({"label-value": int(value), "rgba": [int(c) for c in rgba]})
        if not ok:
            raise InvalidArgumentError(
                f"label {name}: colors must map integer label values to 4 RGBA integers 0-255 (got={colors!r:.60})")
        out["colors"] = rows
    props = extra.get("properties")
    if props is not None:
        if not isinstance(props, list) or not all(
                isinstance(p, dict) and isinstance(p.get("label-value"), (int, np.integer))
                and not isinstance(p.get("label-value"), bool) for p in props):
            raise InvalidArgumentError(
                f"label {name}: properties must be a list of objects with an integer 'label-value' "
                f"(got={props!r:.60})")
        out["properties"] = [dict(p, **{"label-value": int(p["label-value"])}) for p in props]
    return out


def image_label(extra: dict, version: str) -> dict:
    meta: dict[str, Any] = {}
    if version == "0.4":
        meta["version"] = "0.4"
    if extra.get("colors"):
        meta["colors"] = extra["colors"]
    if extra.get("properties"):
        meta["properties"] = extra["properties"]
    meta["source"] = {"image": "../../"}
    return meta
