"""Physical floors: the codec-plus-copy work of each operation in plain Python threads.

Not peers. The chunk bytes are already in RAM (no file I/O, no metadata, no Zarr logic); the
codecs are numcodecs (python-zstandard when installed), which release the GIL, so N Python
threads decode N chunks at once. A reader close to these numbers has little left to win;
the same recipes as the ``floor:`` rows of the shared peers harness (../shared/peers/peers.py).
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from _data import CHUNK, chunk_coords, chunk_slices

CHUNK_NBYTES = int(np.prod(CHUNK)) * 2


def n_threads() -> int:
    """One Python thread per usable core (2 on the reference machine)."""
    return len(os.sched_getaffinity(0))


def chunk_set(store: Path, fmt: int) -> tuple[list[tuple[int, int, int]], list[bytes]]:
    """(coords, compressed bytes) of every chunk file of an unsharded store, loaded into RAM."""
    coords, data = [], []
    if fmt == 3:
        root = store / "c"
        for f in sorted(p for p in root.rglob("*") if p.is_file()):
            coords.append(tuple(int(x) for x in f.relative_to(root).parts))
            data.append(f.read_bytes())
    else:
        for f in sorted(p for p in store.iterdir() if p.is_file() and not p.name.startswith(".")):
            coords.append(tuple(int(x) for x in f.name.split(".")))
            data.append(f.read_bytes())
    return coords, data


def decoder(codec: str):
    """A new decoder, bytes -> buffer (one per thread: zstd contexts are not shared)."""
    if codec == "blosc":
        import numcodecs.blosc
        return numcodecs.blosc.decompress  # from non-main threads: no blosc-internal threads
    try:
        import zstandard
    except ImportError:
        import numcodecs
        return numcodecs.Zstd().decode
    d = zstandard.ZstdDecompressor()
    return lambda b: d.decompress(b, max_output_size=CHUNK_NBYTES)


def encoder(codec: str):
    import numcodecs
    if codec == "blosc":
        return numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE).encode
    try:
        import zstandard
    except ImportError:
        return numcodecs.Zstd(level=1).encode
    return zstandard.ZstdCompressor(level=1).compress


class Floors:
    """Floor operations sharing one thread pool. Use as a context manager."""

    def __init__(self, nthreads: int | None = None):
        self.nthreads = nthreads or n_threads()
        self._tls = threading.local()
        self._ex = ThreadPoolExecutor(self.nthreads)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._ex.shutdown()

    def _dec(self, codec):
        d = getattr(self._tls, codec, None)
        if d is None:
            d = decoder(codec)
            setattr(self._tls, codec, d)
        return d

    def _enc(self, codec):
        key = "enc_" + codec
        e = getattr(self._tls, key, None)
        if e is None:
            e = encoder(codec)
            setattr(self._tls, key, e)
        return e

    def read_whole(self, coords, data, codec, shape) -> np.ndarray:
        """Decode every chunk and scatter it into a new array (thread t takes every t-th)."""
        out = np.empty(shape, dtype=np.uint16)
        nt = self.nthreads

        def work(t):
            dec = self._dec(codec)
            for i in range(t, len(data), nt):
                out[chunk_slices(coords[i])] = (
                    np.frombuffer(dec(data[i]), np.uint16).reshape(CHUNK))
        list(self._ex.map(work, range(nt)))
        return out

    @staticmethod
    def box_plans(coords, boxes):
        """Per box: (chunk index, slice in chunk, slice in box) of every chunk it touches."""
        index = {c: i for i, c in enumerate(coords)}
        plans = []
        for box in boxes:
            ranges = [range(s.start // CHUNK[d], (s.stop - 1) // CHUNK[d] + 1)
                      for d, s in enumerate(box)]
            parts = []
            for c in ((i, j, k) for i in ranges[0] for j in ranges[1] for k in ranges[2]):
                src, dst = [], []
                for d, cc in enumerate(c):
                    lo = max(box[d].start, cc * CHUNK[d])
                    hi = min(box[d].stop, (cc + 1) * CHUNK[d])
                    src.append(slice(lo - cc * CHUNK[d], hi - cc * CHUNK[d]))
                    dst.append(slice(lo - box[d].start, hi - box[d].start))
                parts.append((index[c], tuple(src), tuple(dst)))
            plans.append(parts)
        return plans

    def read_boxes(self, data, codec, plans, edge) -> list[np.ndarray]:
        """Box after box, the touched chunks of each decoded in parallel and copied out."""
        outs = []
        for parts in plans:
            box = np.empty((edge,) * 3, np.uint16)

            def part(p, box=box):
                i, src, dst = p
                box[dst] = np.frombuffer(self._dec(codec)(data[i]), np.uint16).reshape(CHUNK)[src]
            list(self._ex.map(part, parts))
            outs.append(box)
        return outs

    def encode_whole(self, vol, codec, outdir: Path | None = None) -> int:
        """Gather each chunk, encode it and (with outdir) write it to its own file, no fsync.

        Returns the compressed byte count.
        """
        coords = chunk_coords(vol.shape[0])
        if outdir is not None:
            for i, j in {(i, j) for i, j, _ in coords}:
                (outdir / "c" / str(i) / str(j)).mkdir(parents=True, exist_ok=True)
        nt = self.nthreads

        def work(t):
            enc, total = self._enc(codec), 0
            for i, j, k in coords[t::nt]:
                b = enc(np.ascontiguousarray(vol[chunk_slices((i, j, k))]))
                total += len(b)
                if outdir is not None:
                    with open(outdir / "c" / str(i) / str(j) / str(k), "wb") as f:
                        f.write(b)
            return total
        return sum(self._ex.map(work, range(nt)))
