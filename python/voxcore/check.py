"""``voxcore check``: a read-only health report of a Zarr / OME-Zarr tree, a local directory or
a URL whose directories can be listed (s3://, gs://, az://, memory://, file://, ...).

It reads directory listings and metadata documents, never chunk contents, and never writes,
renames or removes anything. A tree reports the same problems, with the same paths, wherever it
lies. What it reports (``Problem.kind``):

- ``stale-temp-file`` (error): a temp file of a writer whose process is gone (its write did
  not finish); ``write-in-progress`` (info): one whose writer still runs.
- ``missing-chunks`` (info): chunk (shard) keys of the grid with no file. Legal in Zarr: they
  read as the fill value.
- ``chunk-out-of-range`` / ``bad-chunk-key`` (error): chunk-like files outside the grid or
  with the wrong number of indices or prefix (no reader sees them); ``stray-file`` (warning):
  any other file inside an array.
- ``bad-json``, ``bad-metadata`` (error): a metadata document that does not parse, or that
  voxcore refuses (the message says why); ``no-zarr-node`` (error): the root holds none.
- ``ome-version``, ``ome-path``, ``ome-metadata`` (error): OME multiscales with an unknown
  version, escaping or malformed dataset paths, other invalid fields (duplicate paths ...);
  ``missing-level``, ``ome-level-rank``, ``ome-level-shape`` (error): a dataset path without
  an array, of the wrong rank, or larger than the level before it.
- ``labels-metadata``, ``missing-label`` (error): a bad labels listing, or a listed label
  image that is not there.
- ``unreadable`` (error): a directory or document that cannot be listed or read (refused);
  ``unsafe-key`` (error): a remote key named "." or "..", which no reader resolves inside the
  tree (not followed).

A store that fails to answer (a timeout, a dropped connection, a 5xx, after the retries of its
RequestPolicy) is no property of the tree: it raises StoreError.
"""

from __future__ import annotations

import itertools
import math
import os
import re
from dataclasses import dataclass

from ._resources import LOCK_FILE, pid_alive, temp_owner
from ._tree import Entry, FsspecTree, LocalTree, open_tree
from .errors import (
    LimitExceededError,
    StoreError,
    UnsafeMetadataPathError,
    UnsupportedError,
    VoxcoreError,
)
from .formats import ngff
from .formats import zarr as zmeta

SEVERITIES = ("error", "warning", "info")
MAX_LISTED = 5
MAX_DEPTH = 64
_METADATA = zmeta.METADATA_FILES | {LOCK_FILE}
_INDEX = re.compile(r"(?:0|[1-9][0-9]*)\Z")
_CHUNK_LIKE = re.compile(r"(?:c(?:[./]|\Z))?[0-9./]*\Z")


@dataclass(frozen=True)
class Problem:
    """One finding: severity ("error", "warning" or "info"), kind (see the module docstring),
    path relative to the checked root ("." for the root) and a message."""

    severity: str
    kind: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.path}: {self.kind}: {self.message}"


@dataclass
class _Node:
    kind: str  # "array" | "group"
    meta: zmeta.ZarrArrayMeta | None = None
    attrs: dict | None = None
    zarr_format: int = 0


Tree = LocalTree | FsspecTree


def check(path: str | os.PathLike, storage_options: dict | None = None) -> list[Problem]:
    """Problems of the Zarr / OME-Zarr tree at path, errors first (see the module).

    path: a local directory, or a URL fsspec can list (s3://, gs://, az://, memory://, file://)
    opened with storage_options. Raises UnsupportedError for a URL without listings (http://,
    https://), InvalidArgumentError for storage_options with a local path, PermissionError or
    StoreError when a remote store refuses or fails to answer."""
    return ordered(check_nodes(open_tree(path, storage_options))[0])


def check_nodes(tree: Tree) -> tuple[list[Problem], dict[str, _Node]]:
    """check()'s problems (unordered) and the Zarr nodes it found, by path relative to root."""
    out: list[Problem] = []
    if not tree.is_dir(""):
        return [Problem("error", "no-zarr-node", ".", f"not a directory: {tree.label()}")], {}
    nodes: dict[str, _Node] = {}
    _walk(tree, "", 0, nodes, out)
    if "" not in nodes and not any(p.path in _METADATA for p in out):
        out.append(Problem("error", "no-zarr-node", ".", "no zarr.json, .zarray or .zgroup at the root"))
    for rel, node in nodes.items():
        if node.kind == "group":
            _check_group(rel, node, nodes, out)
    return out, nodes


def ordered(problems: list[Problem]) -> list[Problem]:
    """Errors first, then warnings, then notes; by path and kind within each."""
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(problems, key=lambda p: (rank[p.severity], p.path, p.kind))


def has_errors(problems: list[Problem]) -> bool:
    """Whether any problem is an error (``voxcore check`` then exits with 1)."""
    return any(p.severity == "error" for p in problems)


def _show(rel: str) -> str:
    return rel or "."


def _join(rel: str, name: str) -> str:
    return f"{rel}/{name}" if rel else name


def _reason(e: OSError) -> str:
    return e.strerror or str(e)


