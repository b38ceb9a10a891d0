"""BoundingBox and Mag: webknossos' box and magnification, on every axis of an array.

As webknossos' ``NDBoundingBox`` and ``Mag``, but in the array's own axis order (t, c, z, y, x
...: numpy's), where webknossos orders x, y, z. Coordinates are level-0 voxels (webknossos'
"Mag(1)"). A scalar (an ``int`` or ``Mag(2)``) given where a vector is expected applies to every
axis; a sequence must have one entry per axis. Boxes are immutable and hashable.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import InvalidArgumentError


def _vec(value: Any, n: int | None, name: str) -> tuple[int, ...]:
    """value as integers: n of them (a scalar repeated), or any count when n is None."""
    if isinstance(value, Mag):
        value = value.factors if len(value.factors) != 1 else value.factors[0]
    if isinstance(value, (int,)) or (hasattr(value, "__index__") and not hasattr(value, "__len__")):
        if n is None:
            raise InvalidArgumentError(f"{name} must be a sequence of integers (got={value!r:.60})")
        return (int(value),) * n
    try:
        out = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name} must be integers (got={value!r:.60})") from None
    if any(float(v) != o for v, o in zip(value, out)):
        raise InvalidArgumentError(f"{name} must be integers (got={value!r:.60})")
    if n is not None and len(out) != n:
        raise InvalidArgumentError(f"{name} has {len(out)} entries, the box has {n} axes")
    return out


class Mag:
    """A magnification: the downsampling factor of each axis relative to level 0.

    ``Mag(2)`` (every axis), ``Mag([1, 2, 2])`` or ``Mag("1-2-2")`` (webknossos' layer name).
    ``View.mag`` is the view's level's Mag, one factor per array axis.
    """

    __slots__ = ("_factors",)

    def __init__(self, factors: Any):
        if isinstance(factors, Mag):
            factors = factors.factors
        if isinstance(factors, str):
            try:
                factors = [int(p) for p in factors.split("-")]
            except ValueError:
                raise InvalidArgumentError(f"a Mag name is integers joined by '-' (got={factors!r:.40})") from None
        vals = _vec(factors, 1 if not hasattr(factors, "__len__") else None, "mag")
        if not vals or any(v < 1 for v in vals):
            raise InvalidArgumentError(f"mag factors must be positive integers (got={factors!r:.60})")
        self._factors = vals

    @property
    def factors(self) -> tuple[int, ...]:
        return self._factors

    @property
    def max_dim(self) -> int:
        """The largest factor (webknossos' name)."""
        return max(self._factors)

    def to_list(self) -> list[int]:
        return list(self._factors)

    def to_tuple(self) -> tuple[int, ...]:
        return self._factors

    def to_layer_name(self) -> str:
        """"2" when every factor is 2, else the factors joined by "-" (webknossos' naming)."""
        if len(set(self._factors)) == 1:
            return str(self._factors[0])
        return "-".join(str(f) for f in self._factors)

    def __str__(self) -> str:
        return self.to_layer_name()

    def __repr__(self) -> str:
        return f"Mag({self.to_layer_name()})"

    def __eq__(self, other: object) -> bool:
        try:
            other = other if isinstance(other, Mag) else Mag(other)
        except (InvalidArgumentError, TypeError):
            return NotImplemented
        a, b = self._factors, other._factors
        if len(a) == 1 or len(b) == 1:
            return set(a) == set(b)
        return a == b

    def __hash__(self) -> int:
        return hash(self._factors if len(set(self._factors)) > 1 else self._factors[:1])

    def __lt__(self, other: Mag) -> bool:
        return (self.max_dim, self._factors) < (Mag(other).max_dim, Mag(other)._factors)


class BoundingBox:
    """A box: ``topleft`` and ``size`` per axis (level-0 voxels), ``bottomright`` exclusive.

    ``View.bounding_box`` gives one; ``View.get_view``, ``read`` and ``write`` take one as
    ``absolute_bounding_box=`` or ``relative_bounding_box=`` (relative to the view's offset).
    """

    __slots__ = ("_topleft", "_size")

    def __init__(self, topleft: Sequence[int], size: Sequence[int]):
        tl = _vec(topleft, None, "topleft")
        sz = _vec(size, len(tl), "size")
        if any(s < 0 for s in sz):
            raise InvalidArgumentError(f"a bounding box size must not be negative (got={sz})")
        self._topleft, self._size = tl, sz

    @classmethod
    def from_bounds(cls, topleft: Sequence[int], bottomright: Sequence[int]) -> BoundingBox:
        tl = _vec(topleft, None, "topleft")
        br = _vec(bottomright, len(tl), "bottomright")
        return cls(tl, tuple(b - a for a, b in zip(tl, br)))

    # -- description ------------------------------------------------------------------------
    @property
    def topleft(self) -> tuple[int, ...]:
        return self._topleft

    @property
    def size(self) -> tuple[int, ...]:
        return self._size

    @property
    def bottomright(self) -> tuple[int, ...]:
        return tuple(a + s for a, s in zip(self._topleft, self._size))

    @property
    def ndim(self) -> int:
        return len(self._size)

    def __len__(self) -> int:
        return len(self._size)

    def volume(self) -> int:
        return math.prod(self._size)

    def is_empty(self) -> bool:
        return any(s <= 0 for s in self._size)

    def to_slices(self) -> tuple[slice, ...]:
        return tuple(slice(a, a + s) for a, s in zip(self._topleft, self._size))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BoundingBox):
            return NotImplemented
        return self._topleft == other._topleft and self._size == other._size

    def __hash__(self) -> int:
        return hash((self._topleft, self._size))

    def __repr__(self) -> str:
        return f"BoundingBox(topleft={self._topleft}, size={self._size})"

    # -- derived boxes ----------------------------------------------------------------------
    def _n(self, value: Any, name: str) -> tuple[int, ...]:
        return _vec(value, self.ndim, name)

    def _same_rank(self, other: BoundingBox) -> None:
        if not isinstance(other, BoundingBox):
            raise InvalidArgumentError(f"expected a BoundingBox (got={type(other).__name__})")
        if other.ndim != self.ndim:
            raise InvalidArgumentError(f"bounding boxes differ in rank ({self.ndim} and {other.ndim})")

    def with_topleft(self, topleft: Sequence[int]) -> BoundingBox:
        return BoundingBox(self._n(topleft, "topleft"), self._size)

    def with_size(self, size: Sequence[int]) -> BoundingBox:
        return BoundingBox(self._topleft, self._n(size, "size"))

    def with_bottomright(self, bottomright: Sequence[int]) -> BoundingBox:
        return BoundingBox.from_bounds(self._topleft, self._n(bottomright, "bottomright"))

    def offset(self, vector: Sequence[int]) -> BoundingBox:
        """The box moved by vector."""
        return BoundingBox(tuple(a + v for a, v in zip(self._topleft, self._n(vector, "vector"))), self._size)

    def intersected_with(self, other: BoundingBox, dont_assert: bool = False) -> BoundingBox:
        """The common part of both boxes; an empty one is an InvalidArgumentError unless
        dont_assert (then an empty box is returned)."""
        self._same_rank(other)
        tl = tuple(max(a, b) for a, b in zip(self._topleft, other._topleft))
        br = tuple(min(a, b) for a, b in zip(self.bottomright, other.bottomright))
        out = BoundingBox(tl, tuple(max(0, b - a) for a, b in zip(tl, br)))
        if out.is_empty() and not dont_assert:
            raise InvalidArgumentError(f"no intersection between {self} and {other}")
        return out

    def extended_by(self, other: BoundingBox) -> BoundingBox:
        """The smallest box holding both (an empty box adds nothing)."""
        self._same_rank(other)
        if self.is_empty():
            return other
        if other.is_empty():
            return self
        return BoundingBox.from_bounds(tuple(min(a, b) for a, b in zip(self._topleft, other._topleft)),
                                       tuple(max(a, b) for a, b in zip(self.bottomright, other.bottomright)))

    def contains(self, coord: Sequence[int]) -> bool:
        """Whether a point lies inside (topleft inclusive, bottomright exclusive)."""
        c = tuple(coord)
        if len(c) != self.ndim:
            raise InvalidArgumentError(f"coord has {len(c)} entries, the box has {self.ndim} axes")
        return all(a <= v < b for a, v, b in zip(self._topleft, c, self.bottomright))

    def contains_bbox(self, inner: BoundingBox) -> bool:
        """Whether inner lies wholly inside this box."""
        return inner.intersected_with(self, dont_assert=True) == inner

    def padded_with_margins(self, margins_left: Any, margins_right: Any = None) -> BoundingBox:
        """The box grown by margins_left before and margins_right (default: the same) after."""
        left = self._n(margins_left, "margins_left")
        right = left if margins_right is None else self._n(margins_right, "margins_right")
        return BoundingBox(tuple(a - m for a, m in zip(self._topleft, left)),
                           tuple(s + m + r for s, m, r in zip(self._size, left, right)))

    def align_with_mag(self, mag: Any, ceil: bool = False) -> BoundingBox:
        """The box with both corners on multiples of mag: shrunk to them, or grown when ceil."""
        m = self._n(mag, "mag")
        if any(f < 1 for f in m):
            raise InvalidArgumentError(f"mag factors must be positive (got={m})")
        lo = tuple((a // f if ceil else -(-a // f)) * f for a, f in zip(self._topleft, m))
        hi = tuple((-(-b // f) if ceil else b // f) * f for b, f in zip(self.bottomright, m))
        return BoundingBox(lo, tuple(max(0, b - a) for a, b in zip(lo, hi)))

    def in_mag(self, mag: Any) -> BoundingBox:
        """The box in the voxels of mag (its corners must be multiples of it)."""
        m = self._n(mag, "mag")
        if any(a % f or b % f for a, b, f in zip(self._topleft, self.bottomright, m)):
            raise InvalidArgumentError(f"{self} is not aligned with mag {m}: use align_with_mag()")
        return BoundingBox(tuple(a // f for a, f in zip(self._topleft, m)),
                           tuple(s // f for s, f in zip(self._size, m)))

    def from_mag_to_mag1(self, from_mag: Any) -> BoundingBox:
        """A box given in the voxels of from_mag, in level-0 voxels."""
        m = self._n(from_mag, "mag")
        return BoundingBox(tuple(a * f for a, f in zip(self._topleft, m)),
                           tuple(s * f for s, f in zip(self._size, m)))

    def chunk(self, chunk_shape: Any, chunk_border_alignments: Any = None) -> Iterator[BoundingBox]:
        """The box cut into chunk_shape pieces, in C order (edge pieces may be smaller). With
        chunk_border_alignments, every cut between two pieces lies on a multiple of it."""
        cs = self._n(chunk_shape, "chunk_shape")
        if any(c <= 0 for c in cs):
            raise InvalidArgumentError(f"chunk_shape must be positive (got={cs})")
        start = list(self._topleft)
        if chunk_border_alignments is not None:
            al = self._n(chunk_border_alignments, "chunk_border_alignments")
            if any(a <= 0 or c % a for a, c in zip(al, cs)):
                raise InvalidArgumentError(
                    f"chunk_shape {cs} is not a multiple of chunk_border_alignments {al}")
            start = [s - s % a for s, a in zip(start, al)]
        ranges = [range(s, b, c) for s, b, c in zip(start, self.bottomright, cs)]
        for corner in itertools.product(*ranges):
            yield self.intersected_with(BoundingBox(corner, cs), dont_assert=True)
