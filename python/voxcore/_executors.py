"""Where block work runs: None (here), a concurrent.futures.Executor or a dask.distributed.Client."""

from __future__ import annotations

import concurrent.futures
from typing import Any

from .errors import InvalidArgumentError


def is_client(executor: Any) -> bool:
    """A dask.distributed Client, recognised without importing distributed otherwise."""
    return any(c.__name__ == "Client" and (c.__module__ or "").split(".")[0] == "distributed"
               for c in type(executor).__mro__)


def check_executor(executor: Any) -> None:
    """InvalidArgumentError unless executor is None, a concurrent.futures.Executor or a
    dask.distributed.Client."""
    if executor is None or isinstance(executor, concurrent.futures.Executor) or is_client(executor):
        return
    raise InvalidArgumentError(
        f"executor must be None, a concurrent.futures.Executor or a dask.distributed.Client "
        f"(got={type(executor).__name__})")


def is_dask(x: Any) -> bool:
    """A dask collection (it has a graph and computes)."""
    return hasattr(x, "__dask_graph__") and hasattr(x, "compute")
