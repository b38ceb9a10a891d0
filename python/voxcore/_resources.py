"""Resource checks shared by every reader and writer: memory before a big allocation, and the
temp files that writers leave beside their targets (so a later writer or ``voxcore check`` can
tell a live writer's file from a dead one's).

Temp-file names (one scheme for the whole package; the C++ store writes the first kind):

- ``.NAME.vxtmp-PID-...``: a chunk, shard or metadata file being written (renamed over NAME).
- ``NAME.tmp-PID``: a NIfTI file being written (renamed over NAME).
- ``.NAME.vxnew-PID-...`` / ``.NAME.vxold-PID-...``: a tree being built beside NAME by an
  overwriting save, and the old tree after the swap (removed right after).

Not a temp file: ``.vxlock`` in an array's directory, created by the first partial-chunk write;
read-modify-writes of one chunk from several processes take byte-range locks on it. It is
empty, belongs to the array, and may be deleted whenever no writer is running.
"""

from __future__ import annotations

import os
import re

from .errors import LimitExceededError

LOCK_FILE = ".vxlock"
# A level-0 shard deeper than this is written one chunk-deep slab at a time (the shard is then
# rewritten per slab, which costs I/O but keeps memory bounded); plane writers buffer up to it.
SLAB_BUDGET_BYTES = 256 << 20

_TEMP_PATTERNS = (
    re.compile(r"^\..+\.vxtmp-(\d+)-"),
    re.compile(r"^.+\.tmp-(\d+)$"),
    re.compile(r"^\..+\.vx(?:new|old)-(\d+)-"),
)


def fsync_dir(path: str) -> None:
    """fsync a directory, so that the renames and removals in it are on stable storage."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def available_memory() -> int | None:
    """Bytes this process could still allocate: MemAvailable, capped by a cgroup memory limit.

    None when neither can be read (then no check is made).
    """
    avail = None
    try:
        with open("/proc/meminfo", "rb") as f:
            for line in f:
                if line.startswith(b"MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit_file) as f:
                raw = f.read().strip()
            if raw == "max":
                continue
            with open(usage_file) as f:
                room = int(raw) - int(f.read().strip())
        except (OSError, ValueError):
            continue
        if room > 0 and room < (1 << 62):
            avail = room if avail is None else min(avail, room)
    return avail


def check_allocation(nbytes: int, what: str) -> None:
    """Raise LimitExceededError if allocating ``nbytes`` for ``what`` cannot fit in memory."""
    avail = available_memory()
    if avail is not None and nbytes > avail:
        raise LimitExceededError(
            f"{what}: the result needs {nbytes} bytes but only {avail} are available; "
            "read a smaller region, pass out= (e.g. a memory-mapped array) or use to_dask()")


def temp_owner(name: str) -> int | None:
    """The PID in a voxcore temp-file name, or None if ``name`` is not one."""
    for pattern in _TEMP_PATTERNS:
        m = pattern.match(name)
        if m:
            return int(m.group(1))
    return None


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists (on this machine)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_temp_files(directory: str) -> list[str]:
    """Names in ``directory`` that are voxcore temp files whose writer process is gone."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    out = []
    for name in names:
        pid = temp_owner(name)
        if pid is not None and pid != os.getpid() and not pid_alive(pid):
            out.append(name)
    return sorted(out)
