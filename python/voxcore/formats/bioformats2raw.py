"""The bioformats2raw layout (OME-NGFF transitional ``bioformats2raw.layout``): a root group
whose images are the series ``0/``, ``1/``, ... (or those that ``OME/``'s ``series`` attribute
lists), beside ``OME/METADATA.ome.xml``. Metadata only.

0.4 keeps ``"bioformats2raw.layout": 3`` at the top of the root's ``.zattrs``; 0.5 under ``ome``.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidMetadataError, UnsupportedError
from .ngff import check_path

LAYOUT_KEY = "bioformats2raw.layout"
MAX_SERIES = 1 << 20  # a listing longer than this is refused, not walked


def layout(attrs: dict) -> int | None:
    """The layout version a root declares (only 3 exists), or None when it declares none."""
    ome = attrs.get("ome") if isinstance(attrs.get("ome"), dict) else attrs
    v = ome.get(LAYOUT_KEY)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise InvalidMetadataError(f"{LAYOUT_KEY} must be an integer (got={v!r:.20})")
    if v != 3:
        raise UnsupportedError(f"{LAYOUT_KEY} {v} is not supported (supported: 3)")
    return v


def listed_series(ome_attrs: dict | None) -> list[str] | None:
    """The series paths that the OME group's ``series`` attribute lists (checked), or None."""
    if not ome_attrs:
        return None
    node = ome_attrs.get("ome") if isinstance(ome_attrs.get("ome"), dict) else ome_attrs
    series: Any = node.get("series")
    if series is None:
        return None
    if not isinstance(series, list) or not all(isinstance(s, str) and s for s in series):
        raise InvalidMetadataError(f"OME/series must be a list of paths (got={series!r:.60})")
    if len(series) > MAX_SERIES or len(set(series)) != len(series):
        raise InvalidMetadataError("OME/series lists a path twice or too many series")
    for i, s in enumerate(series):
        check_path(s, f"OME/series[{i}]")
    return list(series)
