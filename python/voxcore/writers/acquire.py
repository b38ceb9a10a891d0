"""voxcore.create: an acquisition written plane by plane: one OME-Zarr image
(:mod:`voxcore.writers.create`) or, with positions=, a multi-position one
(:mod:`voxcore.writers.positions`). It sits above both, so that neither imports the other."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._urls import resolve_target
from .create import create_image
from .positions import create_positions


def create(path: Any, shape: Sequence[Any], dtype: Any, *, positions: Any = None,
           storage_options: dict | None = None, **options: Any) -> Any:
    """Start an OME-Zarr image written plane by plane, as an acquisition produces it.

    shape may start with None: an acquisition whose number of time points is not known up front
    (dims then start with "t"). The arrays start with one time point and grow as planes of later
    ones arrive, each level's metadata replaced atomically before the first plane of a new time
    point is written: the image on disk is valid at every moment, its last time point possibly
    incomplete (unwritten planes read as the fill value).

    Options (keywords): dims, scale, translation, units, name, chunks (64), shards, codec
    ("zstd"), level, pyramid (()), method ("mean"), version ("0.5"), overwrite (False), durable
    (True), attributes, channels, as below.

    Returns a writer: ``w.write_plane(plane, t=, c=, z=)`` takes planes in acquisition order
    (increasing z within each (t, c) volume; volumes may interleave) and keeps only one slab per
    level per volume in flight; ``w.get_data(t=, c=, z=, level=)`` reads back; ``w.close()``
    (or leaving a ``with`` block) finishes every level. pyramid: the levels' factors as for
    :func:`build_pyramid` (ints, dicts or "auto"; () for level 0 only).

    All metadata is written now: if the process dies mid-acquisition, every written chunk is
    readable and the group is a valid OME-Zarr whose unwritten parts are the fill value (0).
    durable=False skips the fsyncs (each file is still replaced atomically). overwrite=True
    replaces a Zarr / OME-Zarr hierarchy at path (anything else is refused, as for :func:`save`):
    the new metadata-only tree is built beside it and swapped in before this returns, so a crash
    leaves the old image or the new one. attributes: custom group attributes beside the OME
    keys, as for :func:`save`. channels: omero channel metadata as for :func:`save`, written
    now; windows not given are the dtype's range until close(), which computes them from the
    coarsest level.

    path: a local directory, a zarr-python store, or a URL (``s3://``, ``memory://``, any
    writable fsspec protocol, with storage_options=: planes are PUT chunk by chunk as slabs
    fill, and each metadata document replaced whole).

    positions: a multi-position acquisition, a count or a list of names or of {"name", "x",
    "y", "z"} stage coordinates (added to each position's translation), at any path above
    (URLs too). The result is then a one-well HCS plate (well A/1, one field per position, as
    navigate writes it) and the writer a :class:`voxcore.writers.positions.PositionsWriter`:
    ``write_plane(plane, t=, c=, z=, position=)`` and navigate's ``get_data(timepoint=,
    position=, channel=, z=-1, resolution=1)``; ``vc.open(path)`` reads it back as a
    :class:`voxcore.Plate` with the same names.
    """
    what = "create writes an OME-Zarr image" if positions is None else "create(positions=) writes an OME-Zarr plate"
    target = resolve_target(path, storage_options, zarr_only=what)
    if positions is None:
        return create_image(target, shape, dtype, **options)
    return create_positions(target, shape, dtype, positions, **options)
