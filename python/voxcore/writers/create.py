"""An OME-Zarr image written plane by plane as an acquisition produces it (voxcore.create's
single-image case; :mod:`voxcore.writers.acquire` is the entry point)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._version import __version__
from ..errors import InvalidArgumentError
from ..formats import ngff, omero
from ..images.memory import from_array
from ..operations.pyramid import METHODS, WINDOW_METHODS, factor_list, plan_levels
from .stream import PyramidWriter
from .channels import channels_with_windows
from .target import Target, storage, write_group


def create_image(path: Any, shape: Sequence[int], dtype: Any, *, dims: Sequence[str] | None = None,
                 scale: Sequence[float] | None = None, translation: Sequence[float] | None = None,
                 units: Sequence[str | None] | None = None, name: str | None = None, chunks: Any = 64,
                 shards: Any = None, codec: str | None = "zstd", level: int | None = None,
                 pyramid: Any = (), method: str = "mean", version: str = "0.5",
                 overwrite: bool = False, durable: bool = True, attributes: dict | None = None,
                 channels: Any = None) -> PyramidWriter:
    """One OME-Zarr image written plane by plane: :func:`voxcore.create` without positions (see
    there for every argument)."""
    if version not in ngff.VERSIONS:
        raise InvalidArgumentError(f"version must be one of {ngff.VERSIONS} (got={version!r:.20})")
    if method not in METHODS:
        raise InvalidArgumentError(f"method must be one of {METHODS} (got={method!r:.30})")
    shape, open_time, dims = open_shape(shape, dims)
    if any(s < 1 for s in shape):
        raise InvalidArgumentError(f"shape must be positive (got={shape})")
    dtype = np.dtype(dtype)
    if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)) or dtype.itemsize < 1 \
            or dtype == np.float16:
        raise InvalidArgumentError(f"dtype must be an integer or float32/float64 type (got={dtype})")
    geometry = np.lib.stride_tricks.as_strided(np.zeros(1, dtype), shape, (0,) * len(shape))
    img = from_array(geometry, dims=dims, scale=scale, translation=translation, units=units, name=name)
    flist = factor_list(img, pyramid) if (isinstance(pyramid, str) or len(pyramid)) else []
    chunk_t, shard_t = storage(chunks, shards, version, img.dims)
    specs = plan_levels(shape, img.scale, img.translation, flist, method in WINDOW_METHODS, chunk_t,
                                shard_t)
    v3 = version == "0.5"
    axes = ngff.check_axes(img.dims, img.units)
    entry = ngff.multiscale(axes, [(sp.scale, sp.translation) for sp in specs], version, name=name,
                            method=method if flist else None, method_version=__version__ if flist else None)
    base_attrs = ngff.group_attributes(entry, version)

    def with_channels(chans: list[dict] | None) -> dict:
        attrs = {**base_attrs, **({"ome": dict(base_attrs["ome"])} if v3 else {})}
        if chans is not None:
            (attrs["ome"] if v3 else attrs)["omero"] = omero.omero_attributes(chans, version)
        return ngff.with_user_attributes(attrs, attributes)

    chans = None if channels is None else channels_with_windows(channels, img.dims, shape, dtype, None)
    group_attrs = with_channels(chans)
    target = Target(path, overwrite, durable)
    try:  # the metadata-only tree is swapped in now; the planes are written in place later
        arrays = [target.array(str(i), sp.shape, dtype, sp.chunks, sp.shards, codec, level, v3, img.dims)
                  for i, sp in enumerate(specs)]
        target.group("", group_attrs, v3)
        target.commit()
    finally:
        target.abort()
    arrays = [target.reopen(str(i), a) for i, a in enumerate(arrays)]
    on_close = None
    if channels is not None and any(not isinstance(ch, dict) or ch.get("window") is None for ch in channels):
        published = target.published()

        def on_close() -> None:  # the windows from the data, now that it is written
            done = channels_with_windows(channels, img.dims, arrays[0].shape, dtype, lambda: arrays[-1].read())
            write_group(published, "", with_channels(done), v3)
    return PyramidWriter(arrays, specs, img.dims, dtype, method, open_time=open_time, on_close=on_close)


def open_shape(shape: Sequence[Any], dims: Sequence[str] | None) -> tuple[tuple[int, ...], bool, Any]:
    """The initial shape, whether its first axis (time) is open-ended (None: it then starts at
    one time point and grows as later ones arrive), and the dims (an open-ended shape's default
    dims start with "t": (t, y, x), (t, z, y, x), (t, c, z, y, x))."""
    shape = tuple(shape)
    if any(s is None for s in shape[1:]):
        raise InvalidArgumentError(f"only the first axis (time) may be None (got={shape})")
    open_time = bool(shape) and shape[0] is None
    if open_time and dims is not None and tuple(dims)[0] != "t":
        raise InvalidArgumentError(f"an open-ended (None) first axis must be t (dims={tuple(dims)})")
    try:
        out = tuple(1 if (i == 0 and open_time) else int(s) for i, s in enumerate(shape))
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"shape must be integers, the first one may be None (got={shape!r:.60})") from None
    if open_time and len(out) < 3:
        raise InvalidArgumentError(f"an open-ended time axis needs at least t and 2 space axes (got={shape})")
    if open_time and dims is None:
        dims = {3: ("t", "y", "x"), 4: ("t", "z", "y", "x"), 5: ("t", "c", "z", "y", "x")}.get(len(out))
    return out, open_time, dims
