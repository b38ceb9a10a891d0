"""The `voxcore` command line: demo, info, convert, view, check, validate."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

from ._sample import synthetic_volume
from ._threads import get_num_threads
from ._urls import is_url
from .check import check as check_tree
from .check import has_errors
from .validate import validate as validate_tree
from .errors import VoxcoreError
from .images.memory import from_array
from .images.registry import open as open_image
from .operations.pyramid import build_pyramid, own_levels
from .ortho import ortho
from .thumbnail import thumbnail
from .writers.arrays import create_array
from .writers.save import save


def _dir_bytes(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def _compare(peer: float, ours: float) -> str:
    """How much faster voxcore was than a peer, from the two times ("x2.0 faster", "x1.25 slower")."""
    ratio = peer / ours if ours > 0 else float("inf")
    return f"x{ratio:.1f} faster" if ratio >= 1 else f"x{1 / ratio:.2f} slower"


def _best(fn, reps: int = 3) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def demo(args: argparse.Namespace) -> int:

    n = args.size
    mib = n ** 3 * 2 / 2 ** 20
    print(f"voxcore demo: {n}^3 uint16 volume ({mib:.0f} MiB), {get_num_threads()} threads")
    t0 = time.perf_counter()
    vol = synthetic_volume(n, seed=1)
    print(f"  made synthetic volume                 {time.perf_counter() - t0:7.3f} s")
    if args.dir:
        os.makedirs(args.dir, exist_ok=True)
        return _demo_in(vol, args.dir)
    work = tempfile.mkdtemp(prefix="voxcore-demo-")
    print(f"  files go to {work}, removed on exit (keep them with --dir DIR)")
    try:
        return _demo_in(vol, work)
    finally:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


def _demo_in(vol: np.ndarray, work: str) -> int:
    n = vol.shape[0]
    mib = vol.nbytes / 2 ** 20
    ok_nifti = _demo_nifti(vol, work)
    path = os.path.join(work, "demo.zarr")
    shard = min(128, n)

    def write():
        img = create_array(path, vol.shape, vol.dtype, chunks=64, shards=shard, codec="zstd",
                              dims=("z", "y", "x"), overwrite=True)
        img.write(vol)

    t_write = _best(write)
    img = open_image(path)
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

    ok_pyr = _demo_pyramid(vol, work)

    try:
        import zarr
    except ImportError:
        print("  (zarr-python not installed: no comparison)")
        return 0 if ok and ok_rand and ok_pyr and ok_nifti else 1
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
    print(f"    write  {t_zwrite:7.3f} s   voxcore is {_compare(t_zwrite, t_write)}")
    print(f"    read   {t_zread:7.3f} s   voxcore is {_compare(t_zread, t_read)}")
    print(f"    boxes  {t_zrand * 10:6.2f} ms/box voxcore is {_compare(t_zrand, t_rand)}")
    return 0 if ok and ok_rand and ok_pyr and ok_nifti and same else 1


def _demo_nifti(vol: np.ndarray, work: str) -> bool:
    """The phantom as an oblique-free LAS .nii.gz (as scanners write), loaded, reoriented to RAS,
    converted to an OME-Zarr pyramid and drawn as three orthogonal slices."""
    import nibabel as nib

    src = os.path.join(work, "phantom.nii.gz")
    affine = np.diag([-0.8, 0.8, 1.2, 1.0])  # x points left: LAS
    img = nib.Nifti1Image(np.asfortranarray(vol.T), affine)
    img.header.set_data_dtype(np.uint16)
    img.header.set_xyzt_units("mm")
    t_nsave = _best(lambda: nib.save(img, src), reps=1)
    t_save = _best(lambda: save(open_image(src), os.path.join(work, "phantom-vc.nii.gz"), overwrite=True,
                                   durable=False))
    t_nload = _best(lambda: np.asanyarray(nib.load(src).dataobj), reps=1)
    t_load = _best(lambda: open_image(src).read())
    nii = open_image(src)
    ok = np.array_equal(nii.read(), np.asanyarray(nib.load(src).dataobj))
    print(f"  NIfTI phantom ({''.join(nii.orientation)}, {' x '.join(f'{v:g}' for v in np.float32(nii.scale))} mm):")
    print(f"    .nii.gz write {t_save:7.3f} s  (nibabel {t_nsave:6.2f} s, {_compare(t_nsave, t_save)})")
    print(f"    .nii.gz load  {t_load:7.3f} s  (nibabel {t_nload:6.2f} s, {_compare(t_nload, t_load)})"
          f"   values {'OK' if ok else 'WRONG'}")
    t0 = time.perf_counter()
    ras = nii.as_closest_canonical()
    t_ras = time.perf_counter() - t0
    canon = nib.as_closest_canonical(nib.load(src))
    same = np.array_equal(ras.read(), np.asanyarray(canon.dataobj)) and np.allclose(ras.affine, canon.affine)
    print(f"    as_closest_canonical {t_ras:7.3f} s -> {''.join(ras.orientation)}   "
          f"same as nibabel: {'yes' if same else 'NO'}")
    ome = os.path.join(work, "phantom.ome.zarr")
    t0 = time.perf_counter()
    save(build_pyramid(ras, [2, 4], "mean"), ome, overwrite=True)
    print(f"    to OME-Zarr 0.5, 3 mean levels {time.perf_counter() - t0:7.3f} s: {ome}")
    try:

        print(f"    orthogonal slices: {ortho(src, os.path.join(work, 'phantom.png'))}")
    except ImportError:
        print("    (matplotlib not installed: no PNG; pip install 'voxcore[view]')")
    return ok and same


def _demo_pyramid(vol: np.ndarray, work: str) -> bool:
    """Build a 4-level mean pyramid, save it as OME-Zarr 0.5, convert it back streamed."""
    img = from_array(vol, dims=("z", "y", "x"), scale=(1.0, 0.5, 0.5), units=("micrometer",) * 3)
    path = os.path.join(work, "demo.ome.zarr")
    t0 = time.perf_counter()
    pyr = build_pyramid(img, [2, 4, 8], "mean")
    t_build = time.perf_counter() - t0
    t_save = _best(lambda: save(pyr, path, chunks=64, overwrite=True))
    print(f"  pyramid: 4 mean levels in memory      {t_build:7.3f} s; saved as OME-Zarr 0.5 {t_save:7.3f} s")
    src = open_image(path)
    conv = os.path.join(work, "demo-streamed.ome.zarr")
    t_conv = _best(lambda: save(build_pyramid(src, [2, 4, 8], "mean"), conv, chunks=64, overwrite=True),
                   reps=1)
    back = open_image(conv)
    ok = all(np.array_equal(back.read(level=k), lv.data) for k, lv in enumerate(pyr.levels))
    print(f"  streamed convert of level 0 (slab by slab) {t_conv:7.3f} s   levels "
          f"{[lv.shape[0] for lv in back.levels]} values {'OK' if ok else 'WRONG'}")
    return ok


def _codecs(img) -> str:
    meta = img.metadata
    codecs = meta.get("codecs") or [meta.get("compressor")]
    return json.dumps(codecs)


def _sizes(nbytes: int, path: str) -> str:
    """The decoded size, and the stored one where the path is local."""
    stored = _stored_bytes(path)
    return f"{nbytes / 2**20:.1f} MiB, {stored}" if stored else f"{nbytes / 2**20:.1f} MiB"


def _stored_bytes(path: str) -> str:
    if os.path.isdir(path):
        return f"{_dir_bytes(path) / 2**20:.1f} MiB stored"
    return f"{os.path.getsize(path) / 2**20:.1f} MiB stored" if os.path.isfile(path) else ""


def _or_error(fn) -> str:
    """fn() as text, or why it cannot be had (a header field voxcore refuses)."""

    try:
        return str(fn())
    except VoxcoreError as e:
        return f"unusable ({e})"


def _nifti_kind(header, path: str) -> str:
    if "magic" not in header:  # a pair without the NIfTI magic
        return f"Analyze 7.5 / SPM (header/image pair{', gzip' if path.lower().endswith('.gz') else ''})"
    magic = bytes(header["magic"]).rstrip(b"\0").decode("ascii", "replace")  # n+1, ni1, n+2, ni2
    layout = "single file" if magic[1:2] == "+" else "header/image pair"
    return f"NIfTI-{magic[2:3]} ({layout}{', gzip' if path.lower().endswith('.gz') else ''})"


def _nifti_lines(img, header) -> list[str]:
    """The NIfTI header fields a user checks: datatype, scaling, voxel sizes, units, codes, affine."""
    import nibabel as nib

    codes = nib.nifti1.xform_codes.label
    code = int(header["datatype"])
    slope, inter = getattr(img, "slope_inter", (None, None))
    scaled = slope is not None and (slope, inter) != (1.0, 0.0)
    lines = [f"datatype: {code} ({nib.nifti1.data_type_codes.label.get(code, 'unknown')}), "
             f"bitpix {int(header['bitpix'])}" + (f"  scaling: value * {slope:g} + {inter:g}" if scaled else "")]
    sizes = _or_error(lambda: "(" + ", ".join(f"{v:g}" for v in img.scale) + ")")
    orientation = f"orientation: {_or_error(lambda: ''.join(img.orientation))}"
    if not hasattr(header, "get_xyzt_units"):  # Analyze 7.5: no units, no forms
        lines.append(f"voxel sizes: {sizes}  (Analyze: millimetres)")
        lines.append(f"no sform/qform (Analyze: the origin field, or SPM's .mat)  {orientation}")
    else:
        space, time_unit = header.get_xyzt_units()
        lines.append(f"voxel sizes: {sizes}  xyzt_units: {space}, {time_unit}")
        sform, qform = int(header["sform_code"]), int(header["qform_code"])
        lines.append(f"sform_code: {sform} ({codes.get(sform, 'invalid')})  "
                     f"qform_code: {qform} ({codes.get(qform, 'invalid')})  {orientation}")
    source = getattr(img, "affine_source", "best")
    try:
        rows = [" ".join(f"{v:10.4g}" for v in row) for row in np.asarray(img.affine)]
        lines.append(f"affine ({source}):")
        lines += [f"    {r}" for r in rows]
    except ValueError as e:  # voxcore's metadata errors are ValueErrors
        lines.append(f"affine ({source}): unusable ({e})")
    return lines


def info(args: argparse.Namespace) -> int:
    img = open_image(args.path, **_remote(args, args.path))
    path = os.fspath(args.path)
    summary = img.summary()
    if summary is not None:  # a kind that describes itself (a slide)
        for line in summary:
            print(line)
        return 0
    print(f"path:   {path}")
    ome = getattr(img, "ome", None)
    header = getattr(img, "header", None)  # a NIfTI image's (nibabel) header
    zarr_format = getattr(img, "zarr_format", None)
    if ome is not None:
        print(f"format: OME-Zarr {ome['version']} (Zarr v{zarr_format})"
              + (f"  name: {ome['name']}" if ome.get("name") else "")
              + (f"  method: {ome['type']}" if ome.get("type") else ""))
        axes = ", ".join(f"{a['name']} ({a['type']}{', ' + a['unit'] if a['unit'] else ''})" for a in img.axes)
        print(f"axes:   {axes}")
    else:
        print(f"format: {f'Zarr v{zarr_format}' if zarr_format is not None else _nifti_kind(header, path)}")
        print(f"dims:   {img.dims}")
    stored = zarr_format is not None  # chunked storage: a fill value, levels with chunks and codecs
    fill = img.fill_value if stored else None
    print(f"dtype:  {img.dtype}" + (f"  fill: {fill}" if fill is not None else ""))
    levels = img.levels if stored else None
    if levels is None:
        print(f"shape: {img.shape}  ({_sizes(img.nbytes, path)})")
    for k, lv in enumerate(levels or ()):
        nbytes = int(np.prod(lv.shape, dtype=np.int64)) * img.dtype.itemsize
        where = os.path.join(path, lv.path) if lv.path else path
        head = f"level {k} ({lv.path}): " if ome is not None else ""
        print(f"{head}shape: {lv.shape}  ({_sizes(nbytes, where)})")
        if ome is not None:
            print(f"    scale: {lv.scale}  translation: {lv.translation}")
        print(f"    chunks: {lv.chunks}  shards: {lv.shards}")
        print(f"    codecs: {_codecs(lv.image)}")
    if header is not None:
        for line in _nifti_lines(img, header):
            print(line)
    labels = getattr(img, "labels", None)
    if labels:
        print(f"labels: {', '.join(labels)}")
    return 0


def validate(args: argparse.Namespace) -> int:
    """voxcore validate: check's findings, the OME-NGFF schemas and the consistency checks."""
    return _report(args, validate_tree)


