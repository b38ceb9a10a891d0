"""A synthetic CT-like volume (numpy only): a smooth random field inside an ellipsoid body plus
Gaussian noise, uint16. Compresses about 1.8x with zstd-1, like real noisy scans."""

from __future__ import annotations

import numpy as np


def _box_blur(a: np.ndarray, width: int, axis: int) -> np.ndarray:
    if width <= 1:
        return a
    c = np.cumsum(a, axis=axis, dtype=np.float32)
    pad_shape = list(a.shape)
    pad_shape[axis] = 1
    c = np.concatenate([np.zeros(pad_shape, np.float32), c], axis=axis)
    n = a.shape[axis]
    lo = np.clip(np.arange(n) - width // 2, 0, n)
    hi = np.clip(np.arange(n) + (width - width // 2), 0, n)
    out = (np.take(c, hi, axis=axis) - np.take(c, lo, axis=axis))
    shape = [1] * a.ndim
    shape[axis] = n
    return out / (hi - lo).reshape(shape).astype(np.float32)


def synthetic_volume(n: int = 256, seed: int = 0) -> np.ndarray:
    """An (n, n, n) uint16 volume, values ~0..2300, background ~20."""
    rng = np.random.default_rng(seed)
    m = max(n // 8, 4)
    low = rng.standard_normal((m, m, m), dtype=np.float32)
    # Smooth at half resolution (8x less work), then repeat to full size: the field varies on a
    # scale of ~16 voxels, so the 2-voxel steps are far below the noise.
    half = n // 2 if n >= 64 and n % 2 == 0 else n
    idx = (np.arange(half) * m) // half
    field = low[idx][:, idx][:, :, idx]
    for axis in range(3):
        field = _box_blur(field, max(half // m, 1) * 2, axis)
    if half != n:
        field = field.repeat(2, 0).repeat(2, 1).repeat(2, 2)
    field /= field.std() + 1e-12
    return body_with_noise(field, rng)


def body_with_noise(field: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Scales a unit-variance float32 field (n, n, n) into an ellipsoid body of ~1000 +- 300 on a
    background of 20, adds Gaussian noise (sigma 15) and returns uint16. Modifies field."""
    n = field.shape[0]
    c = (n - 1) / 2.0
    ax = np.arange(n, dtype=np.float32) - np.float32(c)
    r2 = ((ax / np.float32(0.45 * n)) ** 2)[:, None, None] + \
        ((ax / np.float32(0.40 * n)) ** 2)[None, :, None] + \
        ((ax / np.float32(0.42 * n)) ** 2)[None, None, :]
    field *= np.float32(300.0)
    field += np.float32(1000.0)
    np.putmask(field, r2 > 1.0, np.float32(20.0))
    del r2
    field += rng.standard_normal(field.shape, dtype=np.float32) * np.float32(15.0)
    np.clip(field, 0, 65535, out=field)
    return field.astype(np.uint16)
