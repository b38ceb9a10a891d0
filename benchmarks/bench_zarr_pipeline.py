"""zarr-python codec pipelines: voxcore.codec_pipeline.CodecPipeline against the zarrs one.

What: the same code, zarr-python 3's ``zarr.open_array(...)[...]``, ``a[box]`` and
``zarr.create_array(...)[...] = vol``, run with three codec pipelines chosen through
``zarr.config``: voxcore's C++ core (label "voxcore pipeline"), the zarrs Rust pipeline
(``zarrs.ZarrsCodecPipeline``) and zarr-python's default ``BatchedCodecPipeline``. Data and cases
are the peers harness's: a seeded 512^3 uint16 volume (VOXCORE_BENCH_SIZE changes the edge),
64^3 chunks, Zarr v3 + zstd-1, Zarr v2 + blosc(lz4, shuffle), Zarr v3 sharded (256^3 shards) +
zstd-1; the stores read are written once by zarr-python's default pipeline. Operations: open +
whole-array read ("pipeline-read"); 100 random unaligned 64^3 boxes through one handle opened
outside the timing ("pipeline-boxes"); create + whole-array write ("pipeline-write").

Why: users of zarr-python can switch pipelines without changing their code; the zarrs pipeline
is what they use today to go faster, so voxcore's pipeline has to be at least as fast in every
case. zarr-python's own indexing, metadata and asyncio overhead is in every row alike. Every read
is compared with the volume, every written store is read back by zarr-python's default pipeline
and compared, and the voxcore rows check that the core (not the fallback) did the work.

Tables: ``python3 benchmarks/bench_zarr_pipeline.py /tmp/bench.json`` after
``python3 -m pytest benchmarks/bench_zarr_pipeline.py --benchmark-enable
--benchmark-json=/tmp/bench.json``.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
from pathlib import Path

import _peers
import pytest
from _data import CASES, Case, MiB
from bench_zarr import assert_equal

ROUNDS = {"pipeline-read": 7, "pipeline-boxes": 7, "pipeline-write": 5}
# conftest.py runs the tests grouped by these names and by case, peers back to back.
RUN_ORDER = (("test_pipeline_read",), ("test_pipeline_boxes",), ("test_pipeline_write",))
CASE_IDS = [c.key for c in CASES]


class ZarrPythonVoxcore(_peers.ZarrPython):
    """zarr-python with voxcore's codec pipeline, enabled for this peer only."""

    name = "voxcore pipeline"
    module = "voxcore.codec_pipeline"
    pipeline = "CodecPipeline"

    def context(self):
        import voxcore.codec_pipeline  # noqa: F401 - registers the pipeline with zarr-python
        import zarr

        return zarr.config.set({"codec_pipeline.path": "voxcore.codec_pipeline.CodecPipeline"})


PEERS = {
    "voxcore pipeline": ZarrPythonVoxcore,
    "zarr-python+zarrs": _peers.ZarrPythonZarrs,
    "zarr-python": _peers.ZarrPython,
}


def make_peer(name: str):
    cls = PEERS[name]
    pytest.importorskip(cls.module)
    return cls()


def run(benchmark, fn, *, op: str, case: Case, size: int, peer: str, nbytes: int, setup=None):
    """benchmark.pedantic with one warm-up round; records what report.py needs."""
    benchmark.group = f"{op} {case.name(size)}"
    benchmark.extra_info.update(op=op, case=case.name(size), peer=peer, size=size,
                                nbytes=nbytes, floor=False)
    with quieted(peer):
        result = benchmark.pedantic(fn, setup=setup, rounds=ROUNDS[op], warmup_rounds=1)
    if benchmark.stats is not None:  # None when pytest-benchmark is disabled (smoke runs)
        benchmark.extra_info["MiB_per_s"] = nbytes / MiB / benchmark.stats.stats.median
    benchmark.extra_info["loadavg_1m"] = round(os.getloadavg()[0], 2)
    return result


def quieted(peer: str):
    """The peers' warnings are silenced around their own calls only; voxcore's stay errors."""
    return contextlib.nullcontext() if peer.startswith("voxcore") else _peers.quiet()


def check_core(peer, handle) -> None:
    """The voxcore rows must measure the core, not zarr-python's fallback pipeline."""
    if isinstance(peer, ZarrPythonVoxcore):
        import zarr

        meta = handle.metadata
        spec = meta.get_chunk_spec((0,) * len(handle.shape), handle._async_array.config,
                                   zarr.core.buffer.default_buffer_prototype())
        assert handle._async_array.codec_pipeline.uses_core(spec), "fell back to zarr-python"


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("peer", list(PEERS))
def test_pipeline_read(benchmark, peer, case, stores, volume, size):
    p = make_peer(peer)
    path = stores[case.key]
    with quieted(peer):
        check_core(p, p.open(path, case))  # also asserts which pipeline zarr-python chose
    out = run(benchmark, lambda: p.read_whole(path, case), op="pipeline-read", case=case,
              size=size, peer=peer, nbytes=volume.nbytes)
    assert_equal(out, volume, f"{peer} whole read of {case.key}")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("peer", list(PEERS))
def test_pipeline_boxes(benchmark, peer, case, stores, volume, boxes, size):
    p = make_peer(peer)
    with quieted(peer):
        handle = p.open(stores[case.key], case)  # opened once, outside the timing
    check_core(p, handle)
    outs = run(benchmark, lambda: [handle[b] for b in boxes], op="pipeline-boxes", case=case,
               size=size, peer=peer, nbytes=sum(volume[b].nbytes for b in boxes))
    assert len(outs) == len(boxes)
    for i, (b, o) in enumerate(zip(boxes, outs)):
        assert_equal(o, volume[b], f"{peer} box {i} {b} of {case.key}")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("peer", list(PEERS))
def test_pipeline_write(benchmark, peer, case, volume, workdir, size):
    p = make_peer(peer)
    path = workdir / "pipeline-written" / f"{case.key}-{peer.replace(' ', '_')}.zarr"

    def clear():  # untimed: every round creates the array from nothing, no dirty pages left
        shutil.rmtree(path, ignore_errors=True)
        os.sync()

    run(benchmark, lambda: p.write(path, case, volume), setup=clear, op="pipeline-write",
        case=case, size=size, peer=peer, nbytes=volume.nbytes)
    assert _peers.zarr_layout(path) == _peers.expected_layout(case, size)
    assert_equal(_peers.zarr_read_back(path), volume, f"zarr-python read-back of {peer}'s write")
    shutil.rmtree(path)


def main(argv: list[str]) -> None:
    """Prints one table per operation and case from a --benchmark-json file (report.py's
    columns; "x voxcore" is relative to the voxcore pipeline row)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import report

    _, rows = report.load(Path(argv[0]))
    groups: dict = {}
    for r in rows:
        if r["op"].startswith("pipeline-"):
            groups.setdefault((r["op"], r["case"]), []).append(r)
    for (op, case), group in groups.items():
        print(f"## {op} {case}\n")
        print("\n".join(report.table(group)) + "\n")
    slower = [f"- {op} {case}: voxcore pipeline {ref['median']:.4f} s vs {best['peer']} "
              f"{best['median']:.4f} s ({ref['median'] / best['median']:.2f}x)"
              for (op, case), group in groups.items()
              for ref, best in [(report.reference(group), report.best_peer(group))]
              if ref and best and ref["median"] > best["median"]]
    print("## Where the voxcore pipeline is slower than a peer\n")
    print("\n".join(slower) if slower else "- none")


if __name__ == "__main__":
    main(sys.argv[1:])
