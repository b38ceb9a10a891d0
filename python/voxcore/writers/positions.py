"""Multi-position acquisitions: ``vc.create(..., positions=)``.

Layout (navigate's OME-Zarr 0.5 writer uses the same one, and OME viewers read it as a plate):
an HCS plate with one well ``A/1`` whose fields ``0``, ``1``, ... are the positions, each an
OME-Zarr image with its own pyramid. A position's stage coordinates become its images'
translation (so viewers place the tiles where the stage was), and the positions' names and
coordinates are recorded under the root's ``voxcore`` attribute. Every field is created with
complete metadata before it is listed: a crash at any moment leaves a valid plate whose listed
positions read back, unwritten planes as the fill value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError
from ..images.acquisition import AcquisitionAccess
from ..images.memory import from_array
from .create import open_shape
from .plate import start_plate

WELL = "A/1"
_SPACE = ("z", "y", "x")


def parse_positions(positions: Any) -> list[dict]:
    """[{"name": str, "x"/"y"/"z": float (stage coordinates, optional)}] from an int, names or
    dicts."""
    if isinstance(positions, (bool, np.bool_)):
        raise InvalidArgumentError("positions must be a count, names or dicts (got a bool)")
    if isinstance(positions, (int, np.integer)):
        if positions < 1:
            raise InvalidArgumentError(f"positions must be >= 1 (got={positions})")
        return [{"name": str(i)} for i in range(int(positions))]
    if isinstance(positions, (str, bytes)) or not isinstance(positions, Sequence) or not positions:
        raise InvalidArgumentError(f"positions must be a count, names or dicts (got={positions!r:.40})")
    out = []
    for i, p in enumerate(positions):
        if isinstance(p, str):
            p = {"name": p}
        if not isinstance(p, dict):
            raise InvalidArgumentError(f"positions[{i}] must be a name or a dict (got={p!r:.40})")
        unknown = sorted(set(p) - {"name", *_SPACE})
        if unknown:
            raise InvalidArgumentError(f"positions[{i}] has unknown keys {unknown} (name, x, y, z)")
        entry = {"name": str(p.get("name", i))}
        if not entry["name"]:
            raise InvalidArgumentError(f"positions[{i}].name is empty")
        for d in _SPACE:
            if d in p:
                v = p[d]
                if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
                        or not math.isfinite(float(v)):
                    raise InvalidArgumentError(f"positions[{i}].{d} must be a finite number (got={v!r:.20})")
                entry[d] = float(v)
        out.append(entry)
    names = [p["name"] for p in out]
    if len(set(names)) != len(names):
        raise InvalidArgumentError(f"position names must differ (got={names[:8]})")
    return out


def create_positions(path: Any, shape: Sequence[int], dtype: Any, positions: Any, *,
                     dims: Sequence[str] | None = None, scale: Sequence[float] | None = None,
                     translation: Sequence[float] | None = None, units: Any = None, version: str = "0.5",
                     overwrite: bool = False, durable: bool = True, attributes: dict | None = None,
                     **create_options: Any) -> PositionsWriter:
    """See :func:`voxcore.create` (positions=); path is a local directory or a zarr-python store
    (a URL resolved by :func:`voxcore.create`)."""
    entries = parse_positions(positions)
    first, _, dims = open_shape(shape, dims)
    geometry = np.lib.stride_tricks.as_strided(np.zeros(1, np.dtype(dtype)), first, (0,) * len(first))
    img = from_array(geometry, dims=dims, scale=scale, translation=translation, units=units)
    for p in entries:
        missing = [d for d in _SPACE if d in p and d not in img.dims]
        if missing:
            raise InvalidArgumentError(f"position {p['name']!r} gives {missing} but the image has no such axis "
                                       f"(dims={img.dims})")
    plate = start_plate(path, ["A"], ["1"], name=create_options.get("name"), version=version, overwrite=overwrite,
                        durable=durable, attributes=attributes, own={"voxcore": {"positions": entries}})
    writers = []
    try:
        for p in entries:
            shift = tuple(t + p.get(d, 0.0) if d in _SPACE else t for d, t in zip(img.dims, img.translation))
            opts = {**create_options, "name": p["name"]}
            writers.append(plate.create_field(WELL, shape, dtype, dims=img.dims, scale=img.scale,
                                              translation=shift, units=img.units, **opts))
    except BaseException:
        for w in writers:
            w.close()
        raise
    return PositionsWriter(plate.root, writers, entries)


class PositionsWriter(AcquisitionAccess):
    """Writes the positions of an acquisition plane by plane (see :func:`voxcore.create`) and
    reads back with navigate's names: ``get_data(timepoint=, position=, channel=, z=-1,
    resolution=1)``, ``get_slice``, ``positions``, ``bits``, ``dx/dy/dz/dt``, ``shapes``,
    ``resolutions``, ``nbytes``. Close it (or leave its ``with`` block) to finish the pyramids."""

    def __init__(self, root: str, writers: list, entries: list[dict]):
        self.root, self._writers, self._entries = root, writers, entries
        self.dtype = writers[0].dtype
        self._closed = False

    @property
    def position_names(self) -> list[str]:
        return [p["name"] for p in self._entries]

    @property
    def stage_positions(self) -> list[dict]:
        """Each position's name and stage coordinates as given."""
        return [dict(p) for p in self._entries]

    def _writer(self, position: Any) -> Any:
        return self._writers[self._position(position)]

    def write_plane(self, plane: Any, t: int | None = None, c: int | None = None, z: int | None = None,
                    position: int = 0) -> None:
        """One plane of level 0 of a position (see :meth:`PyramidWriter.write_plane`)."""
        self._writer(position).write_plane(plane, t=t, c=c, z=z)

    def write(self, block: Any, t: int | None = None, c: int | None = None, z: int = 0, position: int = 0) -> None:
        """Consecutive planes of a position at once (see :meth:`PyramidWriter.write`)."""
        self._writer(position).write(block, t=t, c=c, z=z)

    def close(self) -> None:
        """Finish every position's volumes and pyramid levels."""
        if self._closed:
            return
        self._closed = True
        errors = []
        for w in self._writers:
            try:
                w.close()
            except Exception as e:  # every position is finished; the first failure is raised
                errors.append(e)
        if errors:
            raise errors[0]

    def __enter__(self) -> PositionsWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- AcquisitionAccess: what has been written, planes still held in memory included --------
    def _position_count(self) -> int:
        return len(self._writers)

    def _dims(self) -> tuple[str, ...]:
        return tuple(self._writers[0].dims)

    def _dtype(self) -> np.dtype:
        return np.dtype(self.dtype)

    def _level_shapes(self) -> list[tuple[int, ...]]:
        return [tuple(lv.shape) for lv in self._writers[0].levels]

    def _scale(self) -> tuple[float, ...]:
        return tuple(self._writers[0].levels[0].scale)

    def _read(self, position: int, index: tuple, level: int) -> np.ndarray:
        w = self._writers[position]
        picks = dict(zip(w.dims, index))
        z = picks.get("z")
        whole = w.get_data(t=picks.get("t"), c=picks.get("c"), z=z if isinstance(z, (int, np.integer)) else None,
                           level=level)
        rest = tuple(picks[d] for d in w.dims if d in ("y", "x"))
        if isinstance(z, slice):
            rest = (z,) + rest
        return whole[rest]

    def __repr__(self) -> str:
        return f"<voxcore.PositionsWriter {self.root} positions={len(self._writers)}>"
