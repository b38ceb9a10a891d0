"""The core's thread count."""

from __future__ import annotations

import operator

from ._core import get_num_threads as core_get_num_threads
from ._core import max_threads
from ._core import set_num_threads as core_set_num_threads
from .errors import LimitExceededError


def set_num_threads(n: int) -> None:
    """Set the number of threads the core uses (default: VOXCORE_NUM_THREADS or all cores).

    1 <= n <= max(256, 2 x cores) (``voxcore._core.max_threads()``): a larger count raises
    LimitExceededError. Threads start when work first needs them. Safe at any moment: open
    handles keep working and use the new count from their next call.
    """
    n = operator.index(n)
    if n > max_threads():
        raise LimitExceededError(
            f"set_num_threads: at most {max_threads()} threads (max(256, 2 x cores)), got {n}")
    core_set_num_threads(n)


def get_num_threads() -> int:
    """The number of threads the core uses."""
    return core_get_num_threads()
