"""Larger-than-memory conversion: an on-disk Zarr volume to an OME-Zarr 0.5 pyramid, peak RSS measured.

    python3 benchmarks/large_convert.py DIR [--shape 1024,2048,2048] [--chunks 64] [--shards N]

Writes DIR/src.zarr (uint16, zstd-1, 64^3 chunks; kept between runs when its shape matches),
then runs `voxcore convert` on it in a child process and reports wall time, the child's peak
resident memory (VmHWM) and the volume size. The default volume is 8 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

# The converter's own peak: VmHWM belongs to the address space, which exec starts afresh
# (ru_maxrss would also count the parent's pages at fork time).
CHILD = """
import sys
from voxcore import cli
rc = cli.main(sys.argv[1:])
print(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).strip())
sys.exit(rc)
"""


def make_source(path: str, shape: tuple[int, ...]) -> None:
    import voxcore as vc

    try:
        if vc.open(path).shape == shape:
            return
    except (FileNotFoundError, vc.VoxcoreError):
        pass
    img = vc.create_array(path, shape, "uint16", chunks=64, codec="zstd", dims=("z", "y", "x"), overwrite=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:shape[1], 0:shape[2]]
    for z0 in range(0, shape[0], 64):
        z1 = min(shape[0], z0 + 64)
        # a smooth body plus 12-bit noise: compresses like microscopy, not like zeros
        body = ((np.sin(yy / 97.0) + np.cos(xx / 131.0) + 2) * 500).astype(np.uint16)
        slab = body[None] + rng.integers(0, 256, (z1 - z0,) + shape[1:], dtype=np.uint16)
        img.write(slab, (z0, 0, 0))
        print(f"\rsource {z1}/{shape[0]} planes", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--shape", default="1024,2048,2048")
    ap.add_argument("--chunks", default="64")
    ap.add_argument("--shards")
    ap.add_argument("--method", default="mean")
    args = ap.parse_args()
    shape = tuple(int(v) for v in args.shape.split(","))
    os.makedirs(args.dir, exist_ok=True)
    src, dst = os.path.join(args.dir, "src.zarr"), os.path.join(args.dir, "dst.ome.zarr")
    make_source(src, shape)
    cmd = [sys.executable, "-c", CHILD, "convert", src, dst, "--overwrite", "--quiet",
           "--chunks", args.chunks, "--method", args.method]
    if args.shards:
        cmd += ["--shards", args.shards]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if res.returncode:
        print(res.stderr, file=sys.stderr)
        return res.returncode
    out = res.stdout.strip().splitlines()
    peak_mib = int(out[-1].split()[1]) / 1024
    volume_gib = int(np.prod(shape)) * 2 / 2**30
    print("\n".join(out[:-1]))
    print(json.dumps({"shape": shape, "volume_gib": round(volume_gib, 2), "chunks": args.chunks,
                      "shards": args.shards, "method": args.method, "wall_s": round(wall, 1),
                      "peak_rss_mib": round(peak_mib), "gib_per_s": round(volume_gib / wall, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
