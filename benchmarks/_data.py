"""The benchmark data: the peers harness's volume, cases and random boxes, unchanged.

Same algorithm, seeds and case names as the shared peers harness (../shared/peers/peers.py) (``make_volume``,
``zarr_cases``, the 100 boxes of section ``random``), so that numbers here line up with the
peers baseline.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from voxcore._sample import body_with_noise

MiB = 1024 * 1024
CHUNK = (64, 64, 64)
SEED = 0
BOX_SEED = 1234
N_BOXES = 100


def bench_size() -> int:
    """Cube edge from VOXCORE_BENCH_SIZE (default 512); a multiple of 64."""
    n = int(os.environ.get("VOXCORE_BENCH_SIZE", "512"))
    if n < 64 or n % 64:
        raise ValueError(f"VOXCORE_BENCH_SIZE must be a multiple of 64 (got={n})")
    return n


def make_volume(n: int, seed: int = SEED) -> np.ndarray:
    """Seeded smooth random field inside an ellipsoid 'body' + Gaussian noise (uint16).

    Values ~0..2300, background ~20 +- 15; compresses ~1.8x with zstd-1. Identical to
    peers.py ``make_volume`` (same operations in the same order, so the same bytes).
    """
    import scipy.ndimage as ndi

    rng = np.random.default_rng(seed)
    m = max(n // 8, 4)
    low = rng.standard_normal((m, m, m), dtype=np.float32)
    low = ndi.gaussian_filter(low, sigma=1.5)
    low /= low.std() + 1e-12
    field = ndi.zoom(low, n / m, order=1, grid_mode=True, mode="nearest")
    field = np.ascontiguousarray(field[:n, :n, :n], dtype=np.float32)
    return body_with_noise(field, rng)  # voxcore._sample: same operations, same bytes


@dataclass(frozen=True)
class Case:
    """One Zarr layout. ``key`` is the stable test id; ``name`` the peers harness's case name."""

    key: str
    fmt: int
    codec: str  # "zstd" (level 1, no checksum) or "blosc" (lz4, clevel 5, byte shuffle)
    sharded: bool

    def shards(self, n: int) -> tuple[int, int, int] | None:
        return (min(256, n),) * 3 if self.sharded else None

    def name(self, n: int) -> str:
        return f"v3-shard{min(256, n)}-zstd1" if self.sharded else self.key


CASES = (
    Case("v3-zstd1", 3, "zstd", False),
    Case("v2-blosc-lz4-shuf", 2, "blosc", False),
    Case("v3-shard-zstd1", 3, "zstd", True),
)


def random_boxes(n: int) -> list[tuple[slice, slice, slice]]:
    """The peers harness's 100 unaligned boxes of edge min(64, n // 2), seed 1234."""
    edge = min(64, n // 2)
    rng = np.random.default_rng(BOX_SEED)
    starts = rng.integers(0, n - edge + 1, size=(N_BOXES, 3))
    return [tuple(slice(int(s), int(s) + edge) for s in st) for st in starts]


def chunk_coords(n: int) -> list[tuple[int, int, int]]:
    """Chunk grid coordinates of an n^3 volume (edge chunks, if any, are partial)."""
    g = -(-n // CHUNK[0])
    return [(i, j, k) for i in range(g) for j in range(g) for k in range(g)]


def chunk_slices(coord) -> tuple[slice, slice, slice]:
    return tuple(slice(c * CHUNK[d], (c + 1) * CHUNK[d]) for d, c in enumerate(coord))
