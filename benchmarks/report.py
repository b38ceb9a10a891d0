"""Ratio tables from a pytest-benchmark JSON of benchmarks/bench_zarr.py, bench_pyramid.py,
bench_nifti.py and bench_slide.py.

    python3 -m pytest benchmarks --benchmark-enable --benchmark-json=/tmp/bench.json -q
    python3 benchmarks/report.py /tmp/bench.json

One Markdown table per operation and case: peer, median and min seconds, MiB/s (uncompressed
bytes / median), "x voxcore" (median / voxcore's median: above 1 means slower than voxcore)
and "x best" (median / the fastest peer's median; voxcore rows and floors are not peers);
"load" is the 1-minute load average when the row finished (the reference machine is shared).
Rows named ``floor: ...`` are hand-rolled codec + copy lower bounds, not peers. A closing list
names every case where voxcore is slower than the best peer or more than 1.1x its floor, and
the pyramid targets (TARGETS), the NIfTI targets (ROW_TARGETS) and the slide targets
(SLIDE_TARGETS) are checked when the run has their rows.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

MiB = 1024 * 1024
OPS = {
    "read": "Whole-array read (open + read all into numpy)",
    "boxes": "100 random unaligned boxes (one handle, opened outside the timing)",
    "boxes-cached": "100 random boxes, fresh handle with a 1 GiB decoded-chunk cache each round",
    "write": "Whole-array write (create + write all; no fsync unless durable=True)",
    "memcpy": "Memory bandwidth floor",
    "downsample": "In-memory pyramid: 3 levels of 2x2x2 mean from the volume (no I/O)",
    "pyramid": "OME-Zarr 0.5 pyramid written to disk: levels 1/2/4/8, 64^3 chunks, zstd-1 "
               "(build + write)",
    "nifti-load": ".nii.gz load to numpy (fresh open + read all; file in the page cache)",
    "reorient": "NIfTI reorientation to RAS in memory (axes (2, 1, 0) + one flip; x-fastest "
                "result)",
    "pipeline-read": "zarr-python whole-array read through a codec pipeline (voxcore, zarrs, default)",
    "pipeline-boxes": "zarr-python: 100 random unaligned 64^3 boxes through a codec pipeline",
    "pipeline-write": "zarr-python whole-array write through a codec pipeline (no fsync)",
    "reorient-f32": "NIfTI reorientation to RAS with scl_slope/scl_inter applied into float32",
    "nifti-write": ".nii.gz write of a loaded image (gzip level 1 for voxcore; nibabel's default)",
    "scaleout": "2x mean downsample chunk by chunk into a new array (size x 2size x 2size source, "
                "128^3 -> 64^3 chunks, zstd-1; bytes = source)",
    "durable-scaling": "Durable writes by file count: v3 zstd-1, 64^3 / 32^3 chunks, unsharded or "
                       "256^3 shards, durable=True against durable=False",
    "scaleout-overhead": "Chunk dispatch alone: the same chunk pairs with a no-op function "
                         "(extra_info per_chunk_ms)",
    "slide-regions": "Slide: random unaligned 512^2 regions, cold (a fresh handle each round, no "
                     "tile cache)",
    "slide-regions-warm": "Slide: the same regions, second pass through one handle with a tile "
                          "cache",
    "slide-level": "Slide: whole level 2 (fresh open + read)",
    "plate-write": "HCS plate write: 4x6 wells x 2 fields of (3, 32, 512, 512) uint16, 3-level "
                   "pyramids, OME-Zarr 0.5",
    "plate-read": "HCS plate read: every field's level 0 into numpy (fresh open)",
    "slide-convert": "Slide (SVS) to OME-Zarr 0.5: (c, y, x), (1, 512, 512) chunks, zstd-1 "
                     "(the peers do not fsync)",
    **{f"remote-{what}-{case}": f"Remote {text} over HTTP, 20 ms per request: 512^3 uint16, 64^3 chunks"
       + (" in 256^3 shards" if case == "shards" else "")
       for what, text in (("read", "whole-array read (fresh open)"), ("boxes", "100 random unaligned 64^3 boxes"))
       for case in ("chunks", "shards")},
    **{f"remote-nifti-{case}": f"Remote NIfTI region over HTTP, 20 ms per request: a 40-plane z-slab of a "
       f"256^3 uint16 {'.nii.gz (gzip 1)' if case == 'gz' else '.nii'} (fresh open)" for case in ("nii", "gz")},
}
SLIDE_OPS = ("slide-regions", "slide-regions-warm", "slide-level", "slide-convert")
PEER_ORDER = ["voxcore", "zarr-python", "zarr-python+zarrs", "tensorstore", "zarrista",
              "ngff-zarr", "ome-zarr-py", "nibabel", "numpy", "openslide", "cucim", "tiffslide",
              "tifffile"]
# The floor a voxcore row is held against (None: no floor applies).
FLOOR_FOR = {"read": "decode+scatter", "boxes": "decode+copy", "write": "one file per chunk",
             "boxes-cached": None, "downsample": None, "pyramid": "zstd-1 encode",
             "nifti-load": "into a preallocated buffer", "reorient": "memcpy", "reorient-f32": None,
             "nifti-write": "ISA-L level-1", "slide-regions": "tiles touched",
             "slide-level": "all tiles", "slide-regions-warm": None, "slide-convert": None,
             "plate-write": None, "plate-read": None,
             **{f"remote-{w}-{c}": None for w in ("read", "boxes") for c in ("chunks", "shards")},
             "remote-nifti-nii": None, "remote-nifti-gz": None}
SLACK = 1.1
# The project's pyramid targets: (what, voxcore rows held to it (peer label prefix and kind),
# which peer rows count (family, kind or label prefix; None = any), required speed-up).
TARGETS = [
    ("voxcore mean >= 3.5x faster than ngff-zarr's fastest mean", ("voxcore", "mean"),
     ("ngff-zarr", "mean", None), 3.5),
    ("voxcore mean >= 2x faster than the fastest composite", ("voxcore", "mean"),
     ("composite", None, None), 2.0),
    ("voxcore gaussian >= 10x faster than ngff-zarr's default", ("voxcore", "gaussian"),
     ("ngff-zarr", None, "ngff-zarr default"), 10.0),
]
PLATE_LIKE = "voxcore like ome-zarr-py (chunks (1, 32, 256, 256), nearest, durable=False)"
# Targets between two rows of one operation: (op, what, voxcore row, the other row's label
# prefix, need). need > 0: voxcore at least `need` times faster; need < 0: voxcore's time at
# most -need times the other row's (a floor).
ROW_TARGETS = [
    ("nifti-load", ".nii.gz load >= 1.4x faster than nibabel with indexed_gzip", "voxcore",
     "nibabel (indexed_gzip)", 1.4),
    ("nifti-load", ".nii.gz load within 1.15x of the libdeflate decode floor", "voxcore",
     "floor: libdeflate (deflate package) into a preallocated buffer", -1.15),
    ("reorient", "reorientation >= 25x faster than numpy's ascontiguousarray", "voxcore",
     "numpy ascontiguousarray", 25.0),
    ("nifti-write", ".nii.gz write >= 8x faster than nibabel", "voxcore", "nibabel to_filename", 8.0),
    ("plate-write", "plate write >= 3x faster than ome-zarr-py", "voxcore", "ome-zarr-py", 3.0),
    ("plate-write", "plate write like for like >= 3x faster than ome-zarr-py", PLATE_LIKE, "ome-zarr-py",
     3.0),
    ("plate-write", "plate write like for like within 1.1x of the zstd-1 + file floor",
     PLATE_LIKE, "floor: zstd-1", -1.1),
    ("plate-write", "plate write like for like within 1.1x of the floor that also cuts the chunks and levels "
     "out of the fields", PLATE_LIKE, "floor: chunks gathered", -1.1),
    ("plate-write", "plate write at the defaults (durable) within 1.1x of the durable floor",
     "voxcore", "floor: durable", -1.1),
    ("plate-read", "plate read >= 3x faster than ome-zarr-py", "voxcore", "ome-zarr-py", 3.0),
    *[(f"remote-{w}-{c}", f"remote {w} ({c}) >= 1.5x faster than tensorstore", "voxcore", "tensorstore", 1.5)
      for w in ("read", "boxes") for c in ("chunks", "shards")],
    *[(f"remote-read-{c}", f"remote read ({c}) within 1.1x of the fetch + decode floor", "voxcore",
       "floor: aiohttp GETs of zarr.json, then of each object", -1.1) for c in ("chunks", "shards")],
    ("remote-boxes-chunks", "remote boxes (chunks) within 1.1x of the fetch + decode floor", "voxcore",
     "floor: aiohttp GETs of each box's chunks", -1.1),
]


# Slide targets, judged per operation and case (file and level): (ops, what, the other row:
# the fastest row whose label starts with this prefix (a pair: the prefix and a part the label
# must also hold), or None for the fastest peer, need), need as in ROW_TARGETS. The voxcore row is the group's reference (plain "voxcore"; in the warm
# groups its cache row).
SLIDE_TARGETS = [
    (("slide-regions", "slide-regions-warm"), "regions >= 2x faster than OpenSlide", "openslide",
     2.0),
    (("slide-regions", "slide-regions-warm"), "regions >= 1.3x faster than the fastest peer", None,
     1.3),
    (("slide-regions",), "regions within 1.2x of the decode floor", "floor:", -1.2),
    (("slide-convert",), "conversion >= 3x faster than the fastest peer route", None, 3.0),
    (("slide-convert",), "conversion within 1.1x of the durable floor", ("floor:", "(durable)"),
     -1.1),
]


# Durable writes (per operation and case): (op, durable row, the other row, need), need as in
# ROW_TARGETS.
DURABLE_TARGETS = [
    ("write", "voxcore durable=True", "voxcore", -1.15),
    ("write", "voxcore durable=True", "tensorstore file_io_sync=true", 1.0),
    ("write", "voxcore durable=True", "floor: voxcore durable=False + os.sync", -1.1),
    ("pyramid", "voxcore mean durable=True", "voxcore mean", -1.15),
    ("pyramid", "voxcore mean durable=True", "floor: voxcore mean durable=False + os.sync", -1.1),
    # the floor itself against the 1.15x target: where it misses, the target lies below it
    ("write", "floor: voxcore durable=False + os.sync", "voxcore", -1.15),
    ("pyramid", "floor: voxcore mean durable=False + os.sync", "voxcore mean", -1.15),
    ("nifti-write", "voxcore durable=True", "voxcore", -1.15),
]
# Durable rows against the fastest of a family of peer rows: (op, durable row, label prefix,
# label part, need, floor row). The line also says what the target asks in seconds next to
# the floor's time, so a target below the floor reads as such.
DURABLE_FAMILY_TARGETS = [
    ("pyramid", "voxcore mean durable=True", "ngff-zarr", "bin_shrink", 3.0,
     "floor: voxcore mean durable=False + os.sync"),
]


def judge(v: dict, p: dict, need: float, below: str, strict: bool = False) -> tuple[bool, str]:
    """Whether row v meets need against row p (see ROW_TARGETS), and how it reads: need > 0,
    v at least need times faster (strict: more than); need < 0, v's time at most -need times p's
    (described as "Nx <below>")."""
    if need > 0:
        got = p["median"] / v["median"]
        return (got > need if strict else got >= need), f"{got:.2f}x faster"
    got = v["median"] / p["median"]
    return got <= -need, f"{got:.2f}x {below}"


def durable_targets(groups) -> list[str]:
    out = []
    for (op, case), rows in groups.items():
        by = {r["peer"]: r for r in rows}
        for top, mine, other, need in DURABLE_TARGETS:
            if top != op or mine not in by or other not in by:
                continue
            v, p = by[mine], by[other]
            ok, how = judge(v, p, need, f"(need <= {-need})", strict=True)
            out.append(f"- {op} {case}: {mine} {v['median']:.3f} s vs {other} {p['median']:.3f} s "
                       f"= {how}: {'met' if ok else 'NOT met'}")
        for top, mine, prefix, part, need, floor in DURABLE_FAMILY_TARGETS:
            family = [r for r in rows if r["peer"].startswith(prefix) and part in r["peer"]]
            if top != op or mine not in by or not family:
                continue
            v, p = by[mine], min(family, key=lambda r: r["median"])
            ok, how = judge(v, p, need, "")
            asks = f"; {need:g}x asks <= {p['median'] / need:.3f} s"
            if floor in by:
                asks += f", the floor ({floor}) is {by[floor]['median']:.3f} s"
            out.append(f"- {op} {case}: {mine} {v['median']:.3f} s vs {p['peer']} "
                       f"{p['median']:.3f} s = {how} (need >= {need:g}x{asks}): "
                       f"{'met' if ok else 'NOT met'}")
    return out


def is_voxcore(peer: str) -> bool:
    return peer.startswith("voxcore")


def is_floor(peer: str) -> bool:
    return peer.startswith("floor:")


def rank(peer: str) -> tuple:
    if is_floor(peer):
        return (2, peer)
    base = peer.split()[0]
    return (0 if is_voxcore(peer) else 1,
            PEER_ORDER.index(base) if base in PEER_ORDER else 99, peer)


def load(path: Path):
    doc = json.loads(path.read_text())
    rows = []
    for b in doc["benchmarks"]:
        info, st = b["extra_info"], b["stats"]
        rows.append(dict(op=info["op"], case=info["case"], peer=info["peer"],
                         median=st["median"], min=st["min"], max=st["max"], rounds=st["rounds"],
                         nbytes=info["nbytes"], load=info.get("loadavg_1m"),
                         family=info.get("family"), kind=info.get("kind"),
                         per_chunk_ms=info.get("per_chunk_ms"), size=info.get("size"),
                         n_regions=info.get("n_regions"), region_edge=info.get("region_edge"),
                         tiles=info.get("tiles_touched"), decodes=info.get("tile_decodes"),
                         max_abs_diff=info.get("max_abs_diff"), levels=info.get("levels"),
                         versions=info.get("versions"), files=info.get("files")))
    return doc, rows


def reference(rows):
    """voxcore's like-for-like row of a group: plain 'voxcore' (or 'voxcore mean' for the
    pyramids), else the group's first voxcore row (its cache row)."""
    vox = [r for r in rows if is_voxcore(r["peer"])]
    for name in ("voxcore", "voxcore mean"):
        for r in vox:
            if r["peer"] == name:
                return r
    return vox[0] if vox else None


