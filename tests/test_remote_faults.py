"""Reads by URL under faults (loopback HTTP server with injected 500s, dropped connections,
delays, short and over-long range bodies): transient failures are retried with backoff and the
data equals the local copy; 4xx is never retried; a failure that persists, or a request past its
timeout, is a StoreError naming the key; a body that is neither the range asked for nor the
whole object is CorruptDataError."""

import time

import numpy as np
import pytest
import voxcore as vc

pytest.importorskip("aiohttp")
from _http import Faults, Server  # noqa: E402


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    a = np.random.default_rng(5).integers(0, 4000, (2, 64, 96)).astype(np.uint16)
    vc.create_array(root / "plain.zarr", a.shape, a.dtype, chunks=(1, 32, 32)).write(a)
    vc.create_array(root / "shard.zarr", a.shape, a.dtype, chunks=(1, 16, 16), shards=(1, 32, 32)).write(a)
    return root, a


def _gets(server, prefix):
    return [r for r in server.log if r[0] == "GET" and r[1].startswith(prefix)]


@pytest.mark.parametrize("fault", ["status500", "drop"])
@pytest.mark.parametrize("name", ["plain.zarr", "shard.zarr"])
def test_transient_failures_are_retried(served, fault, name):
    root, a = served
    faults = Faults(only=f"/{name}/c/", **{fault: 3})
    with Server(root, faults=faults) as s:
        img = vc.open(f"{s.url}/{name}")
        np.testing.assert_array_equal(img.read(), a)
        assert getattr(faults, fault) == 0, "the faults were not all met"
        keys = {r[1] for r in _gets(s, f"/{name}/c/")}
        assert len(_gets(s, f"/{name}/c/")) >= len(keys) + 3  # the failed requests were sent again


def test_a_failure_that_persists_names_the_key_and_the_attempts(served):
    root, _ = served
    with Server(root, faults=Faults(only="/plain.zarr/c/1/", status500=10**6)) as s:
        img = vc.open(f"{s.url}/plain.zarr", retries=2)
        with pytest.raises(vc.StoreError, match=r"http://127\.0\.0\.1:\d+/plain\.zarr: failed to read 'c/1/\d/\d' \(3 attempts\)"):
            img.read()
        np.testing.assert_array_equal(img.read((0,)), served[1][0])  # the other channel reads


def test_4xx_is_never_retried(served):
    root, _ = served
    with Server(root, forbidden=("/plain.zarr/c/0/0/0",)) as s:
        img = vc.open(f"{s.url}/plain.zarr")
        with pytest.raises(PermissionError, match="403"):
            img.read((0, slice(0, 8), slice(0, 8)))
        assert len(_gets(s, "/plain.zarr/c/0/0/0")) == 1


def test_a_request_past_its_timeout_is_a_store_error(served):
    root, _ = served
    with Server(root, faults=Faults(only="/plain.zarr/c/", delay=20.0)) as s:
        img = vc.open(f"{s.url}/plain.zarr", timeout=0.5)
        t0 = time.monotonic()
        with pytest.raises(vc.StoreError, match=r"timed out after 0\.5 s"):
            img.read((0, slice(0, 8), slice(0, 8)))
        assert time.monotonic() - t0 < 15  # not the server's 20 s, let alone forever


@pytest.mark.parametrize("fault", ["short", "long"])
def test_a_body_of_the_wrong_length_is_corrupt_data(served, fault):
    root, _ = served
    with Server(root, faults=Faults(only="/shard.zarr/c/", **{fault: 5})) as s:
        img = vc.open(f"{s.url}/shard.zarr")
        with pytest.raises(vc.CorruptDataError, match=r"c/0/0/0"):
            img.read((0, slice(0, 32), slice(0, 32)))


@pytest.mark.parametrize("kw,words", [({"retries": -1}, "retries must be"), ({"retries": 1.5}, "retries must be"),
                                      ({"timeout": 0}, "timeout must be"), ({"timeout": float("nan")}, "timeout must be")])
def test_bad_fault_options(served, kw, words):
    with pytest.raises(vc.InvalidArgumentError, match=words):
        vc.open("http://127.0.0.1:9/x.zarr", **kw)


def test_fault_options_are_for_urls(served):
    root, _ = served
    with pytest.raises(vc.InvalidArgumentError, match="for URLs"):
        vc.open(root / "plain.zarr", retries=2)
