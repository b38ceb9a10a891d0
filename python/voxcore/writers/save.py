"""voxcore.save: a pyramid, image or array written as OME-Zarr, or as NIfTI for .nii[.gz] paths."""

from __future__ import annotations

import os
from typing import Any

from .._executors import check_executor
from .._files import RemoteFile
from .._urls import resolve_target
from ..errors import InvalidArgumentError, UnsupportedError
from ..formats.nifti import SUFFIXES as NIFTI_SUFFIXES
from ..operations.pyramid import Pyramid
from .nifti import save_nifti, save_nifti_remote
from .ome_zarr import save_ome


def save(obj: Any, path: Any, version: str = "0.5", chunks: Any = 64, shards: Any = None,
         codec: str | None = "zstd", overwrite: bool = False, *, level: int | None = None,
         labels: dict | None = None, label_method: str = "mode", progress: bool = False,
         durable: bool = True, executor: Any = None, channels: Any = None,
         attributes: dict | None = None, dtype: Any = None, storage_options: dict | None = None) -> str:
    """Write a pyramid (or a single image) as an OME-Zarr group, or as NIfTI when path ends in
    .nii / .nii.gz, or .hdr / .img (/.img.gz: a NIfTI-1 pair, as nibabel's Nifti1Pair) (one
    image; level is the gzip level, default 1); returns where it was written.

    obj : a :func:`build_pyramid` result, or an image / array (written as one level). A pyramid
        built from an on-disk or lazy source is streamed: level 0 is read and written one slab
        at a time, the coarser levels computed as it goes; memory stays near one chunk-deep
        slab per level, however large the source.
    path : a directory, a URL (``s3://``, ``gs://``, ``memory://``, any writable fsspec protocol,
        with storage_options=: written through a zarr-python FsspecStore, each object PUT
        whole; a NIfTI name is written locally, then uploaded), or a zarr-python store /
        zarr.Group (written through the store).
    version : "0.5" (Zarr v3, dimension_names, attributes.ome) or "0.4" (Zarr v2, .zattrs,
        dimension_separator "/").
    chunks / shards : an int (space axes; time/channel axes get 1), one per axis, or a dict by
        axis name ({"z": 16, "y": 128}; axes left out: 64 for space, 1 for time/channel),
        clipped to each level's shape; shards (0.5 only) must be multiples of chunks.
    codec, level : "zstd" (level 1 unless given), "blosc-lz4", "gzip", "lz4", "zlib" or None.
    labels : {name: integer array of level 0's shape} written under labels/ as pyramids with the
        same factors, reduced by label_method ("mode" or "nearest", never a mean).
    overwrite : replace what is at path. Refused (nothing touched) unless it is a Zarr /
        OME-Zarr hierarchy and nothing else: a user's file, a non-Zarr directory, a symbolic
        link, ".", "..", the working directory or an ancestor raise TargetNotReplaceableError or
        UnsafePathError. A local directory is built beside the old one and swapped in by one
        atomic rename, so a failed or killed save leaves the old tree intact.
    progress : show a progress bar on stderr.
    channels : OME omero channel metadata, one dict per index of the c axis (or one for an image
        without one): "label", "color" (6 hex digits), "window" {min, max, start, end}, "active".
        Missing colours and labels get defaults; a missing window is the data's range at the
        coarsest level written. Default: the source's own channels (an OME-Zarr image opened
        with omero metadata keeps them through convert and pyramids), else none written.
    attributes : custom group attributes (JSON values), written beside the OME keys (0.5: beside
        "ome" in zarr.json; 0.4: beside "multiscales" in .zattrs); OME-NGFF's and voxcore's own
        keys are refused. Read back as ``vc.open(path).attrs``. OME-Zarr only.
    dtype : NIfTI only: the on-disk type (e.g. np.int16 for float data), with scl_slope /
        scl_inter chosen as nibabel chooses them.
    durable : local directories: fsync every file written (atomic renames either way).
    executor : None (here; a pyramid built with an executor uses that one), a
        concurrent.futures.Executor, or a dask.distributed.Client. The driver creates the level
        arrays, the executor's workers read level 0 in blocks aligned to every level's chunks
        (shards) times its factor, compute the levels from it and write them, and the driver
        writes the group metadata last. Same files and bytes as a local save. A voxcore Image source is read by
        the workers from its path (which they must see); numpy blocks are sent to them
        (client.scatter), dask blocks computed on the cluster. Local directory targets only:
        executor= with a zarr store or a NIfTI path raises UnsupportedError (a pyramid's own
        executor is then not used: it is written here).

    The level arrays are written first and the group metadata last; a local directory is
    written beside path and renamed into place at the end, so path never holds a half-written
    save.
    """
    check_executor(executor)
    path = resolve_target(path, storage_options)
    remote_nifti = isinstance(path, RemoteFile)  # a NIfTI file behind a URL
    local_dir = isinstance(path, (str, os.PathLike))
    nifti_out = remote_nifti or (local_dir and os.fspath(path).lower().endswith(NIFTI_SUFFIXES))
    if executor is not None and nifti_out:
        raise UnsupportedError("executor= writes OME-Zarr; a NIfTI file is written by one process")
    if executor is not None and not local_dir:
        raise UnsupportedError(f"executor= writes local directories only (got={type(path).__name__})")
    if executor is None and isinstance(obj, Pyramid) and local_dir:
        executor = obj.executor  # a store or NIfTI target: the pyramid is written here instead
    if nifti_out:
        if attributes is not None:
            raise InvalidArgumentError("attributes= is written to OME-Zarr groups, not to NIfTI files")
        gz_level = 1 if level is None else level
        if remote_nifti:
            return save_nifti_remote(obj, path, level=gz_level, overwrite=overwrite, dtype=dtype)
        return save_nifti(obj, os.fspath(path), level=gz_level, durable=durable, overwrite=overwrite, dtype=dtype)
    if dtype is not None:
        raise InvalidArgumentError("dtype= sets a NIfTI file's on-disk type; convert an OME-Zarr's values first")
    return save_ome(obj, path, version, chunks, shards, codec, overwrite, level, labels, label_method, progress,
                    durable, executor, channels, attributes)
