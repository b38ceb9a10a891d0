"""voxcore.open: the registry of openers, one per kind of image.

Each kind's module has ``opens(source, path) -> bool`` and ``open_image(source, path,
**options)`` (taking the options it knows, ignoring the rest). :func:`open` asks them in order;
adding a kind of image is adding its module to OPENERS.
"""

from __future__ import annotations

import os
from typing import Any

from .._core import check_key
from .._stores import is_zarr_store, read_once
from .._urls import resolve as resolve_url
from . import collection, nifti, plate, slide, zarr
from .model import ImageModel

# Tried in order; the first that claims a source opens it.
OPENERS = (nifti, slide, plate, collection, zarr)


def open(source: Any, *, path: str | None = None, cache_bytes: int | None = None,
         durable: bool = True, caching: str = "fill", affine_source: str = "best",
         allow_external_links: bool = False, storage_options: dict | None = None,
         retries: int | None = None, timeout: float | None = None) -> ImageModel:
    """Open a Zarr v2/v3 array, an OME-Zarr group (its level 0), a NIfTI file or a TIFF slide
    (SVS, OME-TIFF, tiled or stripped TIFF/BigTIFF: a :class:`voxcore.SlideImage`), lazily; an
    HCS plate or well group gives a :class:`voxcore.Plate` / :class:`voxcore.Well` of images; a
    bioformats2raw-layout root a :class:`voxcore.Series` of its images.

    NIfTI (.nii, .nii.gz, .hdr/.img[.gz]) gives a NiftiImage: caching "fill" keeps a .gz
    file's inflated bytes after a whole read (nibabel's default; uncache() drops them) — a
    region read of an image over 256 MiB inflates only up to its slab and keeps nothing —
    "unchanged" never keeps them; affine_source "best" | "sform" | "qform" | "fallback".

    Parameters
    ----------
    source : str, os.PathLike, URL, zarr store, zarr.Array or zarr.Group
        A local directory, a URL (``https://``, ``s3://``, ``gs://``, any fsspec protocol, with
        storage_options=; ``file://`` is local) or any zarr-python store object (chunk bytes
        are fetched through it in batches, all of a read's requests in flight together).
    path : str, optional
        The node inside a store.
    cache_bytes : int, optional
        Size of a decoded-chunk LRU cache in the core (repeated/overlapping reads decode once).
        Writes through this handle keep it current; it assumes no other handle or process
        rewrites the array meanwhile.
    durable : bool
        For local directories: fsync writes (atomic rename either way).
    allow_external_links : bool
        For local directories: follow symbolic links that lead out of the root directory (by
        default a key or level path that resolves outside it raises UnsafePathError; links that
        stay inside are always followed).
    retries, timeout : int, float, optional
        For URLs: further attempts after a transient failure (timeouts, dropped connections,
        HTTP 5xx; never 4xx; default 3, with backoff), and the seconds one request may take, all
        its attempts together (default 60): a read never hangs.
    """
    source = resolve_url(source, storage_options, retries=retries, timeout=timeout)
    store_path = getattr(source, "store_path", None)
    if store_path is not None:  # zarr.Array / zarr.Group
        source, path = store_path.store, "/".join(p for p in (store_path.path, path) if p)
    if path:
        check_key(path.strip("/") if is_zarr_store(source) else path)
    options = {"cache_bytes": cache_bytes, "durable": durable, "caching": caching,
               "affine_source": affine_source, "allow_external_links": allow_external_links}
    with read_once():  # each opener reads the node's metadata: one request for them all
        for kind in OPENERS:
            if kind.opens(source, path):
                return kind.open_image(source, path, **options)
    if not isinstance(source, (str, os.PathLike)):  # a URL's object (voxcore._files.RemoteFile)
        where = getattr(source, "path", type(source).__name__)
        raise FileNotFoundError(2, f"no such object (or not one voxcore reads): {where}", where)
    root = os.fspath(source)
    raise FileNotFoundError(f"no such directory: {os.path.join(root, path) if path else root}")
