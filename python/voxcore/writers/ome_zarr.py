"""OME-Zarr 0.4 / 0.5 saves: every level's arrays, labels, then the group metadata last.

A pyramid in memory is written level by level; one built from an on-disk or lazy source is
streamed (level 0 read slab by slab, the coarser levels computed as it goes); with an executor
the block tasks of :mod:`voxcore.writers.blocks` write the levels.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .._progress import Progress
from .._resources import SLAB_BUDGET_BYTES
from .._version import __version__
from ..errors import InvalidArgumentError
from ..formats import ngff, omero
from ..images.model import ImageModel
from ..images.zarr import write_whole
from ..operations.pyramid import WINDOW_METHODS, Pyramid, as_pyramid, build_pyramid, plan_levels
from .blocks import write_pyramid
from .channels import channels_with_windows
from .labels import image_label, label_images
from .stream import PyramidWriter
from .target import Target, storage


def save_ome(obj: Any, path: Any, version: str, chunks: Any, shards: Any, codec: str | None,
             overwrite: bool, level: int | None, labels: dict | None, label_method: str,
             progress: bool, durable: bool, executor: Any, channels: Any = None,
             attributes: dict | None = None) -> str:
    """Write obj (a pyramid, an image or an array) as an OME-Zarr group at path; see
    :func:`voxcore.save`."""
    if version not in ngff.VERSIONS:
        raise InvalidArgumentError(f"version must be one of {ngff.VERSIONS} (got={version!r:.20})")
    obj = as_pyramid(obj)
    img = obj.image
    if executor is not None and hasattr(img.data, "__cuda_array_interface__"):
        raise InvalidArgumentError("executor= needs a host (numpy), on-disk or dask source, not a device array")
    chunk_t, shard_t = storage(chunks, shards, version, img.dims)
    if label_method not in ("mode", "nearest"):
        raise InvalidArgumentError(f"label_method must be mode or nearest (got={label_method!r:.20})")
    label_imgs = label_images(labels, obj)
    ngff.with_user_attributes({}, attributes)  # refused before anything is written
    v3 = version == "0.5"
    target = Target(path, overwrite, durable)
    try:
        entry = _write_levels(target, "", obj, chunk_t, shard_t, codec, level, v3, progress, executor)
        if label_imgs:
            factors = [lv.factors for lv in obj.levels[1:]]
            for name, lab, extra in label_imgs:
                lp = build_pyramid(lab, factors, label_method, executor=executor) if factors else as_pyramid(lab)
                lentry = _write_levels(target, f"labels/{name}", lp, chunk_t, shard_t, codec, level, v3, progress,
                                       executor)
                attrs = ngff.group_attributes(lentry, version)
                extra_attrs = image_label(extra, version)
                (attrs["ome"] if v3 else attrs)["image-label"] = extra_attrs
                target.group(f"labels/{name}", attrs, v3)
            names = [n for n, _, _ in label_imgs]
            target.group("labels", {"ome": {"version": "0.5", "labels": names}} if v3 else {"labels": names}, v3)
        attrs = ngff.group_attributes(entry, version)
        chans = _channels(img, channels, target, str(len(obj.levels) - 1))
        if chans is not None:
            (attrs["ome"] if v3 else attrs)["omero"] = omero.omero_attributes(chans, version)
        affine = getattr(img, "nifti_affine", None)
        if affine is not None:
            attrs["voxcore"] = {"nifti_affine": [[float(v) for v in row] for row in affine]}
        target.group("", ngff.with_user_attributes(attrs, attributes), v3)
        target.commit()
    finally:
        target.abort()  # a failed save leaves the old tree as it was
    return target.label


def _read_slab(source: Any, prefix: tuple[int, ...], z0: int, z1: int) -> np.ndarray:
    index = prefix + (slice(z0, z1),)
    if isinstance(source, ImageModel):
        return source.read(index)
    return np.asarray(source[index])


def _write_levels(target: Target, sub: str, pyr: Pyramid, chunk_t, shard_t, codec, level, v3: bool,
                  progress: bool, executor: Any = None) -> dict:
    """Write a pyramid's level arrays under `sub`; returns its multiscales entry."""
    img = pyr.image
    specs = plan_levels(img.shape, img.scale, img.translation, [lv.factors for lv in pyr.levels[1:]],
                                pyr.method in WINDOW_METHODS, chunk_t, shard_t)
    copied = not pyr.streamed and all(_is_lazy(lv.data) for lv in pyr.levels)  # a source's own levels
    if copied:  # they keep their shapes (a scanner rounds a level's size down; plan_levels up)
        specs = [dataclasses.replace(sp, shape=lv.shape, chunks=tuple(max(1, min(c, s)) for c, s in
                                                                     zip(sp.chunks, lv.shape)))
                 for sp, lv in zip(specs, pyr.levels)]
    for sp, lv in zip(specs, pyr.levels):
        if sp.shape != lv.shape:
            raise InvalidArgumentError(f"level shapes do not follow from their factors (got={lv.shape})")
    axes = ngff.check_axes(img.dims, img.units)
    entry = ngff.multiscale(axes, [(lv.scale, lv.translation) for lv in pyr.levels], "0.5" if v3 else "0.4",
                            name=img.name, method=pyr.method,
                            method_version=__version__ if pyr.method else None)
    arrays = [target.array("/".join(p for p in (sub, str(i)) if p), sp.shape, img.dtype, sp.chunks, sp.shards,
                           codec, level, v3, img.dims) for i, sp in enumerate(specs)]
    label = f"{target.label}/{sub}" if sub else target.label
    if executor is not None:
        bar = Progress(1, f"{label}: blocks", progress)
        write_pyramid(executor, arrays, specs, img.data, img.dims, img.dtype, pyr.method, bar)
        bar.close()
        return entry
    if copied:
        return _copy_levels(arrays, pyr, label, progress, entry)
    if not pyr.streamed:
        bar = Progress(len(arrays), f"{label}: levels", progress)
        datas = [np.asarray(lv.data.get() if hasattr(lv.data, "__cuda_array_interface__") else lv.data)
                 for lv in pyr.levels]
        write_whole(arrays, datas)  # every level's chunks in one parallel loop
        bar.advance(len(arrays))
        bar.close()
        return entry
    source = img.data
    axis = next(i for i, d in enumerate(img.dims) if ngff.AXIS_TYPES[d] == "space")
    prefixes = list(np.ndindex(*img.shape[:axis]))
    extent = img.shape[axis]
    bar = Progress(len(prefixes) * extent, f"{label}: planes", progress)
    writer = PyramidWriter(arrays, specs, img.dims, img.dtype, pyr.method or "nearest", progress=bar)
    # Read whole source chunks along the stream axis when a slab of them fits the budget.
    depth = writer.slab_depth
    src_chunks = getattr(source, "chunks", None)
    try:
        cz = int(src_chunks[axis]) if src_chunks is not None and not isinstance(src_chunks[axis], tuple) else 0
    except (TypeError, ValueError, IndexError):
        cz = 0
    plane_bytes = int(np.prod(img.shape[axis + 1:], dtype=np.int64)) * img.dtype.itemsize
    if cz > 0:
        both = depth * cz // np.gcd(depth, cz)
        if both * plane_bytes <= SLAB_BUDGET_BYTES:
            depth = both
    # Volumes side by side (a slide's channels) go slab by slab across all of them when their
    # slabs fit the budget together: a source that reads all channels' rows at once (a slide's
    # tiles) then decodes each row of tiles once, not once per channel.
    across = len(prefixes) > 1 and len(prefixes) * depth * plane_bytes <= SLAB_BUDGET_BYTES
    order = ([(p, z0) for z0 in range(0, extent, depth) for p in prefixes] if across
             else [(p, z0) for p in prefixes for z0 in range(0, extent, depth)])
    with writer:
        for prefix, z0 in order:
            writer.push(_read_slab(source, prefix, z0, min(extent, z0 + depth)), prefix, z0)
    return entry


