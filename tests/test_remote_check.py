"""check / validate (and `voxcore check|validate URL`) on trees behind fsspec URLs: a tree copied
to memory:// or to S3 (moto's server on 127.0.0.1) reports exactly what the local tree reports,
for a clean pyramid, a plate and each injected problem of test_errors_named; URLs without
listings (http) are refused by name; a missing bucket or path is "no-zarr-node" as a missing
local directory is; refusals and failing transports are named."""

import json
import shutil

import fsspec
import numpy as np
import pytest
import voxcore as vc
from test_errors_named import INJECTED, VERSIONS  # the local cases, injected into copies
from voxcore.check import check
from voxcore.cli import main

pytest.importorskip("ome_zarr_models")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Local trees by name: a 2-level pyramid with a label image per version, and a plate."""
    root = tmp_path_factory.mktemp("trees")
    a = np.arange(8 * 10 * 12, dtype="u2").reshape(8, 10, 12)
    out = {}
    for v in VERSIONS:
        out[v] = root / f"img{v}.ome.zarr"
        vc.save(vc.build_pyramid(vc.from_array(a), [2], "mean"), out[v], version=v, chunks=4,
                labels={"cells": (a % 3).astype("u1")})
    out["plate"] = root / "p.ome.zarr"
    with vc.create_plate(out["plate"], ["A"], ["1", "2"]) as w:
        w.write_field("A/2", np.zeros((4, 8, 8), np.uint8))
    return out


@pytest.fixture
def copy(tmp_path, saved):
    def make(name):
        dst = tmp_path / f"{name}.zarr"
        shutil.copytree(saved[name], dst)
        return dst
    return make


@pytest.fixture
def memory():
    """A memory:// filesystem, empty before and after the test; upload(local, name) -> URL."""
    fs = fsspec.filesystem("memory")

    def clear():
        fs.store.clear()
        fs.pseudo_dirs[:] = [""]

    def upload(local, name):
        fs.put(str(local), f"/{name}", recursive=True)
        return f"memory://{name}"

    clear()
    yield upload
    clear()



def to_s3(s3, local, name):
    s3[1].put(str(local), f"bkt/{name}", recursive=True)
    return f"s3://bkt/{name}"


def summary(problems):
    return [(p.severity, p.kind, p.path) for p in problems]


# ---- the same report, wherever the tree lies -------------------------------------------------

@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("inject", INJECTED, ids=lambda f: f.__name__.strip("_"))
def test_memory_tree_reports_what_the_local_tree_reports(copy, memory, version, inject):
    root = copy(version)
    severity, kind, rel = inject(root, version)
    local = check(root)
    assert (severity, kind, rel) in summary(local)
    url = memory(root, f"t{version}")
    assert check(url) == local


@pytest.mark.parametrize("name", [*VERSIONS, "plate"])
def test_clean_trees_validate_the_same_on_memory(copy, memory, name):
    root = copy(name)
    local = vc.validate(root)
    assert [p for p in local if p.severity == "error"] == []
    assert vc.validate(memory(root, name)) == local


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("inject", INJECTED, ids=lambda f: f.__name__.strip("_"))
def test_broken_trees_validate_the_same_on_memory(copy, memory, version, inject):
    root = copy(version)
    found = inject(root, version)
    local = vc.validate(root)
    assert found in summary(local)
    assert vc.validate(memory(root, "bad")) == local


@pytest.mark.parametrize("inject", [None, *(f for f in INJECTED if f.__name__ in (
    "_stale_temp", "_out_of_range", "_bad_json", "_escaping_path", "_missing_level", "_missing_label"))],
    ids=lambda f: f.__name__.strip("_") if f else "clean")
def test_s3_tree_reports_what_the_local_tree_reports(copy, s3, inject):
    root = copy("0.5")
    name = f"c-{inject.__name__.strip('_') if inject else 'clean'}.ome.zarr"
    if inject is not None:
        inject(root, "0.5")
    url = to_s3(s3, root, name)
    opts, _ = s3
    assert check(url, storage_options=opts) == check(root)
    assert vc.validate(url, storage_options=opts) == vc.validate(root)


def test_s3_plate_validates_as_the_local_one(copy, s3):
    root = copy("plate")
    url = to_s3(s3, root, "plate.ome.zarr")
    assert vc.validate(url, storage_options=s3[0]) == vc.validate(root)


def test_oversized_metadata_is_refused_before_reading_on_both(copy, memory, monkeypatch):
    root = copy("0.5")
    url = memory(root, "big")
    monkeypatch.setattr("voxcore._tree.MAX_METADATA_BYTES", 100)  # level 0's zarr.json is larger
    local = [p for p in check(root) if p.path == "0/zarr.json"]
    assert summary(local) == [("error", "bad-metadata", "0/zarr.json")]
    assert "over the 100-byte metadata limit" in local[0].message
    assert check(url) == check(root)


