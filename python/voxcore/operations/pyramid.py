"""Multiscale pyramids: the levels' factors, shapes and transforms, computed in the C++ core.

>>> pyr = vc.build_pyramid(img, factors="auto", method="mean")
>>> vc.save(pyr, "out.ome.zarr", version="0.5")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._core import downsample_levels
from .._executors import check_executor
from ..errors import InvalidArgumentError
from ..formats import ngff
from ..images.memory import MemoryImage, from_array
from .downsample import downsample

METHODS = ("mean", "gaussian", "mode", "nearest", "min", "max")
# Methods that reduce a window of f voxels to one value whose centre is the window's centre:
# the level's translation shifts by (f - 1) / 2 voxels of level 0. "nearest" takes array[::f],
# whose first voxel is level 0's first voxel: the translation stays. (FORMATS.md: our rule.)
WINDOW_METHODS = ("mean", "gaussian", "mode", "min", "max")

AUTO_CHUNK = 64


@dataclass
class Level:
    """One resolution level: where its voxels lie, and its data once computed.

    data is None for a level of a streamed pyramid (built from an on-disk or lazy source):
    :func:`save` computes it slab by slab while writing.
    """

    data: Any
    scale: tuple[float, ...]
    translation: tuple[float, ...]
    factors: tuple[int, ...]  # cumulative, relative to level 0, one per axis
    shape: tuple[int, ...] = ()

    def __post_init__(self):
        if not self.shape:
            self.shape = tuple(int(s) for s in self.data.shape)


class Pyramid:
    """Levels of one image, level 0 first. Built by :func:`build_pyramid`.

    executor: where :func:`save` runs the block work when it is not given one (None: here).
    """

    def __init__(self, image: MemoryImage, levels: list[Level], method: str | None, executor: Any = None):
        self.image = image
        self.levels = levels
        self.method = method
        self.executor = executor

    @property
    def dims(self) -> tuple[str, ...]:
        return self.image.dims

    @property
    def streamed(self) -> bool:
        """True when the coarser levels are computed while saving (a lazy or on-disk source)."""
        return any(lv.data is None for lv in self.levels)

    def __len__(self) -> int:
        return len(self.levels)

    def __repr__(self) -> str:
        return f"<voxcore.Pyramid method={self.method} shapes={[lv.shape for lv in self.levels]}>"


@dataclass
class LevelSpec:
    """Where one level's voxels lie and how it is stored."""

    shape: tuple[int, ...]
    scale: tuple[float, ...]
    translation: tuple[float, ...]
    factors: tuple[int, ...]  # cumulative, relative to level 0
    step: tuple[int, ...]  # relative to the previous level (level 0: all 1)
    chunks: tuple[int, ...]
    shards: tuple[int, ...] | None


