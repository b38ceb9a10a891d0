"""What a zarr-python store's own failures become: a missing key is missing (FileNotFoundError
naming the store and path for metadata, the fill value for a chunk, as zarr reads it), any other
failure a StoreError naming the store and the key; PermissionError stays itself."""

import numpy as np
import pytest
import voxcore as vc

zarr = pytest.importorskip("zarr")
from zarr.storage import MemoryStore  # noqa: E402


class Failing(MemoryStore):
    """A store whose gets of chosen keys raise the given exception."""

    def __init__(self, exc, match="c/", **kw):
        super().__init__(**kw)
        self.exc, self.match, self.armed = exc, match, False

    async def get(self, key, prototype, byte_range=None):
        if self.armed and self.match in key:
            raise self.exc
        return await super().get(key, prototype, byte_range)

    async def set(self, key, value):
        if self.armed and self.match in key:
            raise self.exc
        return await super().set(key, value)


def _array(store):
    z = zarr.create_array(store, name="arr", shape=(4, 6), dtype="u2", chunks=(2, 3), fill_value=7)
    z[:] = np.arange(24, dtype="u2").reshape(4, 6)
    if isinstance(store, Failing):
        store.armed = True
    return z


@pytest.mark.parametrize("path", [None, "x", "a/b"])
def test_nothing_there_is_file_not_found_naming_the_path(path):
    with pytest.raises(FileNotFoundError, match=f"MemoryStore:{path or ''}: no Zarr array or group"):
        vc.open(MemoryStore(), path=path)


def test_a_mapping_style_key_error_is_a_missing_key():
    store = Failing(KeyError("gone"), match="arr/zarr.json")
    _array(store)
    with pytest.raises(FileNotFoundError, match="MemoryStore|Failing"):
        vc.open(store, path="arr")
    store = Failing(KeyError("gone"), match="c/0/")
    _array(store)
    got = vc.open(store, path="arr").read()
    assert (got[:2] == 7).all() and (got[2:] == np.arange(12, 24).reshape(2, 6)).all()  # chunk row 0: fill


@pytest.mark.parametrize("exc", [RuntimeError("connection reset"), ValueError("bad frame"),
                                 OSError(5, "I/O error"), TimeoutError("slow")])
def test_other_failures_are_store_errors_naming_the_key(exc):
    store = Failing(exc)
    _array(store)
    img = vc.open(store, path="arr")
    with pytest.raises(vc.StoreError, match=r"Failing: failed to read 'arr/c/\d/\d'") as info:
        img.read()
    assert isinstance(info.value, OSError) and info.value.__cause__ is exc


def test_permission_errors_stay_permission_errors():
    store = Failing(PermissionError(13, "denied"))
    _array(store)
    with pytest.raises(PermissionError, match="denied"):
        vc.open(store, path="arr").read()


def test_a_failed_store_write_names_the_key():
    store = Failing(RuntimeError("quota"), match="w/c/")
    arr = vc.create_array(store, (4, 6), "u2", chunks=(2, 3), path="w")
    store.armed = True
    with pytest.raises(vc.StoreError, match=r"failed to write 'w/c/\d/\d': RuntimeError: quota"):
        arr.write(np.ones((4, 6), np.uint16))
