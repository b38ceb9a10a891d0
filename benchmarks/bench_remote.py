"""Remote reads over latency (issue: remote data): a 512^3 uint16 Zarr v3 array (64^3 chunks,
unsharded and in 256^3 shards, zstd-1) served on loopback by an aiohttp server that waits 20 ms
before every response (a nearby object store's first-byte latency), read whole and as 100
random unaligned 64^3 boxes by:

- voxcore ``vc.open(url)`` at its defaults (a read's requests in flight together, up to 128;
  neighbouring ranges of one shard merged into requests of up to 8 MiB; each value decoded as it
  arrives; shard indexes kept per handle);
- zarr-python 3 ``zarr.open_array(FsspecStore.from_url(url))`` at its defaults;
- tensorstore ``zarr3`` driver on its ``http`` kvstore at its defaults.

Each round opens a fresh handle for whole reads; the boxes are read through one handle opened
outside the timing (so its shard indexes may be cached, as each tool does). Every result is
compared with the local array. The server counts the requests and bytes of each round:
``requests`` and ``MiB_fetched`` in extra_info (fewer is better).

NIfTI rows: a 256^3 uint16 volume as .nii and .nii.gz (gzip level 1) on the same server, a
z-slab region [:, :, 100:140] read by ``vc.open(url).read(region)`` (fresh handle: the header
by one range request, then the .nii's span by one more, or the .nii.gz whole, inflated by the
core) against nibabel through fsspec (``Nifti1Image.from_stream`` over ``fsspec.open(url)``,
gzip.GzipFile for the .gz, the region sliced from its dataobj).

Floor rows: plain aiohttp GETs of the array's zarr.json and then of every stored object (128
in flight, nothing decoded), and the same with each body zstd-decoded on 2 threads as it lands
(python-zstandard; nothing placed), for whole reads (whose readers open the array in the timed
round: they learn its chunk grid first, one round trip); for the chunked boxes, each box's chunks fetched together and decoded so, box
after box. They are what a Python client pays over this transport on this machine.

Why: issue target >= 1.5x tensorstore on boxes and whole reads, or within 1.1x of the fetch +
decode floor where the target lies below it; report.py checks both.

Smoke runs (benchmarks disabled) use a 128^3 array and no latency.
"""
from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import numpy as np
import pytest
from _data import MiB, make_volume

LATENCY = 0.020
CHUNK = 64
SHARD = 256
N_BOXES = 100
ROUNDS = {"read": 5, "boxes": 3}
CASES = {"chunks": None, "shards": SHARD}
NIFTI_EDGE = 256
NIFTI_FILES = ("v.nii", "v.nii.gz")


class _Handler:
    """The server process's request handler: a directory with byte ranges, every response after
    `latency` seconds; requests and body bytes counted in shared values."""

    def __init__(self, root: str, latency: float, requests, nbytes):
        self.root, self.latency, self.requests, self.nbytes = Path(root).resolve(), latency, requests, nbytes

    def _count(self, n: int) -> None:
        with self.requests.get_lock():
            self.requests.value += 1
            self.nbytes.value += n

    async def __call__(self, request):
        from aiohttp import web

        await asyncio.sleep(self.latency)
        path = (self.root / request.match_info["path"]).resolve()
        if self.root not in path.parents or not path.is_file():
            self._count(0)
            raise web.HTTPNotFound()
        size = path.stat().st_size
        if request.method == "HEAD":
            self._count(0)
            return web.Response(headers={"Content-Length": str(size), "Accept-Ranges": "bytes"})
        m = re.fullmatch(r"bytes=(\d*)-(\d*)", request.headers.get("Range", ""))
        with open(path, "rb") as f:
            if m is None:
                body, status, headers = f.read(), 200, {}
            else:
                lo, hi = m.groups()
                start = max(0, size - int(hi)) if lo == "" else int(lo)
                end = size if lo == "" or hi == "" else min(size, int(hi) + 1)
                f.seek(start)
                body, status = f.read(max(0, end - start)), 206
                headers = {"Content-Range": f"bytes {start}-{start + len(body) - 1}/{size}"}
        self._count(len(body))
        return web.Response(body=body, status=status, headers={**headers, "Accept-Ranges": "bytes"})


def _serve(root: str, latency: float, requests, nbytes, port, ready) -> None:
    """The server process: aiohttp on 127.0.0.1 (HTTP/1.1 keep-alive), until terminated."""
    from aiohttp import web

    handler = _Handler(root, latency, requests, nbytes)
    app = web.Application()
    app.router.add_route("GET", "/{path:.*}", handler)
    app.router.add_route("HEAD", "/{path:.*}", handler)

    async def main():
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port.value = site._server.sockets[0].getsockname()[1]
        ready.set()
        await asyncio.Event().wait()
    asyncio.run(main())