def plan_levels(shape: Sequence[int], scale: Sequence[float], translation: Sequence[float],
                factor_list: Sequence[Sequence[int]], window: bool, chunks: Sequence[int],
                shards: Sequence[int] | None) -> list[LevelSpec]:
    """Shapes, transforms and storage of level 0 and one level per entry of factor_list.

    Chunks and shards are clipped to each level's shape (shards rounded up to whole chunks).
    window methods shift the translation by (f - 1) / 2 voxels of level 0 (pixel centres); a
    strided level (nearest) keeps level 0's.
    """
    n = len(shape)
    out: list[LevelSpec] = []
    prev_f = (1,) * n
    cur = tuple(int(s) for s in shape)
    for f in [(1,) * n] + [tuple(int(v) for v in f) for f in factor_list]:
        step = tuple(a // b for a, b in zip(f, prev_f))
        cur = tuple(-(-s // k) for s, k in zip(cur, step))
        c = tuple(max(1, min(k, s)) for k, s in zip(chunks, cur))
        sh = None
        if shards is not None:
            sh = tuple(min(k, -(-s // ci) * ci) for k, s, ci in zip(shards, cur, c))
            sh = tuple(max(ci, -(-k // ci) * ci) for k, ci in zip(sh, c))
        sc = tuple(s * k for s, k in zip(scale, f))
        tr = tuple(t + (k - 1) / 2 * s for t, k, s in zip(translation, f, scale)) if window else tuple(translation)
        out.append(LevelSpec(cur, sc, tr, f, step, c, sh))
        prev_f = f
    return out


def _space(dims) -> list[int]:
    return [i for i, d in enumerate(dims) if ngff.AXIS_TYPES[d] == "space"]


def _auto_factors(img: MemoryImage) -> list[tuple[int, ...]]:
    """Halve space axes until every space axis fits in one 64-voxel chunk.

    Anisotropic data first (webknossos style): while the coarsest voxel is at least twice the
    size of another, only the finer axes (voxel size * 2 <= the largest) are halved, until the
    voxels are roughly isotropic. Then all space axes are halved together. An axis already down
    to one voxel is not halved further.
    """
    space = _space(img.dims)
    f = [1] * len(img.dims)
    out: list[tuple[int, ...]] = []
    for _ in range(64):
        cur = {i: -(-img.shape[i] // f[i]) for i in space}
        if all(cur[i] <= AUTO_CHUNK for i in space):
            break
        size = {i: img.scale[i] * f[i] for i in space}
        biggest = max(size.values())
        pick = [i for i in space if size[i] * 2 <= biggest and cur[i] > 1]
        if not pick:
            pick = [i for i in space if cur[i] > 1]
        for i in pick:
            f[i] *= 2
        out.append(tuple(f))
    return out


def factor_list(img: MemoryImage, factors: Any) -> list[tuple[int, ...]]:
    dims = img.dims
    space = set(_space(dims))
    if isinstance(factors, str):
        if factors != "auto":
            raise InvalidArgumentError(f"factors must be 'auto' or a list (got={factors!r:.30})")
        return _auto_factors(img)
    if isinstance(factors, (dict, int, np.integer)):
        factors = [factors]
    out = []
    for item in factors:
        if isinstance(item, dict):
            unknown = [k for k in item if k not in dims]
            if unknown:
                raise InvalidArgumentError(f"factor dict names unknown axes {unknown} (dims={dims})")
            nonspace = [k for k in item if dims.index(k) not in space]
            if nonspace:
                raise InvalidArgumentError(f"time/channel axes are never downsampled (got={nonspace})")
            f = tuple(_pos_int(item.get(d, 1)) for d in dims)
        elif isinstance(item, (tuple, list)):
            f = tuple(_pos_int(v) for v in item)
            if len(f) != len(dims) or any(f[i] != 1 for i in range(len(dims)) if i not in space):
                raise InvalidArgumentError(
                    f"per-axis factors need one per axis and 1 on time/channel axes (dims={dims}, got={f})")
        else:
            k = _pos_int(item)
            f = tuple(k if i in space else 1 for i in range(len(dims)))
        out.append(f)
    prev = (1,) * len(dims)
    for f in out:
        if any(a % b for a, b in zip(f, prev)) or f == prev:
            raise InvalidArgumentError(
                f"each level's factors must be increasing multiples of the previous level's "
                f"(previous={prev}, got={f})")
        prev = f
    return out


def _pos_int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < 1:
        raise InvalidArgumentError(f"factors must be positive integers (got={v!r:.30})")
    return int(v)


def build_pyramid(image: Any, factors: Any = "auto", method: str = "mean", *, executor: Any = None) -> Pyramid:
    """Downsampled levels of an image, computed in the C++ core.

    image : a :func:`from_array` image, or any array :func:`from_array` takes (default dims).
        In memory (numpy): every level is computed now, in one pass over level 0 (cupy: on the
        device). On disk or lazy (voxcore.Image, dask, zarr): only the plan is made; :func:`save`
        streams level 0 and computes the other levels in bounded memory while writing.
    factors : cumulative factors per level relative to level 0 (level 0 itself is implied):
        a list of ints (applied to the space axes only), a list of dicts {axis: factor}
        (missing axes 1; time/channel axes refused), a list of per-axis tuples, or "auto" (halve the space axes until the
        level fits one 64-voxel chunk; anisotropic data first halves only its finer axes), or
        "source": the image's own levels (a slide's, an OME-Zarr image's), copied by save
        rather than recomputed, when they step by integer factors (method is then unused).
        Each level's factors must be multiples of the previous level's.
    method : mean | gaussian | mode | nearest | min | max (labels: mode or nearest).
    executor : None (compute here), a concurrent.futures.Executor or a dask.distributed.Client:
        nothing is computed now (``levels[k].data`` stay None, as for a lazy source); :func:`save`
        computes and writes the levels block by block on that executor. The saved bytes are the
        same as without an executor.
    """
    check_executor(executor)
    if isinstance(factors, str) and factors == "source":
        own = own_levels(image)
        if own is None:
            raise InvalidArgumentError(
                "factors='source' needs an image whose own levels step by integer factors (a slide's, "
                f"an OME-Zarr image's); this one has {len(getattr(image, 'levels', []) or [])} level(s) that do not")
        return own
    image = from_array(image)
    if method not in METHODS:
        raise InvalidArgumentError(f"method must be one of {METHODS} (got={method!r:.30})")
    if executor is not None and hasattr(image.data, "__cuda_array_interface__"):
        raise InvalidArgumentError("executor= needs a host (numpy), on-disk or dask source, not a device array")
    flist = factor_list(image, factors)
    specs = plan_levels(image.shape, image.scale, image.translation, flist,
                                method in WINDOW_METHODS, (1,) * len(image.shape), None)
    levels = [Level(None, sp.scale, sp.translation, sp.factors, sp.shape) for sp in specs]
    levels[0].data = image.data
    if executor is not None:
        return Pyramid(image, levels, method, executor)
    if image.in_memory:
        datas = downsample_levels(image.data, [list(sp.step) for sp in specs[1:]], method)
        for lv, d in zip(levels[1:], datas):
            lv.data = d
    elif hasattr(image.data, "__cuda_array_interface__"):
        for prev, (lv, sp) in zip(levels, zip(levels[1:], specs[1:])):
            lv.data = downsample(prev.data, sp.step, method)
    return Pyramid(image, levels, method)


def as_pyramid(obj: Any) -> Pyramid:
    """obj as a pyramid: a Pyramid as it is, an image or array (see from_array) as one level."""
    if isinstance(obj, Pyramid):
        return obj
    img = from_array(obj)
    return Pyramid(img, [Level(img.data, img.scale, img.translation, (1,) * len(img.shape), img.shape)], None)


def own_levels(image: Any) -> Pyramid | None:
    """A pyramid of an image's own resolution levels (a slide's, an OME-Zarr image's), to be
    copied rather than recomputed, when every level's shape follows from the previous level's
    by an integer factor on the space axes (rounded up, as :func:`build_pyramid` sizes levels, or
    down, as slide scanners do); None when the image has one level or a level does not follow.
    Levels are read lazily and keep their own shapes."""
    levels = getattr(image, "levels", None)
    if not levels or len(levels) < 2:
        return None
    imgs = [from_array(lv.image) for lv in levels]
    base = imgs[0]
    space = set(_space(base.dims))
    flist, prev, cum = [], base, (1,) * len(base.dims)
    for img in imgs[1:]:
        if img.dims != base.dims or img.dtype != base.dtype:
            return None
        step = []
        for i, (a, b) in enumerate(zip(prev.shape, img.shape)):
            f = max(1, round(a / b)) if i in space else 1
            if (i not in space and a != b) or b not in (a // f, -(-a // f)):
                return None
            step.append(f)
        cum = tuple(c * f for c, f in zip(cum, step))
        flist.append(cum)
        prev = img
    try:
        factor_list(base, flist)
    except InvalidArgumentError:
        return None
    return Pyramid(base, [Level(img.data, img.scale, img.translation, f, img.shape)
                          for img, f in zip(imgs, [(1,) * len(base.dims)] + flist)], None)