def _scan(tree: Tree, rel: str, out: list[Problem]) -> list[Entry]:
    """The directory's entries without voxcore temp files and unsafe names (which are reported)."""
    try:
        entries = tree.list(rel)
    except StoreError:
        raise
    except OSError as e:
        out.append(Problem("error", "unreadable", _show(rel), f"cannot list the directory ({_reason(e)})"))
        return []
    kept = []
    for e in entries:
        pid = temp_owner(e.name)
        if e.name in ("", ".", ".."):
            out.append(Problem("error", "unsafe-key", _join(rel, e.name),
                               "a key segment no reader resolves inside the tree (not followed)"))
        elif pid is None:
            kept.append(e)
        elif pid == os.getpid() or pid_alive(pid):
            out.append(Problem("info", "write-in-progress", _join(rel, e.name),
                               f"temp file of a running writer (pid {pid})"))
        else:
            out.append(Problem("error", "stale-temp-file", _join(rel, e.name),
                               f"temp file of writer pid {pid}, which is gone: its write did not finish "
                               "(the file is never read; the next voxcore writer there removes it)"))
    return kept


def _read_doc(tree: Tree, rel: str, entry: Entry, out: list[Problem]) -> dict | None:
    """A metadata document as a dict, or None (reported) when it cannot be read or parsed."""
    key = _join(rel, entry.name)
    try:
        raw = tree.read(key, entry.size)
    except LimitExceededError as e:
        out.append(Problem("error", "bad-metadata", key, str(e)))
        return None
    except StoreError:
        raise
    except OSError as e:
        out.append(Problem("error", "unreadable", key, f"cannot read it ({_reason(e)})"))
        return None
    try:
        return zmeta.load_json(raw, key)
    except VoxcoreError as e:
        out.append(Problem("error", "bad-json", key, str(e)))
        return None


def _node_of(tree: Tree, rel: str, names: dict[str, Entry], out: list[Problem]) -> _Node | None:
    if "zarr.json" in names:
        doc = _read_doc(tree, rel, names["zarr.json"], out)
        if doc is None:
            return None
        if doc.get("node_type") == "group" and doc.get("zarr_format") == 3:
            attrs = doc.get("attributes", {})
            if not isinstance(attrs, dict):
                out.append(Problem("error", "bad-metadata", _join(rel, "zarr.json"), "attributes must be an object"))
                attrs = {}
            return _Node("group", attrs=attrs, zarr_format=3)
        try:
            return _Node("array", meta=zmeta.parse_v3(doc, _join(rel, "zarr.json")), zarr_format=3)
        except (VoxcoreError, ValueError, TypeError) as e:
            out.append(Problem("error", "bad-metadata", _join(rel, "zarr.json"), f"voxcore refuses it: {e}"))
            return None
    if ".zarray" not in names and ".zgroup" not in names:
        return None
    attrs: dict | None = {}
    if ".zattrs" in names:
        attrs = _read_doc(tree, rel, names[".zattrs"], out)
    if ".zarray" in names:
        doc = _read_doc(tree, rel, names[".zarray"], out)
        if doc is None or attrs is None:
            return None
        try:
            return _Node("array", meta=zmeta.parse_v2(doc, attrs, _join(rel, ".zarray")), zarr_format=2)
        except (VoxcoreError, ValueError, TypeError) as e:
            out.append(Problem("error", "bad-metadata", _join(rel, ".zarray"), f"voxcore refuses it: {e}"))
            return None
    _read_doc(tree, rel, names[".zgroup"], out)
    return _Node("group", attrs=attrs or {}, zarr_format=2)


def _walk(tree: Tree, rel: str, depth: int, nodes: dict, out: list[Problem]) -> None:
    entries = _scan(tree, rel, out)
    node = _node_of(tree, rel, {e.name: e for e in entries}, out)
    if node is not None:
        nodes[rel] = node
    if node is not None and node.kind == "array":
        _check_chunks(tree, rel, node.meta, entries, out)
        return
    if depth >= MAX_DEPTH:
        out.append(Problem("warning", "too-deep", _show(rel), f"not checked below {MAX_DEPTH} levels"))
        return
    for e in entries:
        if e.is_dir:
            _walk(tree, _join(rel, e.name), depth + 1, nodes, out)


# ---- chunks ----------------------------------------------------------------------------------

def _files_below(tree: Tree, entries: list[Entry], rel: str, depth: int, out: list[Problem]):
    """(key relative to the array, entry) of every file below an array directory."""
    for e in entries:
        if e.is_dir:
            if depth >= MAX_DEPTH:
                continue
            below = _join(rel, e.name)
            for key, sub in _files_below(tree, _scan(tree, below, out), below, depth + 1, out):
                yield f"{e.name}/{key}", sub
        else:
            yield e.name, e


def _chunk_index(key: str, meta: zmeta.ZarrArrayMeta) -> tuple[int, ...] | None:
    """The grid index a chunk key names under the array's key encoding, or None."""
    n, sep = len(meta.shape), meta.separator
    if not meta.key_v2:
        if n == 0:
            return () if key == "c" else None
        if not key.startswith("c" + sep):
            return None
        key = key[2:]
    elif n == 0:
        return () if key == "0" else None
    parts = key.split(sep)
    if len(parts) != n or not all(_INDEX.match(p) for p in parts):
        return None
    return tuple(int(p) for p in parts)


