"""URLs as sources: ``https://``, ``s3://``, ``gs://``, ``az://``, ``memory://`` and any other
fsspec protocol become a zarr-python FsspecStore (fsspec does the transport; its protocol
packages, e.g. aiohttp for HTTP and s3fs for S3, are optional extras), or for a NIfTI file's or
a TIFF slide's URL a RemoteFile read by range through the store of its directory; ``file://`` is
a local path.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
from typing import Any
from urllib.parse import unquote, urlparse

from ._files import RemoteFile
from ._stores import DEFAULT_POLICY
from .errors import InvalidArgumentError, UnsupportedError
from .formats import nifti as nifti_meta
from .formats import tiff as tiff_meta


# A URL whose name ends so names one file (NIfTI, a TIFF slide), read by range
# (voxcore._files.RemoteFile); any other URL is a Zarr store's root.
FILE_SUFFIXES = nifti_meta.SUFFIXES
SLIDE_SUFFIXES = tiff_meta.SUFFIXES


def is_url(source: Any) -> bool:
    """Whether source is a URL string (scheme://...), not a local path."""
    return isinstance(source, str) and "://" in source and source.split("://", 1)[0].replace("+", "").isalnum()


def resolve(source: Any, storage_options: dict | None = None, read_only: bool = True,
            retries: int | None = None, timeout: float | None = None) -> Any:
    """source as what the openers take: a local path for file:// (and non-URLs, unchanged),
    else a zarr-python store over fsspec whose requests follow a RequestPolicy (retries and
    timeout given override its defaults)."""
    remote_only = {k: v for k, v in (("storage_options", storage_options), ("retries", retries),
                                     ("timeout", timeout)) if v}
    if not is_url(source):
        if remote_only:
            raise InvalidArgumentError(f"{', '.join(f'{k}=' for k in remote_only)} is for URLs (got a local path)")
        return source
    scheme = source.split("://", 1)[0].lower()
    if scheme == "file":
        if remote_only:
            raise InvalidArgumentError(f"{', '.join(f'{k}=' for k in remote_only)} is for remote URLs "
                                       "(got a file:// URL)")
        return unquote(urlparse(source).path) or os.sep
    try:
        import fsspec  # noqa: F401
        from zarr.storage import FsspecStore
    except ImportError as e:  # pragma: no cover - fsspec comes with zarr's remote extras
        raise UnsupportedError(f"reading {scheme}:// needs fsspec (pip install fsspec): {e}") from None
    given = {k: v for k, v in (("retries", retries), ("timeout", timeout)) if v is not None}
    policy = dataclasses.replace(DEFAULT_POLICY, **given)  # (checked by RequestPolicy)
    url = source.rstrip("/")
    name = posixpath.basename(urlparse(url).path).lower()
    if name.endswith(SLIDE_SUFFIXES) and not read_only:
        raise UnsupportedError(f"TIFF slides are read by URL, not written (got={url})")
    single = name.endswith(FILE_SUFFIXES + SLIDE_SUFFIXES)
    try:
        store = FsspecStore.from_url(posixpath.dirname(url) if single else url,
                                     storage_options=storage_options or {}, read_only=read_only)
        store._voxcore_policy = policy  # read by ZarrStoreAdapter
        return RemoteFile(url, store) if single else store
    except (ImportError, ValueError) as e:  # a protocol whose package is missing, a bad option
        raise UnsupportedError(f"{scheme}:// cannot be opened here ({type(e).__name__}: {e}); install the fsspec "
                               f"package for it (http/https: aiohttp; s3: s3fs; gs: gcsfs; az: adlfs)") from None


def resolve_target(path: Any, storage_options: dict | None = None, *, zarr_only: str = "") -> Any:
    """Where a writer writes: a local path unchanged (file:// made one), a NIfTI file's URL as
    a writable RemoteFile, any other URL as a writable zarr-python store over fsspec. zarr_only:
    what a writer of Zarr nodes writes ("create_array writes a Zarr array"), for the error a
    single file's URL then is."""
    target = resolve(path, storage_options, read_only=False)
    if zarr_only and isinstance(target, RemoteFile):
        raise InvalidArgumentError(f"{zarr_only}, not a single file (got={path!r:.80})")
    return target