def check(args: argparse.Namespace) -> int:
    """voxcore check: the read-only health report of a tree."""
    return _report(args, check_tree)


def _report(args: argparse.Namespace, fn) -> int:
    """Prints fn's problems of args.path and a count: exit 1 when one is an error, 2 when the
    tree cannot be checked at all (a URL without listings, a store that refuses or fails)."""
    path = args.path
    try:
        problems = fn(path, **_remote(args, path))
    except (VoxcoreError, OSError) as e:
        print(f"voxcore {args.command}: cannot check {os.fspath(path)}: {e}", file=sys.stderr)
        return 2
    for p in problems:
        print(p)
    counts = {sev: sum(p.severity == sev for p in problems) for sev in ("error", "warning", "info")}
    print(f"{os.fspath(path)}: {counts['error']} errors, {counts['warning']} warnings, "
          f"{counts['info']} notes")
    return 1 if has_errors(problems) else 0


def _ints(text: str | None) -> int | tuple[int, ...] | None:
    if text is None:
        return None
    parts = [int(p) for p in text.split(",")]
    return parts[0] if len(parts) == 1 else tuple(parts)


def _levels(text: str):
    """--levels: "auto", N (N levels, each halving the space axes), or cumulative factors "2,4,8"."""
    if text == "auto":
        return "auto"
    parts = [int(p) for p in text.split(",")]
    if len(parts) == 1:
        return [2 ** k for k in range(1, parts[0])]
    return parts


