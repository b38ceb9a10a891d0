"""A one-line progress bar on stderr."""

from __future__ import annotations

import sys
import time


class Progress:
    """A one-line progress bar on stderr (units done / total). live=False (stderr is not a
    terminal: a log) writes one line when it closes instead of redrawing the bar."""

    def __init__(self, total: int, label: str, enabled: bool, live: bool = True):
        self.total, self.label, self.enabled, self.live = max(1, total), label, enabled, live
        self.done = 0
        self.t0 = time.perf_counter()

    def advance(self, n: int) -> None:
        self.done += n
        if self.enabled and self.live:
            frac = min(1.0, self.done / self.total)
            bar = "#" * int(frac * 30)
            dt = time.perf_counter() - self.t0
            sys.stderr.write(f"\r{self.label} [{bar:<30}] {frac * 100:5.1f}% {dt:6.1f} s")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            dt = time.perf_counter() - self.t0
            frac = min(1.0, self.done / self.total)
            sys.stderr.write("\n" if self.live else f"{self.label}: {frac * 100:.1f}% in {dt:.1f} s\n")
            sys.stderr.flush()