def best_peer(rows):
    peers = [r for r in rows if not is_voxcore(r["peer"]) and not is_floor(r["peer"])]
    return min(peers, key=lambda r: r["median"]) if peers else None


def table(rows) -> list[str]:
    ref, best = reference(rows), best_peer(rows)
    out = ["| peer | median s | min s | MiB/s | x voxcore | x best peer | n | load |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in sorted(rows, key=lambda r: (rank(r["peer"])[0], r is not ref, rank(r["peer"]))):
        xv = f"{r['median'] / ref['median']:.2f}" if ref else ""
        xb = f"{r['median'] / best['median']:.2f}" if best else ""
        name = f"**{r['peer']}**" if r is ref else r["peer"]
        out.append(f"| {name} | {r['median']:.4f} | {r['min']:.4f} | "
                   f"{r['nbytes'] / MiB / r['median']:.0f} | {xv} | {xb} | {r['rounds']} | "
                   f"{'' if r['load'] is None else r['load']} |")
    return out


def findings(groups) -> list[str]:
    out = []
    for (op, case), rows in groups.items():
        ref, best = reference(rows), best_peer(rows)
        if ref is None:
            continue
        if best and ref["median"] > best["median"]:
            out.append(f"- {op} {case}: voxcore {ref['median']:.4f} s is "
                       f"{ref['median'] / best['median']:.2f}x the best peer "
                       f"({best['peer']}, {best['median']:.4f} s)")
        key = FLOOR_FOR.get(op)
        floors = [r for r in rows if is_floor(r["peer"]) and key and key in r["peer"]]
        for f in floors:
            if ref["median"] > SLACK * f["median"]:
                out.append(f"- {op} {case}: voxcore is {ref['median'] / f['median']:.2f}x the "
                           f"floor ({f['peer']}, {f['median']:.4f} s)")
    return out or ["- none"]


def targets(rows) -> list[str]:
    """One line per target and voxcore row it applies to: the speed-up and whether it is met."""
    out = []
    for what, (prefix, vkind), (family, kind, label), need in TARGETS:
        peers = [r for r in rows if not is_voxcore(r["peer"])
                 and (family is None or r["family"] == family)
                 and (kind is None or r["kind"] == kind)
                 and (label is None or r["peer"].startswith(label))]
        mine = [r for r in rows if is_voxcore(r["peer"]) and r["peer"].startswith(prefix)
                and r["kind"] == vkind]
        if not peers or not mine:
            out.append(f"- {what}: not measured (no {'voxcore' if not mine else 'peer'} row)")
            continue
        best = min(peers, key=lambda r: r["median"])
        for r in mine:
            got = best["median"] / r["median"]
            out.append(f"- {what}: {r['peer']} {r['median']:.3f} s vs {best['peer']} "
                       f"{best['median']:.3f} s = {got:.2f}x: "
                       f"{'met' if got >= need else 'NOT met'}")
    return out


def row_targets(rows) -> list[str]:
    out = []
    for op, what, mine, other, need in ROW_TARGETS:
        vox = [r for r in rows if r["op"] == op and r["peer"] == mine]
        peers = [r for r in rows if r["op"] == op and r["peer"].startswith(other)]
        if not vox or not peers:
            if vox or peers:
                out.append(f"- {what}: not measured (no {'peer' if vox else 'voxcore'} row)")
            continue
        v, p = vox[0], peers[0]
        ok, how = judge(v, p, need, "the floor")
        out.append(f"- {what}: {v['peer']} {v['median']:.3f} s vs {p['peer']} "
                   f"{p['median']:.3f} s = {how}: {'met' if ok else 'NOT met'}")
    return out


def slide_targets(groups) -> list[str]:
    out = []
    for (op, case), rows in groups.items():
        ref = reference(rows)
        floors = [r for r in rows if r["peer"].startswith("floor:") and "(durable)" in r["peer"]]
        for ops, what, prefix, need in SLIDE_TARGETS:
            if op not in ops:
                continue
            if prefix is None:
                other = best_peer(rows)
            else:
                start, part = prefix if isinstance(prefix, tuple) else (prefix, "")
                family = [r for r in rows if r["peer"].startswith(start) and part in r["peer"]]
                other = min(family, key=lambda r: r["median"]) if family else None
            if ref is None or other is None:
                out.append(f"- {op} {case}: {what}: not measured (no "
                           f"{'voxcore' if ref is None else prefix or 'peer'} row)")
                continue
            ok, how = judge(ref, other, need, "the floor")
            asks = ""
            if need > 0 and floors:  # what the target asks, beside the floor it cannot go under
                f = min(floors, key=lambda r: r["median"])
                asks = (f" (the target asks {other['median'] / need:.3f} s; "
                        f"{f['peer']} is {f['median']:.3f} s)")
            out.append(f"- {op} {case}: {what}: {ref['peer']} {ref['median']:.3f} s vs "
                       f"{other['peer']} {other['median']:.3f} s = {how}: "
                       f"{'met' if ok else 'NOT met'}{asks}")
    return out


def slide_notes(rows) -> list[str]:
    """What a slide group's rows read, and how far each is from tifffile's decode."""
    r0 = rows[0]
    out = []
    if r0.get("n_regions"):
        out.append(f"- {r0['n_regions']} regions of {r0['region_edge']}^2; {r0['tiles']} tiles "
                   f"touched, {r0['decodes']} tile decodes without a cache")
    diffs = [f"{r['peer']} {r['max_abs_diff']}" for r in rows if r.get("max_abs_diff") is not None]
    if diffs:
        out.append("- max abs difference from tifffile's decode: " + "; ".join(diffs))
    for r in rows:
        if r.get("levels"):
            shapes = ", ".join("x".join(map(str, lv["shape"])) for lv in r["levels"])
            out.append(f"- {r['peer']} wrote {len(r['levels'])} levels: {shapes}")
    return out


def render(doc, rows) -> str:
    mi = doc.get("machine_info", {})
    vb = mi.get("voxcore_bench", {})
    lines = [f"# voxcore benchmarks, {vb.get('size', '?')}^3 uint16",
             "",
             f"- machine: {vb.get('cpu_model', mi.get('cpu', {}).get('brand_raw', '?'))}, "
             f"{vb.get('nproc', '?')} cores, {vb.get('mem_total_gib', '?')} GiB; "
             f"python {mi.get('python_version', '?')}; voxcore threads "
             f"{vb.get('voxcore_threads', '?')}",
             f"- voxcore core: {vb.get('voxcore_core', '?')}",
             f"- load average at start {vb.get('loadavg_start')}, at end {vb.get('loadavg_end')}",
             "- versions: " + ", ".join(f"{k} {v}" for k, v in vb.get("versions", {}).items()
                                        if v),
             f"- run: {doc.get('datetime', '?')}",
             ""]
    slide = [r for r in rows if r["op"] in SLIDE_OPS]
    if slide:
        edge = slide[0]["size"]
        lines.insert(len(lines) - 1, f"- slide: {edge} x {edge} RGB uint8, 256^2 tiles, 4 levels "
                                     "by 4x (bench_slide.py)")
        f = slide[0].get("files") or {}
        if f:
            lines.insert(len(lines) - 1, f"- slide files: SVS {f['svs_MiB']} MiB, OME-TIFF "
                                         f"{f['ome_MiB']} MiB, both made in {f['made_s']} s; "
                                         f"{f['tissue']:.0%} tissue")
        versions = slide[0].get("versions") or {}
        if versions:
            lines.insert(len(lines) - 1, "- slide peers: " + ", ".join(
                f"{k} {v}" for k, v in versions.items()))
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["op"], r["case"]), []).append(r)
    for op, title in OPS.items():
        cases = [k for k in groups if k[0] == op]
        for key in cases:
            lines += [f"## {title}: {key[1]}" if key[1] != "-" else f"## {title}", ""]
            lines += table(groups[key]) + [""]
            per_chunk = [r for r in groups[key] if r.get("per_chunk_ms") is not None]
            if per_chunk:
                lines += [f"- {r['peer']}: {r['per_chunk_ms']} ms per chunk" for r in per_chunk] + [""]
            if op in SLIDE_OPS:
                lines += slide_notes(groups[key]) + [""]
    lines += [f"## Where voxcore is slower than the best peer or above {SLACK}x its floor", ""]
    lines += findings(groups)
    pyramid = [r for r in rows if r["op"] == "pyramid"]
    if pyramid:
        lines += ["", "## Pyramid targets", ""] + targets(pyramid)
    durable = durable_targets(groups)
    if durable:
        lines += ["", "## Durable-write targets", ""] + durable
    nifti = row_targets(rows)
    if nifti:
        lines += ["", "## Targets against another row (NIfTI, plates, remote)", ""] + nifti
    slides = slide_targets({k: v for k, v in groups.items() if k[0] in SLIDE_OPS})
    if slides:
        lines += ["", "## Slide targets", ""] + slides
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("json", type=Path, help="pytest-benchmark --benchmark-json output")
    args = ap.parse_args()
    doc, rows = load(args.json)
    print(render(doc, rows), end="")


if __name__ == "__main__":
    main()