STORAGE_HELP = ("fsspec options for URL arguments, as JSON (e.g. '{\"anon\": true}' or "
                "'{\"endpoint_url\": \"http://...\"}')")


def _remote(args: argparse.Namespace, where: str) -> dict:
    """storage_options= for a URL argument from --storage-options (JSON), else nothing."""
    text = getattr(args, "storage_options", None)
    if not text or not is_url(where):
        return {}
    try:
        opts = json.loads(text)
    except ValueError as e:
        raise SystemExit(f"--storage-options must be a JSON object ({e})") from None
    if not isinstance(opts, dict):
        raise SystemExit("--storage-options must be a JSON object, e.g. '{\"anon\": true}'")
    return {"storage_options": opts}


def convert(args: argparse.Namespace) -> int:

    src = open_image(args.src, **_remote(args, args.src))
    kw = {}
    if args.dims:
        kw["dims"] = tuple(args.dims.split(","))
    if args.scale:
        kw["scale"] = tuple(float(v) for v in args.scale.split(","))
    img = from_array(src, **kw)
    t0 = time.perf_counter()
    own = own_levels(src) if args.levels == "auto" and not kw else None
    factors = None if own is not None else _levels(args.levels)
    pyr = own if own is not None else build_pyramid(img, factors, args.method) if factors else img
    chunks = _ints(args.chunks)
    if chunks is None:  # 64^3 for volumes; 512^2 tiles for 2-D images (slides)
        space = sum(1 for d in img.dims if d in ("x", "y", "z"))
        chunks = 64 if space > 2 else 512
    out = save(pyr, args.dst, version=args.version, chunks=chunks, shards=_ints(args.shards),
                  codec=None if args.codec == "none" else args.codec, level=args.level, overwrite=args.overwrite,
                  progress=not args.quiet, **_remote(args, args.dst))
    dt = time.perf_counter() - t0
    res = open_image(out, **_remote(args, out))
    how = "the source's own levels copied" if own is not None else args.method
    print(f"wrote {out}: OME-Zarr {args.version}, {len(res.levels)} levels "
          f"{[lv.shape for lv in res.levels]}, {how}, {dt:.2f} s "
          f"({src.nbytes / 2**20 / max(dt, 1e-9):.0f} MiB/s of level 0)")
    return 0