class LatencyServer:
    """Serves a directory on 127.0.0.1 over HTTP/1.1 from its own process (so that the server
    does not share the readers' interpreter), every response after `latency` seconds; counts
    requests and body bytes."""

    def __init__(self, root: Path, latency: float):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self._requests, self._bytes, self._port = ctx.Value("q", 0), ctx.Value("q", 0), ctx.Value("i", 0)
        self._ready = ctx.Event()
        self._proc = ctx.Process(target=_serve, args=(str(root), latency, self._requests, self._bytes,
                                                      self._port, self._ready), daemon=True)

    def counts(self) -> tuple[int, int]:
        with self._requests.get_lock():
            return self._requests.value, self._bytes.value

    def __enter__(self) -> LatencyServer:
        self._proc.start()
        if not self._ready.wait(60):
            self._proc.terminate()
            raise RuntimeError("the benchmark's HTTP server did not start")
        self.url = f"http://127.0.0.1:{self._port.value}"
        return self

    def __exit__(self, *exc) -> None:
        self._proc.terminate()
        self._proc.join(30)


@pytest.fixture(scope="module")
def smoke(request) -> bool:
    cfg = request.config
    return bool(cfg.getoption("benchmark_disable") and not cfg.getoption("benchmark_enable"))


@pytest.fixture(scope="module")
def served(smoke, tmp_path_factory):
    import voxcore as vc

    pytest.importorskip("aiohttp")
    edge = 128 if smoke else 512
    vol = make_volume(edge)
    root = tmp_path_factory.mktemp("remote")
    for case, shards in CASES.items():
        vc.create_array(root / f"{case}.zarr", vol.shape, vol.dtype, chunks=CHUNK,
                        shards=None if shards is None else min(shards, edge)).write(vol)
    rng = np.random.default_rng(11)
    boxes = []
    for _ in range(N_BOXES):
        lo = [int(rng.integers(0, edge - CHUNK)) for _ in range(3)]
        boxes.append(tuple(slice(a, a + CHUNK) for a in lo))
    import nibabel as nib

    n = min(edge, NIFTI_EDGE)
    nii = vol[:n, :n, :n]
    nii = np.asfortranarray(nii.T)  # x, y, z
    for name in NIFTI_FILES:
        img = nib.Nifti1Image(nii, np.eye(4))
        if name.endswith(".gz"):
            import gzip

            with gzip.open(root / name, "wb", compresslevel=1) as f:
                f.write(img.to_bytes())
        else:
            nib.save(img, str(root / name))
    with LatencyServer(root, 0.0 if smoke else LATENCY) as server:
        yield server, vol, boxes, nii


def open_voxcore(url):
    import voxcore as vc

    img = vc.open(url)
    return lambda box: img.read(box)


def open_zarr_python(url):
    import zarr
    from zarr.storage import FsspecStore

    arr = zarr.open_array(FsspecStore.from_url(url, read_only=True), mode="r")
    return lambda box: arr[box]


def open_tensorstore(url):
    ts = pytest.importorskip("tensorstore")
    arr = ts.open({"driver": "zarr3", "kvstore": {"driver": "http", "base_url": url + "/"}},
                  read=True).result()
    return lambda box: arr[box].read().result()


READERS = {
    "voxcore": open_voxcore,
    "zarr-python FsspecStore": open_zarr_python,
    "tensorstore http kvstore": open_tensorstore,
}


def _run(benchmark, fn, op, case, peer, nbytes, server, rounds):
    benchmark.group = f"{op} {case}"
    benchmark.extra_info.update(op=f"{op}-{case}", case=case, peer=peer, size=nbytes, nbytes=nbytes,
                                floor=False, latency_ms=LATENCY * 1000)
    counts = []

    def timed():
        r0, b0 = server.counts()
        fn()
        r1, b1 = server.counts()
        counts.append((r1 - r0, b1 - b0))
    benchmark.pedantic(timed, rounds=rounds, warmup_rounds=1)
    if benchmark.stats is not None:
        benchmark.extra_info["MiB_per_s"] = nbytes / MiB / benchmark.stats.stats.median
    last = counts[-1]
    benchmark.extra_info.update(requests=last[0], MiB_fetched=round(last[1] / MiB, 2),
                                loadavg_1m=round(os.getloadavg()[0], 2))


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("peer", list(READERS))
def test_remote_read(benchmark, served, case, peer):
    server, vol, _, _ = served
    url = f"{server.url}/{case}.zarr"
    out = []

    def read():  # only the last result is kept: each round's array reuses the freed pages of the one
        # before, instead of first-touching new memory (which this VM makes slow and erratic)
        out[:] = []
        out.append(np.asarray(READERS[peer](url)((slice(None),) * 3)))
    _run(benchmark, read, "remote-read", case, peer, vol.nbytes, server, ROUNDS["read"])
    np.testing.assert_array_equal(out[-1], vol)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("peer", list(READERS))