# ---- the command line ------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["check", "validate"])
def test_cli_on_a_url_prints_the_local_report(copy, memory, s3, command, capsys):
    root = copy("0.5")
    (root / "0" / "notes.txt").write_text("hi")  # a warning: exit 0
    assert main([command, str(root)]) == 0
    want = capsys.readouterr().out.splitlines()
    assert "warning: 0/notes.txt: stray-file: not part of the Zarr array" in want
    url = memory(root, "cli")
    assert main([command, url]) == 0
    got = capsys.readouterr().out.splitlines()
    assert got[:-1] == want[:-1] and got[-1] == want[-1].replace(str(root), url)
    url = to_s3(s3, root, f"cli-{command}.ome.zarr")
    assert main([command, url, "--storage-options", json.dumps(s3[0])]) == 0
    assert capsys.readouterr().out.splitlines()[:-1] == want[:-1]
    shutil.rmtree(root / "1")
    memory(root, "cli-broken")
    assert main([command, "memory://cli-broken"]) == 1
    assert "error: 1: missing-level:" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["check", "validate"])
def test_cli_names_why_a_url_cannot_be_checked(command, capsys):
    assert main([command, "http://127.0.0.1:9/x.ome.zarr"]) == 2
    err = capsys.readouterr().err
    assert f"voxcore {command}: cannot check http://127.0.0.1:9/x.ome.zarr" in err
    assert "http:// has no directory listings" in err


# ---- refusals and missing trees --------------------------------------------------------------

@pytest.mark.parametrize("fn", [check, vc.validate])
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_urls_without_listings_are_unsupported_by_name(fn, scheme):
    with pytest.raises(vc.UnsupportedError, match=rf"{scheme}:// has no directory listings, so the tree's "
                                                  "files cannot be found"):
        fn(f"{scheme}://127.0.0.1:9/x.ome.zarr")


@pytest.mark.parametrize("fn", [check, vc.validate])
def test_storage_options_with_a_local_path_is_an_invalid_argument(fn, saved):
    for path in (saved["0.5"], f"file://{saved['0.5']}"):
        with pytest.raises(vc.InvalidArgumentError, match="storage_options= is for"):
            fn(path, storage_options={"anon": True})


@pytest.mark.parametrize("fn", [check, vc.validate])
def test_a_missing_tree_is_no_zarr_node_as_locally(fn, tmp_path, memory, s3):
    local = summary(fn(tmp_path / "nothing"))
    assert local == [("error", "no-zarr-node", ".")]
    assert summary(fn("memory://nothing")) == local
    for url in ("s3://bkt/nothing", "s3://no-such-bucket/x.ome.zarr"):
        [p] = fn(url, storage_options=s3[0])
        assert (p.severity, p.kind, p.path) == local[0] and p.message == f"not a directory: {url}"


def test_a_file_url_is_not_a_directory(tmp_path, memory):
    fsspec.filesystem("memory").pipe("/n/x.nii.gz", b"\x1f\x8b")
    (tmp_path / "x.nii.gz").write_bytes(b"\x1f\x8b")
    assert summary(check("memory://n/x.nii.gz")) == summary(check(tmp_path / "x.nii.gz")) == [
        ("error", "no-zarr-node", ".")]


def test_a_dot_dot_key_is_reported_not_followed(copy, memory):
    url = memory(copy("0.5"), "dots")
    fsspec.filesystem("memory").pipe("/dots/../evil/zarr.json", b"{}")
    found = [p for p in check(url) if p.kind == "unsafe-key"]
    assert summary(found) == [("error", "unsafe-key", "..")]


# ---- remote failures: a refusal is a problem of the tree, a failing store an error ------------

def _failing_ls(monkeypatch, below, error):
    from fsspec.implementations.memory import MemoryFileSystem

    ls = MemoryFileSystem.ls

    def failing(self, path, detail=True, **kw):
        if path.rstrip("/").endswith(below):
            raise error
        return ls(self, path, detail=detail, **kw)
    monkeypatch.setattr(MemoryFileSystem, "ls", failing)


def test_a_refused_listing_is_reported_as_unreadable(copy, memory, monkeypatch):
    url = memory(copy("0.5"), "refused")
    _failing_ls(monkeypatch, "refused/labels", PermissionError("Access Denied"))
    found = [p for p in check(url) if p.kind == "unreadable"]
    assert summary(found) == [("error", "unreadable", "labels")]
    assert "Access Denied" in found[0].message


def test_a_store_that_keeps_failing_raises_a_store_error_naming_it(copy, memory, monkeypatch, capsys):
    url = memory(copy("0.5"), "flaky")
    _failing_ls(monkeypatch, "flaky/0", ConnectionResetError("reset by peer"))
    with pytest.raises(vc.StoreError, match=r"memory:///flaky: failed to list '0' \(4 attempts\)"):
        check(url)
    assert main(["check", url]) == 2
    assert "reset by peer" in capsys.readouterr().err
