"""``vc.validate`` / ``voxcore validate``: every problem of an OME-Zarr tree, read-only: a local
directory or a URL whose directories can be listed (as ``voxcore check`` takes them).

Three sources, one report (:class:`voxcore.check.Problem`, errors first):

- ``voxcore check``'s findings (metadata that does not parse, dataset paths, level ranks and
  sizes, stray and stale files, ...);
- the OME-NGFF 0.4 / 0.5 JSON-schema models of ome-zarr-models for every OME group in the tree
  (images, labels, plates, wells, bioformats2raw roots): kind ``ome-schema``, one problem per
  validation error, with where it is;
- voxcore's consistency checks of each multiscale image: its axes (``ome-axes``: names, the
  order time, channel, space, units), a level's shape against its scale
  (``ome-scale-shape``: the scale ratio to level 0 must be the shape ratio, rounded either
  way), its translation (``ome-translation``, a warning: a level whose origin moved by more
  than one of its voxels from level 0's), and its chunks (``chunk-layout``, a warning: chunks
  or shards larger than the level along an axis), and whatever else keeps voxcore from
  opening it (``ome-metadata``: omero channels that do not fit, ...).
"""

from __future__ import annotations

import math
import os
import warnings
from typing import Any

from ._tree import open_tree
from .check import Problem, Tree, _Node, check_nodes, ordered
from .errors import VoxcoreError
from .formats import ngff


def validate(path: str | os.PathLike, storage_options: dict | None = None) -> list[Problem]:
    """Every problem of the OME-Zarr tree at path, errors first; see the module. path: a local
    directory or a listable URL opened with storage_options, refused as
    :func:`voxcore.check.check` refuses it. ``voxcore validate PATH`` prints them and exits
    with 1 when one is an error."""
    tree = open_tree(path, storage_options)
    problems, nodes = check_nodes(tree)
    for rel, node in nodes.items():
        if node.kind != "group" or not isinstance(node.attrs, dict):
            continue
        kind = _ome_kind(node.attrs)
        if kind is None:
            continue
        problems += _schema(tree, rel, node, kind)
        if kind == "image":
            known = any(p.severity == "error" and p.path == (rel or ".") for p in problems)
            problems += _consistency(tree, rel, known)
    return ordered(problems)


def _ome_kind(attrs: dict) -> str | None:
    ome = attrs.get("ome") if isinstance(attrs.get("ome"), dict) else attrs
    for key, kind in (("plate", "plate"), ("well", "well"), ("multiscales", "image"), ("labels", "labels"),
                      ("bioformats2raw.layout", "bioformats2raw")):
        if key in ome:
            return kind
    return None


def _model(version: str, kind: str) -> Any:
    """The ome-zarr-models class for a kind of OME group at a version (None: none for it)."""
    import importlib

    mod = "v05" if version == "0.5" else "v04"
    where = {"image": ("image", "Image"), "labels": ("labels", "Labels"), "plate": ("hcs", "HCS"),
             "well": ("well", "Well"), "bioformats2raw": ("bioformats2raw", "BioFormats2Raw")}[kind]
    try:
        module = importlib.import_module(f"ome_zarr_models.{mod}.{where[0]}")
    except ImportError:
        return None
    return getattr(module, where[1], None)


def _schema(tree: Tree, rel: str, node: _Node, kind: str) -> list[Problem]:
    show = rel or "."
    version = "0.5" if node.zarr_format == 3 else "0.4"
    cls = _model(version, kind)
    if cls is None:
        return [Problem("warning", "ome-schema", show, f"no OME-NGFF {version} model for a {kind} group")]
    import zarr

    try:
        source, sub = tree.locate(rel)
        group = zarr.open_group(source, path=sub, mode="r")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the models' own repairs are reported as errors below
            cls.from_zarr(group)
    except Exception as e:  # pydantic's ValidationError lists each error; anything else is one
        errors = getattr(e, "errors", None)
        if callable(errors):
            try:
                items = errors()
            except Exception:  # noqa: BLE001 -- not pydantic's after all
                items = None
            if items:
                return [Problem("error", "ome-schema", show,
                                f"{version} {kind}: {'.'.join(str(x) for x in it.get('loc', ()))}: {it.get('msg')}")
                        for it in items]
        return [Problem("error", "ome-schema", show, f"{version} {kind}: {type(e).__name__}: {e}")]
    return []


def _consistency(tree: Tree, rel: str, known: bool) -> list[Problem]:
    from .images.zarr import open_image

    show = rel or "."
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = open_image(*tree.locate(rel))
    except (VoxcoreError, OSError, ValueError) as e:  # what voxcore refuses to read (omero, ...)
        return [] if known else [Problem("error", "ome-metadata", show, f"voxcore cannot open it: {e}")]
    out: list[Problem] = []
    try:  # the rules a writer follows: names, order (time, channel, space), units
        ngff.check_axes(img.dims, img.units)
    except VoxcoreError as e:
        out.append(Problem("error", "ome-axes", show, str(e)))
    base = img.levels[0]
    space = [i for i, d in enumerate(img.dims) if ngff.AXIS_TYPES.get(d) == "space"]
    for k, lv in enumerate(img.levels):
        where = f"{show} level {lv.path or k}"
        for i in space:
            n0, n = base.shape[i], lv.shape[i]
            if k:
                f = lv.scale[i] / base.scale[i]
                rounded = n in (math.floor(n0 / f), math.ceil(n0 / f)) or (f >= 1 and abs(n - n0 / f) <= 1)
                if not rounded:
                    out.append(Problem("error", "ome-scale-shape", where,
                                       f"axis {img.dims[i]}: scale {lv.scale[i]:g} is {f:g}x level 0's but the "
                                       f"shape is {n} of {n0} (expected {n0 / f:.1f}, rounded)"))
                shift = abs(lv.translation[i] - base.translation[i])
                if shift > lv.scale[i] * (1 + 1e-9):
                    out.append(Problem("warning", "ome-translation", where,
                                       f"axis {img.dims[i]}: the origin moved by {shift:g} from level 0's, more "
                                       f"than one voxel of this level ({lv.scale[i]:g})"))
        for what, sizes in (("chunks", lv.chunks), ("shards", lv.shards)):
            if sizes is None:
                continue
            big = [img.dims[i] for i, (c, n) in enumerate(zip(sizes, lv.shape)) if c > n and n > 0]
            if big:
                out.append(Problem("warning", "chunk-layout", where,
                                   f"{what} {tuple(sizes)} exceed the level {tuple(lv.shape)} along {big}"))
    return out