def test_remote_boxes(benchmark, served, case, peer):
    server, vol, boxes, _ = served
    reader = READERS[peer](f"{server.url}/{case}.zarr")
    outs = []

    def read():
        outs[:] = [np.asarray(reader(b)) for b in boxes]
    nbytes = sum(int(np.prod([s.stop - s.start for s in b])) * vol.itemsize for b in boxes)
    _run(benchmark, read, "remote-boxes", case, peer, nbytes, server, ROUNDS["boxes"])
    for b, got in zip(boxes, outs):
        np.testing.assert_array_equal(got, vol[b])


def nifti_voxcore(url, region):
    import voxcore as vc

    return vc.open(url).read(region)


def nifti_nibabel(url, region):
    import gzip

    import fsspec
    import nibabel as nib

    with fsspec.open(url, "rb") as f:
        fo = gzip.GzipFile(fileobj=f) if url.endswith(".gz") else f
        return np.asarray(nib.Nifti1Image.from_stream(fo).dataobj[region])


NIFTI_READERS = {"voxcore": nifti_voxcore, "nibabel through fsspec": nifti_nibabel}


@pytest.mark.parametrize("name", NIFTI_FILES)
@pytest.mark.parametrize("peer", list(NIFTI_READERS))
def test_remote_nifti_region(benchmark, served, name, peer):
    server, _, _, nii = served
    z = nii.shape[2]
    region = (slice(None), slice(None), slice(z * 100 // 256, z * 140 // 256))
    out = []

    def read():
        out.append(np.asarray(NIFTI_READERS[peer](f"{server.url}/{name}", region)))
    nbytes = nii[region].nbytes
    case = "gz" if name.endswith(".gz") else "nii"
    _run(benchmark, read, "remote-nifti", case, peer, nbytes, server, ROUNDS["read"])
    np.testing.assert_array_equal(out[-1], nii[region])


def _fetch_all(url: str, keys: list[str], in_flight: int = 128) -> int:
    """The array's zarr.json, then every key's body by aiohttp GETs, in_flight at a time, nothing
    decoded; bytes fetched."""
    import aiohttp

    async def main():
        gate = asyncio.Semaphore(in_flight)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=in_flight)) as session:
            async def one(key):
                async with gate, session.get(f"{url}/{key}") as r:
                    return len(await r.read())
            await one("zarr.json")  # a reader learns the chunk grid first (one round trip)
            return sum(await asyncio.gather(*(one(k) for k in keys)))
    return asyncio.run(main())


@pytest.mark.parametrize("case", list(CASES))
def test_remote_read_floor(benchmark, served, case):
    """What any Python (aiohttp) client pays for a whole read: the array's zarr.json, then every
    chunk's (or shard's) bytes fetched, 128 requests in flight (voxcore's default), none decoded."""
    server, vol, _, _ = served
    n = vol.shape[0] // CHUNK if case == "chunks" else -(-vol.shape[0] // min(SHARD, vol.shape[0]))
    keys = [f"c/{i}/{j}/{k}" for i in range(n) for j in range(n) for k in range(n)]
    url = f"{server.url}/{case}.zarr"
    got = []
    _run(benchmark, lambda: got.append(_fetch_all(url, keys)), "remote-read", case,
         "floor: aiohttp GETs of zarr.json, then of every stored object, 128 in flight, no decode", vol.nbytes, server,
         ROUNDS["read"])
    benchmark.extra_info["floor"] = True
    assert got[-1] > 0