def _chunk_key(index: tuple[int, ...], meta: zmeta.ZarrArrayMeta) -> str:
    if not meta.key_v2:
        return "c" + "".join(meta.separator + str(i) for i in index)
    return meta.separator.join(str(i) for i in index) if index else "0"


def _check_chunks(tree: Tree, rel: str, meta: zmeta.ZarrArrayMeta, entries: list[Entry],
                  out: list[Problem]) -> None:
    unit = meta.shards or meta.chunks
    what = "shard" if meta.shards else "chunk"
    grid = tuple(-(-s // u) for s, u in zip(meta.shape, unit))
    present: set[tuple[int, ...]] = set()
    for key, _entry in _files_below(tree, entries, rel, 0, out):
        if key in _METADATA:
            continue
        index = _chunk_index(key, meta)
        if index is None:
            if _CHUNK_LIKE.match(key):
                out.append(Problem("error", "bad-chunk-key", _join(rel, key),
                                   f"not a {what} key of this array (encoding: e.g. "
                                   f"{_chunk_key((0,) * len(meta.shape), meta)!r}): no reader sees it"))
            else:
                out.append(Problem("warning", "stray-file", _join(rel, key), "not part of the Zarr array"))
        elif any(i >= g for i, g in zip(index, grid)):
            out.append(Problem("error", "chunk-out-of-range", _join(rel, key),
                               f"{what} index {index} outside the grid {grid} (shape {meta.shape}, "
                               f"{what}s {unit}): no reader sees it"))
        else:
            present.add(index)
    total = math.prod(grid)
    missing = total - len(present)
    if missing:
        first = []
        for index in itertools.product(*(range(g) for g in grid)):
            if index not in present:
                first.append(_chunk_key(index, meta))
                if len(first) == MAX_LISTED:
                    break
        more = ", ..." if missing > len(first) else ""
        out.append(Problem("info", "missing-chunks", _show(rel),
                           f"{missing} of {total} {what}s have no file (they read as the fill value "
                           f"{meta.fill_value!r}): {', '.join(first)}{more}"))


# ---- OME-NGFF --------------------------------------------------------------------------------

def _check_group(rel: str, node: _Node, nodes: dict, out: list[Problem]) -> None:
    attrs = node.attrs or {}
    ome = attrs.get("ome") if isinstance(attrs.get("ome"), dict) else attrs
    where = _join(rel, "zarr.json" if node.zarr_format == 3 else ".zattrs")
    if ome.get("multiscales") is not None:
        _check_multiscales(rel, where, node, nodes, out)
    if ome.get("labels") is not None:
        try:
            names = ngff.read_labels(attrs)
        except VoxcoreError as e:
            out.append(Problem("error", "labels-metadata", where, str(e)))
            names = []
        for name in names:
            label = nodes.get(_join(rel, name))
            lattrs = label.attrs if label is not None and label.kind == "group" else None
            lome = (lattrs.get("ome") if isinstance(lattrs.get("ome"), dict) else lattrs) if lattrs else None
            if not lome or not lome.get("multiscales"):
                out.append(Problem("error", "missing-label", _join(rel, name),
                                   f"listed in {where} but no OME-Zarr label image is there"))


def _check_multiscales(rel: str, where: str, node: _Node, nodes: dict, out: list[Problem]) -> None:
    try:
        ms = ngff.parse_multiscale(node.attrs)
    except UnsupportedError as e:
        out.append(Problem("error", "ome-version", where, str(e)))
        return
    except UnsafeMetadataPathError as e:
        out.append(Problem("error", "ome-path", where, str(e)))
        return
    except VoxcoreError as e:
        out.append(Problem("error", "ome-metadata", where, str(e)))
        return
    if (ms["version"] == "0.5") != (node.zarr_format == 3):  # voxcore reads it; others may not
        out.append(Problem("warning", "ome-version", where,
                           f"OME-NGFF {ms['version']} in a Zarr v{node.zarr_format} group "
                           "(0.4 is Zarr v2, 0.5 is Zarr v3)"))
    rank = len(ms["axes"])
    prev = None
    for i, lv in enumerate(ms["levels"]):
        path = _join(rel, lv["path"])
        level = nodes.get(path)
        if level is None or level.kind != "array":
            out.append(Problem("error", "missing-level", path,
                               f"multiscales[0].datasets[{i}].path: no readable Zarr array there"))
            prev = None
            continue
        shape = level.meta.shape
        if len(shape) != rank:
            out.append(Problem("error", "ome-level-rank", path,
                               f"rank {len(shape)} differs from the {rank} axes"))
            prev = None
            continue
        if prev is not None and any(b > a for a, b in zip(prev[1], shape)):
            out.append(Problem("error", "ome-level-shape", path,
                               f"shape {shape} is larger than level {prev[0]}'s {prev[1]} on some axis "
                               "(levels go from highest to lowest resolution)"))
        prev = (i, shape)
