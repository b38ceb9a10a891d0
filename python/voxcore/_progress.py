"""A one-line progress bar on stderr."""

from __future__ import annotations

import sys
import time


class Progress:
    """A one-line progress bar on stderr (voxels of level 0 done / total)."""

    def __init__(self, total: int, label: str, enabled: bool):
        self.total, self.label, self.enabled = max(1, total), label, enabled
        self.done = 0
        self.t0 = time.perf_counter()

    def advance(self, n: int) -> None:
        self.done += n
        if self.enabled:
            frac = min(1.0, self.done / self.total)
            bar = "#" * int(frac * 30)
            dt = time.perf_counter() - self.t0
            sys.stderr.write(f"\r{self.label} [{bar:<30}] {frac * 100:5.1f}% {dt:6.1f} s")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()

