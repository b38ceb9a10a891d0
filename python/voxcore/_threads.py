"""The core's thread count."""

from __future__ import annotations

import operator

from . import _core
from .errors import LimitExceededError


def set_num_threads(n: int) -> None:
    """Set the number of threads the core uses (default: VOXCORE_NUM_THREADS or all cores).

    1 <= n <= max(256, 2 x cores) (``_core.max_threads()``): a larger count raises
    LimitExceededError. Threads start when work first needs them. Safe at any moment: open
    handles keep working and use the new count from their next call.
    """
    n = operator.index(n)
    if n > _core.max_threads():
        raise LimitExceededError(
            f"set_num_threads: at most {_core.max_threads()} threads (max(256, 2 x cores)), got {n}")
    _core.set_num_threads(n)


def get_num_threads() -> int:
    """The number of threads the core uses."""
    return _core.get_num_threads()
