"""HCS plates against iohub (OME-NGFF 0.4: iohub 0.2 is built on zarr-python 2, which writes
Zarr v2 only). iohub cannot be installed beside zarr-python 3, so tests/install.sh puts it in
build/oracles/iohub and these tests run it in a child interpreter with that directory first on
its path: iohub writes a plate that voxcore reads, and reads a plate that voxcore writes, with
every field's values compared."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import voxcore as vc

ORACLE = Path(__file__).resolve().parents[1] / "build" / "oracles" / "iohub"
WELLS = {"A/1": 2, "B/3": 1}  # well -> fields
SHAPE = (2, 2, 4, 24, 32)  # t, c, z, y, x: iohub's positions are 5-D


def _field(k: int) -> np.ndarray:
    return np.random.default_rng(k).integers(0, 4000, SHAPE).astype(np.uint16)


def run_iohub(code: str, tmp_path: Path) -> str:
    assert (ORACLE / "iohub").is_dir(), f"iohub is not installed in {ORACLE}: run tests/install.sh"
    env = dict(os.environ, PYTHONPATH=str(ORACLE), PYTHONNOUSERSITE="1")
    proc = subprocess.run([sys.executable, "-s", "-c", textwrap.dedent(code)], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, f"iohub child failed\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_voxcore_reads_a_plate_iohub_wrote(tmp_path):
    path = tmp_path / "iohub.zarr"
    run_iohub(f"""
        import numpy as np
        from iohub.ngff import open_ome_zarr
        wells = {WELLS!r}
        k = 0
        with open_ome_zarr({str(path)!r}, layout="hcs", mode="w-", channel_names=["DAPI", "GFP"]) as plate:
            for well, n in wells.items():
                r, c = well.split("/")
                for f in range(n):
                    a = np.random.default_rng(k).integers(0, 4000, {SHAPE!r}).astype(np.uint16)
                    plate.create_position(r, c, str(f)).create_image("0", a)
                    k += 1
        """, tmp_path)
    plate = vc.open(path)
    assert isinstance(plate, vc.Plate) and plate.version == "0.4"
    assert sorted(plate.wells) == sorted(WELLS)
    k = 0
    for well, n in WELLS.items():
        assert len(plate[well]) == n
        for f in range(n):
            img = plate[well][f]
            assert img.dims == ("t", "c", "z", "y", "x")
            assert [ch["label"] for ch in img.channels] == ["DAPI", "GFP"]
            np.testing.assert_array_equal(img.read(), _field(k))
            k += 1


def test_iohub_reads_a_plate_voxcore_wrote(tmp_path):
    path = tmp_path / "vx.ome.zarr"
    k = 0
    with vc.create_plate(path, ["A", "B"], ["1", "2", "3"], version="0.4") as w:
        for well, n in WELLS.items():
            for _ in range(n):
                img = vc.from_array(_field(k), dims=("t", "c", "z", "y", "x"))
                w.write_field(well, vc.build_pyramid(img, [{"y": 2, "x": 2}]), chunks=16,
                              channels=[{"label": "DAPI"}, {"label": "GFP"}])
                k += 1
    out = tmp_path / "iohub_read"
    listing = run_iohub(f"""
        import json, numpy as np
        from iohub.ngff import open_ome_zarr
        got = []
        with open_ome_zarr({str(path)!r}, layout="hcs", mode="r") as plate:
            for name, pos in plate.positions():
                np.save({str(out)!r} + "_" + name.replace("/", "_") + ".npy", np.asarray(pos["0"]))
                got.append([name, pos.channel_names, list(pos["0"].shape), len(pos.metadata.multiscales[0].datasets)])
        print(json.dumps(got))
        """, tmp_path)
    got = json.loads(listing.strip().splitlines()[-1])
    names = [g[0] for g in got]
    assert names == ["A/1/0", "A/1/1", "B/3/0"]
    k = 0
    for name, channels, shape, levels in got:
        assert channels == ["DAPI", "GFP"] and tuple(shape) == SHAPE and levels == 2
        np.testing.assert_array_equal(np.load(f"{out}_{name.replace('/', '_')}.npy"), _field(k))
        k += 1