def view(args: argparse.Namespace) -> int:

    img = open_image(args.path, **_remote(args, args.path))
    if sum(1 for d in img.dims if d in ("x", "y", "z")) == 2:  # a 2-D image (a slide): one picture
        out = thumbnail(img, args.output, size=args.size)
        print(f"wrote {out}")
        return 0
    at = tuple(int(v) for v in args.at.split(",")) if args.at else None
    if at is not None and len(at) != 3:
        raise SystemExit("--at takes x,y,z voxel indices")
    out = ortho(img, args.output, level=args.level, at=at)
    print(f"wrote {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="voxcore", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="write, read back and time a synthetic volume")
    p.add_argument("--size", type=int, default=256, help="edge length of the cube (default 256)")
    p.add_argument("--dir", help="write the files to this directory and keep them "
                   "(default: a temp directory removed on exit)")
    p.set_defaults(func=demo)
    p = sub.add_parser("info", help="describe an array, OME-Zarr image, NIfTI file or TIFF slide (axes, "
                       "levels, chunks or tiles, codecs, sizes; NIfTI: header fields and affine; slides: "
                       "pixel size and associated images)")
    p.add_argument("path")
    p.add_argument("--storage-options", help=STORAGE_HELP)
    p.set_defaults(func=info)
    tree = "a directory or a URL that can be listed: s3://, gs://, az://, memory://, ..."
    p = sub.add_parser("check", help=f"report problems of a Zarr / OME-Zarr tree ({tree}; read-only)")
    p.add_argument("path")
    p.add_argument("--storage-options", help=STORAGE_HELP)
    p.set_defaults(func=check)
    p = sub.add_parser("validate", help=f"every problem of an OME-Zarr tree ({tree}): check's, the OME-NGFF "
                                        "0.4/0.5 schemas (ome-zarr-models) and voxcore's consistency checks")
    p.add_argument("path")
    p.add_argument("--storage-options", help=STORAGE_HELP)
    p.set_defaults(func=validate)
    p = sub.add_parser("convert", help="write an array as an OME-Zarr pyramid, streamed in bounded memory")
    p.add_argument("src", help="a Zarr array, OME-Zarr image, NIfTI file or TIFF slide")
    p.add_argument("dst", help="the OME-Zarr directory to write")
    p.add_argument("--version", choices=["0.4", "0.5"], default="0.5")
    p.add_argument("--chunks", help="chunk edge, or one per axis: 64 or 1,64,64,64 (default: 64 for "
                   "volumes, 512 for 2-D images)")
    p.add_argument("--shards", help="shard edge or one per axis (0.5 only); default: no shards")
    p.add_argument("--codec", default="zstd", choices=["zstd", "blosc-lz4", "gzip", "lz4", "zlib", "none"])
    p.add_argument("--level", type=int, help="compression level (zstd default 1)")
    p.add_argument("--levels", default="auto",
                   help='"auto" (the source\'s own levels when they step by integer factors, as a '
                   'slide\'s; else halve until one chunk), N levels, or cumulative factors like 2,4,8')
    p.add_argument("--method", default="mean", choices=["mean", "gaussian", "mode", "nearest", "min", "max"])
    p.add_argument("--dims", help="axis names when the source has none, e.g. z,y,x")
    p.add_argument("--scale", help="voxel size per axis, e.g. 2,0.5,0.5")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--storage-options", help=STORAGE_HELP)
    p.set_defaults(func=convert)
    p = sub.add_parser("view", help="write three orthogonal slices of a volume, or a 2-D image (a slide) "
                       "at the level that fits --size, to a PNG (needs matplotlib)")
    p.add_argument("path")
    p.add_argument("-o", "--output", default="ortho.png")
    p.add_argument("--storage-options", help=STORAGE_HELP)
    p.add_argument("--level", type=int, default=0, help="pyramid level (OME-Zarr)")
    p.add_argument("--at", help="x,y,z voxel the planes cross (default: the centre)")
    p.add_argument("--size", type=int, default=1024, help="2-D images: the PNG's largest side (default 1024)")
    p.set_defaults(func=view)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
