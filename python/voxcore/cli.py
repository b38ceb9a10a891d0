"""The `voxcore` command line: demo, info."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np


def _dir_bytes(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def _best(fn, reps: int = 3) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def demo(args: argparse.Namespace) -> int:
    import voxcore as vc
    from voxcore._sample import synthetic_volume

    n = args.size
    mib = n ** 3 * 2 / 2 ** 20
    print(f"voxcore demo: {n}^3 uint16 volume ({mib:.0f} MiB), {vc.get_num_threads()} threads")
    t0 = time.perf_counter()
    vol = synthetic_volume(n, seed=1)
    print(f"  made synthetic volume                 {time.perf_counter() - t0:7.3f} s")
    work = args.dir or tempfile.mkdtemp(prefix="voxcore-demo-")
    path = os.path.join(work, "demo.zarr")
    shard = min(128, n)

    def write():
        img = vc.create_array(path, vol.shape, vol.dtype, chunks=64, shards=shard, codec="zstd",
                              dims=("z", "y", "x"), overwrite=True)
        img.write(vol)

    t_write = _best(write)
    img = vc.open(path)
    on_disk = _dir_bytes(path)
    print(f"  wrote sharded Zarr v3 (64^3 chunks in {shard}^3 shards, zstd-1): {on_disk / 2**20:.1f} MiB "
          f"on disk (x{n**3 * 2 / on_disk:.2f})")
    print(f"  write  {t_write:7.3f} s  {mib / t_write:8.0f} MiB/s")
    out = np.empty_like(vol)
    t_read = _best(lambda: img.read(out=out))
    ok = np.array_equal(out, vol)
    print(f"  read   {t_read:7.3f} s  {mib / t_read:8.0f} MiB/s   values {'OK' if ok else 'WRONG'}")

    rng = np.random.default_rng(7)
    b = min(64, n)
    starts = rng.integers(0, n - b + 1, size=(100, 3))

    def boxes(reader):
        for z, y, x in starts:
            reader(z, y, x)

    t_rand = _best(lambda: boxes(lambda z, y, x: img[z:z + b, y:y + b, x:x + b]))
    ok_rand = all(np.array_equal(img[z:z + b, y:y + b, x:x + b], vol[z:z + b, y:y + b, x:x + b])
                  for z, y, x in starts[:20])
    print(f"  100 random {b}^3 boxes {t_rand * 10:6.2f} ms/box   values {'OK' if ok_rand else 'WRONG'}")

    try:
        import zarr
    except ImportError:
        print("  (zarr-python not installed: no comparison)")
        return 0 if ok and ok_rand else 1
    za = zarr.open_array(path, mode="r")
    t_zread = _best(lambda: za[...])
    t_zrand = _best(lambda: boxes(lambda z, y, x: za[z:z + b, y:y + b, x:x + b]))
    zpath = os.path.join(work, "demo-zarr-python.zarr")

    def zwrite():
        a = zarr.create_array(zpath, shape=vol.shape, dtype=vol.dtype, chunks=(64,) * 3,
                              shards=(shard,) * 3, compressors=zarr.codecs.ZstdCodec(level=1),
                              overwrite=True)
        a[...] = vol

    t_zwrite = _best(zwrite, reps=2)
    same = np.array_equal(za[...], vol)
    print(f"  zarr-python {zarr.__version__} on the same data (its reads of voxcore's array: "
          f"{'equal' if same else 'DIFFERENT'}):")
    print(f"    write  {t_zwrite:7.3f} s   voxcore is x{t_zwrite / t_write:.1f} faster")
    print(f"    read   {t_zread:7.3f} s   voxcore is x{t_zread / t_read:.1f} faster")
    print(f"    boxes  {t_zrand * 10:6.2f} ms/box voxcore is x{t_zrand / t_rand:.1f} faster")
    if not args.dir:
        import shutil
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok and ok_rand and same else 1


def info(args: argparse.Namespace) -> int:
    import voxcore as vc

    img = vc.open(args.path)
    meta = img.metadata
    print(f"path:   {args.path}")
    print(f"format: Zarr v{img.zarr_format}")
    print(f"dims:   {img.dims}")
    print(f"shape:  {img.shape}  dtype: {img.dtype}  ({img.nbytes / 2**20:.1f} MiB)")
    print(f"chunks: {img.chunks}  shards: {img.shards}")
    print(f"fill:   {img.fill_value}")
    codecs = meta.get("codecs") or [meta.get("compressor")]
    print(f"codecs: {json.dumps(codecs)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="voxcore", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="write, read back and time a synthetic volume")
    p.add_argument("--size", type=int, default=256, help="edge length of the cube (default 256)")
    p.add_argument("--dir", help="keep the arrays in this directory")
    p.set_defaults(func=demo)
    p = sub.add_parser("info", help="describe an array")
    p.add_argument("path")
    p.set_defaults(func=info)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
