"""navigate's data-source vocabulary over the positions of an acquisition (the fields of a plate,
the volumes a multi-position writer is filling): ``get_data``, ``get_slice``, ``positions``,
``bits``, ``dx/dy/dz/dt``, ``shapes``, ``resolutions`` and ``nbytes``, as navigate defines them
(resolutions XYZ and shapes ZYX per level, the BigDataViewer convention; a resolution is the
downsample factor of a level).

A class using it provides ``_position_count()`` and ``_position_image(p)`` (an image of the
model per position, its levels the pyramid), or overrides ``_dims``, ``_dtype``,
``_level_shapes`` (level 0 first, in dims order), ``_scale`` (level 0's) and ``_read``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InvalidArgumentError


class AcquisitionAccess:
    """Reading positions with navigate's names (see the module)."""

    # -- what the class provides (the defaults read images of the model) -------------------
    def _position_count(self) -> int:
        raise NotImplementedError

    def _position_image(self, p: int) -> Any:
        raise NotImplementedError

    def _first(self) -> Any:
        if self._position_count() == 0:
            raise InvalidArgumentError("the acquisition has no positions yet")
        return self._position_image(0)

    def _dims(self) -> tuple[str, ...]:
        return tuple(self._first().dims)

    def _dtype(self) -> np.dtype:
        return np.dtype(self._first().dtype)

    def _level_shapes(self) -> list[tuple[int, ...]]:
        return [tuple(lv.shape) for lv in self._first().levels]

    def _scale(self) -> tuple[float, ...]:
        return tuple(self._first().scale)

    def _read(self, position: int, index: tuple, level: int) -> np.ndarray:
        return self._position_image(position).read(index, level=level)

    # -- navigate's vocabulary -------------------------------------------------------------
    @property
    def positions(self) -> int:
        """How many positions the acquisition has."""
        return self._position_count()

    @property
    def bits(self) -> int:
        return int(self._dtype().itemsize * 8)

    def _extent(self, dim: str, level: int = 0) -> int:
        dims = self._dims()
        return self._level_shapes()[level][dims.index(dim)] if dim in dims else 1

    def _step(self, dim: str) -> float:
        dims = self._dims()
        return float(self._scale()[dims.index(dim)]) if dim in dims else 1.0

    dx = property(lambda self: self._step("x"), doc="Pixel size along x (level 0, its unit).")
    dy = property(lambda self: self._step("y"), doc="Pixel size along y.")
    dz = property(lambda self: self._step("z"), doc="Step along z.")
    dt = property(lambda self: self._step("t"), doc="Time between time points.")
    shape_x = property(lambda self: self._extent("x"))
    shape_y = property(lambda self: self._extent("y"))
    shape_z = property(lambda self: self._extent("z"))
    shape_c = property(lambda self: self._extent("c"))
    shape_t = property(lambda self: self._extent("t"))

    @property
    def resolutions(self) -> np.ndarray:
        """Each level's downsample factor along x, y, z (levels x 3, level 0 = 1, 1, 1)."""
        shapes = self._level_shapes()
        out = []
        for shape in shapes:
            out.append([max(1, round(self._extent(d) / max(1, self._extent_at(shape, d)))) for d in "xyz"])
        return np.array(out, dtype=int)

    def _extent_at(self, shape: tuple[int, ...], dim: str) -> int:
        dims = self._dims()
        return shape[dims.index(dim)] if dim in dims else 1

    @property
    def shapes(self) -> np.ndarray:
        """Each level's extent along z, y, x (levels x 3)."""
        return np.array([[self._extent_at(s, d) for d in "zyx"] for s in self._level_shapes()], dtype=int)

    @property
    def nbytes(self) -> int:
        """Bytes of every level of every position (navigate's pyramidal count)."""
        per_level = np.prod(self.shapes, axis=1) * self.shape_t * self.shape_c
        return int(per_level.sum()) * self.positions * self.bits // 8

    def _level_of(self, resolution: int) -> int:
        res = self.resolutions
        for k, r in enumerate(res):
            if int(r[0]) == int(resolution):
                return k
        raise InvalidArgumentError(f"no level with resolution {resolution} (resolutions: {[int(r[0]) for r in res]})")

    def _index(self, t: int, c: int, z: Any, y: Any, x: Any, level: int) -> tuple:
        picks = {"t": t, "c": c, "z": z, "y": y, "x": x}
        index = []
        for d in self._dims():
            index.append(picks[d])
        for d in ("t", "c"):
            if d not in self._dims() and picks[d] not in (0, None):
                raise InvalidArgumentError(f"the acquisition has no {d} axis (got {d}={picks[d]})")
        if "z" not in self._dims() and z not in (0, -1, None) and not isinstance(z, slice):
            raise InvalidArgumentError(f"the acquisition has no z axis (got z={z})")
        return tuple(index)

    def _position(self, p: int) -> int:
        n = self._position_count()
        if not isinstance(p, (int, np.integer)) or not 0 <= p < n:
            raise InvalidArgumentError(f"position out of range (positions={n}, got={p!r:.20})")
        return int(p)

    def get_data(self, timepoint: int = 0, position: int = 0, channel: int = 0, z: int = -1,
                 resolution: int = 1) -> np.ndarray:
        """The (z, y, x) volume of one time point, position and channel at the level whose
        downsample factor is `resolution` (1, 2, 4, ...); z >= 0 gives that (y, x) plane."""
        level = self._level_of(resolution)
        zi: Any = slice(None) if z is None or z < 0 else int(z)
        return self._read(self._position(position), self._index(timepoint, channel, zi, slice(None), slice(None),
                                                                level), level)

    def get_slice(self, x: Any, y: Any, c: int, z: Any = 0, t: int = 0, p: int = 0, subdiv: int = 0) -> np.ndarray:
        """``level[t, c, z, y, x]`` of position p at level `subdiv` (x, y, z ints or slices)."""
        if not 0 <= int(subdiv) < len(self._level_shapes()):
            raise InvalidArgumentError(f"subdiv out of range (levels={len(self._level_shapes())}, got={subdiv})")
        return self._read(self._position(p), self._index(t, c, z, y, x, int(subdiv)), int(subdiv))