class _Decoder:
    """zstd decoding of fetched bodies on `threads` threads (python-zstandard, one decompressor
    per thread), as a floor's stand-in for a reader's decode: nothing is placed."""

    def __init__(self, threads: int, chunk_nbytes: int):
        import threading
        from concurrent.futures import ThreadPoolExecutor

        self.pool = ThreadPoolExecutor(threads)
        self.local = threading.local()
        self.limit = chunk_nbytes

    def _one(self, body, parts) -> int:
        import zstandard

        d = getattr(self.local, "d", None)
        if d is None:
            d = self.local.d = zstandard.ZstdDecompressor()
        if parts is None:
            return len(d.decompress(body, max_output_size=self.limit))
        view = memoryview(body)
        return sum(len(d.decompress(view[o:o + n], max_output_size=self.limit)) for o, n in parts)

    async def decode(self, body, parts=None) -> int:
        return await asyncio.get_running_loop().run_in_executor(self.pool, self._one, body, parts)


def _inner_parts(body: bytes, n_inner: int) -> list[tuple[int, int]]:
    """A shard's (offset, nbytes) of each stored inner chunk, from its index at the end (n_inner
    uint64 pairs and a crc32c)."""
    index = np.frombuffer(body[-(n_inner * 16 + 4):-4], dtype="<u8").reshape(-1, 2)
    return [(int(o), int(n)) for o, n in index if o != 2**64 - 1]


def _fetch_decode(url: str, batches: list[list[str]], decoder: _Decoder, n_inner: int | None,
                  in_flight: int = 128, opens: bool = False) -> int:
    """Each batch's keys fetched by aiohttp GETs (in_flight at a time), each body decoded on the
    decoder's threads as it lands (a shard's inner chunks by its index: n_inner), batch after
    batch, after the array's zarr.json where it opens (as a whole read's readers do); decoded
    bytes."""
    import aiohttp

    async def main():
        gate = asyncio.Semaphore(in_flight)
        total = 0
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=in_flight)) as session:
            async def one(key):
                async with gate, session.get(f"{url}/{key}") as r:
                    body = await r.read()
                return await decoder.decode(body, None if n_inner is None else _inner_parts(body, n_inner))
            if opens:
                async with session.get(f"{url}/zarr.json") as r:
                    await r.read()
            for keys in batches:
                total += sum(await asyncio.gather(*(one(k) for k in keys)))
        return total
    return asyncio.run(main())


@pytest.mark.parametrize("case", list(CASES))
def test_remote_read_decode_floor(benchmark, served, case):
    """What a Python (aiohttp) client pays for a whole read that also decodes: the array's
    zarr.json, then every chunk's (or shard's) bytes fetched, 128 requests in flight, each body zstd-decoded on 2 threads as it
    lands (nothing placed)."""
    server, vol, _, _ = served
    edge = vol.shape[0]
    shard = None if case == "chunks" else min(SHARD, edge)
    n = edge // CHUNK if shard is None else -(-edge // shard)
    keys = [f"c/{i}/{j}/{k}" for i in range(n) for j in range(n) for k in range(n)]
    decoder = _Decoder(2, CHUNK ** 3 * vol.itemsize)
    url = f"{server.url}/{case}.zarr"
    got = []
    _run(benchmark, lambda: got.append(_fetch_decode(url, [keys], decoder, None if shard is None else
                                                     (shard // CHUNK) ** 3, opens=True)),
         "remote-read", case, "floor: aiohttp GETs of zarr.json, then of each object, zstd-decoded on 2 threads as it lands",
         vol.nbytes, server, ROUNDS["read"])
    benchmark.extra_info["floor"] = True
    assert got[-1] == vol.nbytes


def test_remote_boxes_decode_floor(benchmark, served):
    """What a Python (aiohttp) client pays for the boxes, one after another: each box's chunks
    fetched together and zstd-decoded on 2 threads as they land (nothing placed)."""
    server, vol, boxes, _ = served
    batches = []
    for b in boxes:
        ranges = [range(s.start // CHUNK, (s.stop - 1) // CHUNK + 1) for s in b]
        batches.append([f"c/{i}/{j}/{k}" for i in ranges[0] for j in ranges[1] for k in ranges[2]])
    decoder = _Decoder(2, CHUNK ** 3 * vol.itemsize)
    url = f"{server.url}/chunks.zarr"
    nbytes = sum(int(np.prod([s.stop - s.start for s in b])) * vol.itemsize for b in boxes)
    got = []
    _run(benchmark, lambda: got.append(_fetch_decode(url, batches, decoder, None)), "remote-boxes", "chunks",
         "floor: aiohttp GETs of each box's chunks, zstd-decoded on 2 threads as they land", nbytes, server,
         ROUNDS["boxes"])
    benchmark.extra_info["floor"] = True
    assert got[-1] == sum(len(k) for k in batches) * CHUNK ** 3 * vol.itemsize
