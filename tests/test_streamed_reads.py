"""Reads from a batched (remote) store decode each value as it arrives, while the rest are still
being fetched: values in any order give the same array; a fetch or a decode failing halfway
raises its own error without hanging; the sink refuses bad puts."""

import asyncio
import os
import time

import numpy as np
import pytest
import voxcore as vc
import zarr
from voxcore import _core
from zarr.core.buffer import cpu
from zarr.storage import MemoryStore, WrapperStore


class Paced(WrapperStore):
    """A store whose chunk reads wait delays[key] seconds (so values come out of order) and
    whose read of `fail` raises; records the keys read."""

    def __init__(self, store, delays=None, fail=None):
        super().__init__(store)
        self.delays, self.fail, self.read = delays or {}, fail, []

    async def get(self, key, prototype, byte_range=None):
        self.read.append(key)
        await asyncio.sleep(self.delays.get(key, 0.0))
        if key == self.fail:
            raise ValueError("the disk is on fire")
        return await self._store.get(key, prototype, byte_range)


@pytest.fixture
def stored(tmp_path):
    """(the volume, a MemoryStore holding it as a Zarr v3 array of 8^3 chunks, zstd)."""
    a = np.random.default_rng(3).integers(0, 60000, (20, 24, 17)).astype(np.uint16)
    vc.create_array(tmp_path / "a.zarr", a.shape, a.dtype, chunks=8).write(a)
    root = tmp_path / "a.zarr"
    items = {}
    for d, _, files in os.walk(root):
        for f in files:
            key = os.path.relpath(os.path.join(d, f), root).replace(os.sep, "/")
            items[key] = cpu.Buffer.from_bytes((root / key).read_bytes())
    return a, items


def test_values_arriving_in_any_order_read_the_same(stored):
    a, items = stored
    chunks = sorted(k for k in items if k.startswith("c/"))
    delays = {k: 0.002 * (len(chunks) - i) for i, k in enumerate(chunks)}  # the first comes last
    store = Paced(MemoryStore(dict(items)), delays)
    img = vc.open(store)
    np.testing.assert_array_equal(img.read(), a)
    np.testing.assert_array_equal(img.read((slice(3, 19), slice(0, 24), slice(5, 6))), a[3:19, :, 5:6])
    assert sorted(k for k in store.read if k.startswith("c/")) == sorted(chunks + [
        k for k in chunks if k.startswith(("c/0/", "c/1/", "c/2/")) and k.split("/")[3] == "0"])


def test_a_fetch_failing_halfway_is_its_error_and_nothing_hangs(stored):
    a, items = stored
    store = Paced(MemoryStore(dict(items)), {"c/0/0/0": 0.3}, fail="c/2/1/1")
    img = vc.open(store)
    t = time.perf_counter()
    with pytest.raises(vc.StoreError, match=r"c/2/1/1.*the disk is on fire"):
        img.read()
    assert time.perf_counter() - t < 30
    store.fail = None
    np.testing.assert_array_equal(img.read(), a)  # the handle is still good


def test_a_corrupt_value_mid_stream_is_corrupt_data(stored):
    a, items = stored
    items = dict(items)
    items["c/1/1/1"] = cpu.Buffer.from_bytes(b"not zstd at all")
    img = vc.open(Paced(MemoryStore(items), {"c/0/0/0": 0.2}))
    with pytest.raises(vc.CorruptDataError, match="c/1/1/1"):
        img.read()
    np.testing.assert_array_equal(img.read((slice(0, 8),) * 3), a[:8, :8, :8])


def test_missing_values_stream_as_the_fill_value(stored):
    a, items = stored
    items = dict(items)
    del items["c/1/2/0"]
    want = a.copy()
    want[8:16, 16:24, 0:8] = 0
    np.testing.assert_array_equal(vc.open(Paced(MemoryStore(items))).read(), want)


def test_the_sink_refuses_bad_puts():
    got = {}

    def start_many(requests, sink):
        got["requests"] = list(requests)
        with pytest.raises(vc.InvalidArgumentError, match="out of range"):
            sink.put(len(requests), b"x")
        with pytest.raises(TypeError):
            sink.put(0, 12)
        for i in range(len(requests)):
            assert sink.put(i, None)
        with pytest.raises(vc.InvalidArgumentError, match="given twice"):
            sink.put(0, b"x")
        return lambda: None

    store = _core.CallbackStore(lambda reqs: [None] * len(reqs), None, None, start_many)
    spec = zarr_spec((4, 4), (2, 2))
    arr = _core.ChunkedArray(spec, store, None)
    out = np.full((4, 4), 9, np.uint16)
    arr.read_into((0, 0), out)
    assert not out.any()  # all missing: the fill value
    assert len(got["requests"]) == 4


def test_a_wait_that_raises_is_the_read_error():
    def start_many(requests, sink):
        sink.fail()

        def wait():
            raise vc.StoreError("the fetch broke")
        return wait

    store = _core.CallbackStore(lambda reqs: [None] * len(reqs), None, None, start_many)
    arr = _core.ChunkedArray(zarr_spec((4, 4), (2, 2)), store, None)
    with pytest.raises(vc.StoreError, match="the fetch broke"):
        arr.read_into((0, 0), np.zeros((4, 4), np.uint16))


def zarr_spec(shape, chunks):
    from voxcore.formats import zarr as zmeta

    import json

    meta = zarr.create_array(MemoryStore(), shape=shape, chunks=chunks, dtype="uint16", fill_value=0).metadata
    return zmeta.parse_v3(json.loads(json.dumps(meta.to_dict()))).array_spec()


def test_a_failed_decode_stops_the_fetch(stored):
    from voxcore._stores import RequestPolicy

    _, items = stored
    items = dict(items)
    items["c/0/0/1"] = cpu.Buffer.from_bytes(b"garbage")
    chunks = [k for k in items if k.startswith("c/")]
    store = Paced(MemoryStore(items), {k: 0.02 for k in chunks})
    store._voxcore_policy = RequestPolicy(in_flight=1)  # one request at a time
    img = vc.open(store)
    with pytest.raises(vc.CorruptDataError, match="c/0/0/1"):
        img.read()
    fetched = [k for k in store.read if k.startswith("c/")]
    assert "c/0/0/1" in fetched and len(fetched) < len(chunks) // 2  # the rest were never asked