def _is_lazy(data: Any) -> bool:
    return not isinstance(data, np.ndarray) and not hasattr(data, "__cuda_array_interface__")


def _copy_levels(arrays: list, pyr: Pyramid, label: str, progress: bool, entry: dict) -> dict:
    """Levels read from a source's own pyramid (see own_levels), each copied in slabs of whole
    target chunks along its first space axis, all non-space axes at once: bounded memory."""
    img = pyr.image
    axis = next(i for i, d in enumerate(img.dims) if ngff.AXIS_TYPES[d] == "space")
    total = sum(lv.shape[axis] for lv in pyr.levels)
    bar = Progress(total, f"{label}: rows", progress)
    for arr, lv in zip(arrays, pyr.levels):
        plane = int(np.prod(lv.shape, dtype=np.int64)) // lv.shape[axis] * img.dtype.itemsize
        unit = arr.chunks[axis] if arr.shards is None else arr.shards[axis]
        depth = max(unit, SLAB_BUDGET_BYTES // max(plane, 1) // unit * unit)
        # A source that reads into given memory (a slide level) reuses one slab buffer: no
        # fresh pages to fault in for every slab.
        into = getattr(lv.data, "read_into", None)
        buf = None
        for y0 in range(0, lv.shape[axis], depth):
            y1 = min(lv.shape[axis], y0 + depth)
            index = (slice(None),) * axis + (slice(y0, y1),)
            if into is None:
                slab = np.asarray(lv.data[index])
            else:
                shape = lv.shape[:axis] + (y1 - y0,) + lv.shape[axis + 1:]
                if buf is None:
                    buf = np.empty(lv.shape[:axis] + (min(depth, lv.shape[axis]),) + lv.shape[axis + 1:], img.dtype)
                slab = into(index, buf.reshape(-1)[:int(np.prod(shape))].reshape(shape))
            arr.write(slab, (0,) * axis + (y0,) + (0,) * (len(lv.shape) - axis - 1))
            bar.advance(y1 - y0)
    bar.close()
    return entry


def _channels(img: Any, given: Any, target: Target, coarsest: str) -> list[dict] | None:
    """The omero channels to write: given, else the source's (carried through convert and
    pyramids), else none; windows not given from the coarsest level written."""
    source = given if given is not None else img.channels
    if source is None:
        return None
    return channels_with_windows(source, img.dims, img.shape, img.dtype, lambda: target.written(coarsest).read())
