"""OME-NGFF ``omero`` channel metadata (transitional, 0.4 and 0.5): labels, colours, windows.

``omero.channels`` has one entry per index of the image's ``c`` axis: ``label``, ``color`` (6 hex
digits, no '#'), ``window`` {min, max, start, end}, ``active``, and optionally ``coefficient``,
``family``, ``inverted``; ``omero.rdefs`` {defaultT, defaultZ, model}. voxcore's own form of a
channel is a dict with "label", "color", "window" (the four numbers) and "active".
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from ..errors import InvalidMetadataError

_HEX = re.compile(r"^[0-9A-Fa-f]{6}$")
# Colours given to channels without one: the usual fluorescence order, then white.
DEFAULT_COLORS = ("0000FF", "00FF00", "FF0000", "FF00FF", "00FFFF", "FFFF00", "FFFFFF")
_WINDOW = ("min", "max", "start", "end")


def _number(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise InvalidMetadataError(f"{where} must be a finite number (got={v!r:.40})")
    return float(v)


def check_channel(ch: Any, where: str) -> dict:
    """One channel in voxcore's form, checked (InvalidMetadataError naming where)."""
    if not isinstance(ch, dict):
        raise InvalidMetadataError(f"{where} must be an object (got={ch!r:.40})")
    out: dict[str, Any] = {}
    label = ch.get("label")
    if label is not None and not isinstance(label, str):
        raise InvalidMetadataError(f"{where}.label must be a string (got={label!r:.40})")
    out["label"] = label
    color = ch.get("color")
    if color is not None and (not isinstance(color, str) or not _HEX.match(color)):
        raise InvalidMetadataError(f"{where}.color must be 6 hex digits without '#' (got={color!r:.40})")
    out["color"] = color.upper() if color else None
    window = ch.get("window")
    if window is not None:
        if not isinstance(window, dict) or any(k not in window for k in _WINDOW):
            raise InvalidMetadataError(f"{where}.window must have min, max, start and end (got={window!r:.60})")
        out["window"] = {k: _number(window[k], f"{where}.window.{k}") for k in _WINDOW}
        if out["window"]["min"] > out["window"]["max"]:
            raise InvalidMetadataError(f"{where}.window has min > max (got={window!r:.60})")
    else:
        out["window"] = None
    active = ch.get("active", True)
    if not isinstance(active, bool):
        raise InvalidMetadataError(f"{where}.active must be true or false (got={active!r:.20})")
    out["active"] = active
    for key in ("coefficient", "family", "inverted"):
        if key in ch:
            out[key] = ch[key]
    return out


def read_channels(attrs: dict, n_channels: int | None) -> list[dict] | None:
    """The omero channels of group attributes (either version), checked; one per channel of the
    image's c axis (n_channels; None: the image has no c axis, then one channel). None when the
    group has no omero section."""
    ome = attrs.get("ome") if isinstance(attrs.get("ome"), dict) else attrs
    omero = ome.get("omero")
    if omero is None:
        return None
    if not isinstance(omero, dict) or not isinstance(omero.get("channels"), list):
        raise InvalidMetadataError(f"omero must be an object with a channels list (got={omero!r:.60})")
    channels = [check_channel(c, f"omero.channels[{i}]") for i, c in enumerate(omero["channels"])]
    want = 1 if n_channels is None else n_channels
    if len(channels) != want:
        raise InvalidMetadataError(f"omero lists {len(channels)} channels but the image has {want} "
                                   "(one entry per index of the c axis)")
    return channels


def channels_for(given: Sequence[Any] | None, n_channels: int, windows: Sequence[tuple[float, float]],
                 value_range: tuple[float, float]) -> list[dict]:
    """Channels to write: the given ones checked (missing colours and windows filled in), or
    defaults. windows: (start, end) per channel from the data; value_range: the dtype's (min, max)."""
    if given is not None and len(given) != n_channels:
        raise InvalidMetadataError(f"channels lists {len(given)} entries but the image has {n_channels} "
                                   "channels")
    out = []
    for i in range(n_channels):
        ch = check_channel(given[i] if given is not None else {}, f"channels[{i}]")
        if ch["color"] is None:
            ch["color"] = DEFAULT_COLORS[i % len(DEFAULT_COLORS)] if n_channels > 1 else "FFFFFF"
        if ch["label"] is None:
            ch["label"] = f"channel {i}"
        if ch["window"] is None:
            start, end = windows[i]
            ch["window"] = {"min": float(value_range[0]), "max": float(value_range[1]),
                            "start": float(start), "end": float(end)}
        out.append(ch)
    return out


def omero_attributes(channels: list[dict], version: str) -> dict:
    """The omero section for channels (voxcore's form)."""
    entries = []
    for ch in channels:
        e = {"label": ch["label"], "color": ch["color"], "window": dict(ch["window"]), "active": ch["active"]}
        for key in ("coefficient", "family", "inverted"):
            if key in ch:
                e[key] = ch[key]
        entries.append(e)
    out: dict[str, Any] = {"channels": entries}
    if version == "0.4":
        out["version"] = "0.4"
    return out
