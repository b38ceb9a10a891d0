"""DataDefinition (the renderer's model): arrays from NIfTI and OME-Zarr, fetch, settings."""

import json

import numpy as np
import pytest
import voxcore as vc

nib = pytest.importorskip("nibabel")


def test_nifti_density_array_and_fetch(tmp_path):
    a = np.random.default_rng(0).integers(0, 1000, (20, 16, 12)).astype(np.int16)  # x, y, z
    aff = np.array([[0, -1.5, 0, 0], [2.0, 0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1]])  # y->-R, x->A
    nib.save(nib.Nifti1Image(a, aff), str(tmp_path / "ct.nii.gz"))
    dd = vc.DataDefinition(tmp_path / "ct.nii.gz")
    arr = dd.arrays[0]
    assert arr.dimension_order == "DXYZ"
    assert arr.shape(0) == (1, 20, 16, 12)
    assert arr.element_sizes == [[1.0, 2.0, 1.5, 1.0]]
    assert arr.permute_axes == [0, 2, 1, 3]  # renderer X (R) is data axis y, Y (A) is data x
    assert arr.flip_axes == [False, True, False, False]  # y points to L: flipped to R
    # permute then flip (in dimension_order terms) gives nibabel's RAS array
    full = dd.fetch(arr, 0, offset=(0, 0, 0, 0), size=arr.shape(0)).transpose(3, 2, 1, 0)  # D, X, Y, Z
    ras = full.transpose(arr.permute_axes)
    ras = np.flip(ras, [i for i, f in enumerate(arr.flip_axes) if f])
    canon = nib.as_closest_canonical(nib.load(str(tmp_path / "ct.nii.gz")))
    np.testing.assert_array_equal(ras[0], np.asanyarray(canon.dataobj))
    brick = dd.fetch(arr, 0, offset=(0, 3, 2, 1), size=(1, 5, 4, 6))
    assert brick.shape == (6, 4, 5, 1) and brick.flags.c_contiguous
    np.testing.assert_array_equal(brick[..., 0], a[3:8, 2:6, 1:7].T)
    with pytest.raises(vc.InvalidArgumentError, match="outside"):
        dd.fetch(0, 0, offset=(0, 18, 0, 0), size=(1, 5, 1, 1))
    with pytest.raises(vc.InvalidArgumentError, match="level out of range"):
        dd.fetch(0, 1, offset=(0, 0, 0, 0), size=(1, 1, 1, 1))


def test_ome_mask_levels_and_numpy_arrays(tmp_path):
    zyx = np.random.default_rng(1).integers(0, 4, (16, 24, 32)).astype(np.uint8)
    pyr = vc.build_pyramid(vc.from_array(zyx, scale=(2.0, 1.0, 0.5)), [2, 4], "mode")
    vc.save(pyr, tmp_path / "seg.ome.zarr", chunks=8)
    dd = vc.DataDefinition()
    arr = dd.append(tmp_path / "seg.ome.zarr", "MXYZ")
    assert len(arr.levels) == 3 and arr.shape(2) == (1, 8, 6, 4)
    assert arr.element_sizes == [[1.0, 0.5, 1.0, 2.0], [1.0, 1.0, 2.0, 4.0], [1.0, 2.0, 4.0, 8.0]]
    np.testing.assert_array_equal(dd.fetch(arr, 1, (0, 2, 1, 0), (1, 8, 4, 3))[..., 0],
                                  pyr.levels[1].data[0:3, 1:5, 2:10])
    direct = vc.Array([zyx[..., None], pyr.levels[1].data[..., None]], "DXYZ", element_sizes=[1, 0.5, 1, 2])
    dd.arrays.append(direct)
    np.testing.assert_array_equal(dd.fetch(direct, 0, (0, 0, 0, 0), (1, 32, 24, 16))[..., 0], zyx)


def test_settings_round_trip_and_bad_input(tmp_path):
    dd = vc.DataDefinition()
    dd.settings = {"Camera": {"eye": [0, 0, -1]}, "TransferFunction": {"ranges": [0.1, 0.9]}}
    dd.save_settings(tmp_path / "s.json")
    other = vc.DataDefinition()
    assert other.load_settings(tmp_path / "s.json") == dd.settings
    (tmp_path / "bad.json").write_text("[1, 2")
    with pytest.raises(vc.InvalidArgumentError, match="not JSON"):
        other.load_settings(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text(json.dumps([1]))
    with pytest.raises(vc.InvalidArgumentError, match="JSON object"):
        other.load_settings(tmp_path / "list.json")
    for order in ("XYZ", "DDXY", "DXYQ", "XDYZ"):
        with pytest.raises(vc.InvalidArgumentError, match="dimension_order"):
            vc.Array([], order)
    with pytest.raises(vc.InvalidArgumentError, match="dimensions"):
        vc.Array([np.zeros((2, 2))], "DXYZ")
    with pytest.raises(vc.InvalidArgumentError, match="permutation"):
        vc.Array([np.zeros((2, 2, 2, 1))], "DXYZ", permute_axes=[0, 1, 1, 3])
    with pytest.raises(vc.InvalidArgumentError, match="element"):
        vc.Array([np.zeros((2, 2, 2, 1))], "DXYZ", element_sizes=[1, 1, 0, 1])


def _slide(path):
    """A small 3-level RGB JPEG pyramid with a pixel size, written by tifffile."""
    tifffile = pytest.importorskip("tifffile")
    y, x = np.mgrid[0:600, 0:900]
    rgb = np.stack([x * 255 // 900, y * 255 // 600, (x ^ y) & 255], -1).astype(np.uint8)
    with tifffile.TiffWriter(path) as tw:
        opts = dict(tile=(128, 128), compression="jpeg", photometric="rgb")
        tw.write(rgb, subifds=2, metadata={"PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5, "axes": "YXS"}, **opts)
        tw.write(rgb[::2, ::2], subfiletype=1, **opts)
        tw.write(rgb[::4, ::4], subfiletype=1, **opts)
    return path


def test_slide_as_cxy_array_with_sizes_per_level_and_tiles(tmp_path):
    path = _slide(tmp_path / "slide.ome.tif")
    img = vc.open(path)
    dd = vc.DataDefinition(path)  # 2-D data: CXY by default, as Clara Viz
    arr = dd.arrays[0]
    assert arr.dimension_order == "CXY"
    assert [arr.shape(k) for k in range(3)] == [(3, 900, 600), (3, 450, 300), (3, 225, 150)]
    assert arr.element_sizes == [[1.0, 0.5, 0.5], [1.0, 1.0, 1.0], [1.0, 2.0, 2.0]]
    # a tile of level 1, in that level's elements (Clara's offsets are per level)
    tile = dd.fetch(arr, 1, offset=(0, 130, 70), size=(3, 64, 32))
    assert tile.shape == (32, 64, 3) and tile.flags.c_contiguous
    np.testing.assert_array_equal(tile, img.read((slice(70, 102), slice(130, 194)), level=1))
    # Clara's renderer-side callback
    got = []
    assert dd.fetch_func("ctx", "CXY", 2, (0, 0, 0), (3, 225, 150), lambda *a: got.append(a))
    ctx, level, offset, size, data = got[0]
    assert (ctx, level, offset, size) == ("ctx", 2, (0, 0, 0), (3, 225, 150))
    np.testing.assert_array_equal(data, img.read(level=2))
    with pytest.raises(vc.InvalidArgumentError, match="dimension_order"):
        dd.append(path, "DXYZ")


def test_array_served_by_a_fetch_func():
    shapes = [(512, 768, 3), (256, 384, 3)]  # (Y, X, C): declared up front, never allocated
    calls = []

    def pattern(level, offset, size):  # a synthetic slide: value = x + y of level 0, per channel
        calls.append((level, offset, size))
        c, x, y = (np.arange(o, o + s) for o, s in zip(offset, size))
        f = 2 ** level
        return ((y[:, None, None] * f + x[None, :, None] * f) % 251 + c[None, None, :]).astype(np.uint8)

    placeholders = [np.lib.stride_tricks.as_strided(np.zeros(1, np.uint8), s, (0, 0, 0)) for s in shapes]
    arr = vc.Array(placeholders, "CXY", element_sizes=[1.0, 0.25, 0.25], fetch_func=pattern)
    assert arr.element_sizes == [[1.0, 0.25, 0.25], [1.0, 0.5, 0.5]]
    dd = vc.DataDefinition()
    dd.arrays.append(arr)
    tile = dd.fetch(arr, 1, offset=(0, 100, 40), size=(3, 16, 8))
    assert calls == [(1, (0, 100, 40), (3, 16, 8))]
    yy, xx = np.mgrid[40:48, 100:116]
    np.testing.assert_array_equal(tile[..., 2], ((yy * 2 + xx * 2) % 251 + 2).astype(np.uint8))
    with pytest.raises(vc.InvalidArgumentError, match="outside"):
        dd.fetch(arr, 1, offset=(0, 380, 0), size=(3, 16, 8))
    bad = vc.Array(placeholders, "CXY", fetch_func=lambda *a: np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(vc.InvalidArgumentError, match="fetch_func returned shape"):
        dd.fetch(bad, 0, (0, 0, 0), (3, 4, 4))
    with pytest.raises(vc.InvalidArgumentError, match="callable"):
        vc.Array(placeholders, "CXY", fetch_func=42)
    with pytest.raises(vc.InvalidArgumentError, match="one list of 3 per level"):
        vc.Array(placeholders, "CXY", element_sizes=[[1, 1, 1]])


@pytest.mark.parametrize("name, value, words", [
    ("permute_axes", [9, 9], "permutation"),
    ("permute_axes", [0, 0, 1, 2], "permutation"),
    ("flip_axes", [True], "entries"),
    ("element_sizes", [0, 1, 1, 1], "finite and > 0"),
    ("element_sizes", [[1, 1, 1, 1], [1, 1, 1, 1]], "one list of 4 per level"),
    ("dimension_order", "CXY", "dimension_order 'CXY' has 3"),
    ("dimension_order", "QQ", "dimension"),
    ("levels", [np.zeros((2, 2))], "has 2 dimensions"),
    ("fetch_func", 3, "callable"),
])
def test_array_assignment_runs_the_constructor_checks(name, value, words):
    arr = vc.Array([np.zeros((4, 5, 6, 1), np.uint8)], "DXYZ", element_sizes=[1, 0.5, 0.5, 2])
    before = (arr.permute_axes, arr.flip_axes, arr.element_sizes, arr.dimension_order, len(arr.levels))
    with pytest.raises(vc.InvalidArgumentError, match=words):
        setattr(arr, name, value)
    assert (arr.permute_axes, arr.flip_axes, arr.element_sizes, arr.dimension_order, len(arr.levels)) == before


def test_array_fields_set_one_by_one_as_clara_does():
    arr = vc.Array()
    arr.dimension_order = "CXY"  # the defaults follow the new order
    arr.levels = [np.zeros((8, 6, 3), np.uint8), np.zeros((4, 3, 3), np.uint8)]
    assert arr.permute_axes == [0, 1, 2] and arr.element_sizes == [[1.0] * 3, [1.0, 2.0, 2.0]]
    arr.permute_axes = [0, 2, 1]
    arr.flip_axes = [False, True, False]
    arr.element_sizes = [[1, 0.25, 0.25], [1, 0.5, 0.5]]
    assert arr.permute_axes == [0, 2, 1] and arr.flip_axes == [False, True, False]
    assert arr.element_sizes[1] == [1.0, 0.5, 0.5]


def _renderer_frame(dd, arr):
    """The array as the renderer sees it: data (D, X, Y, Z), permuted, then flipped."""
    full = dd.fetch(arr, 0, offset=(0,) * 4, size=arr.shape(0)).transpose(3, 2, 1, 0)
    return np.flip(full.transpose(arr.permute_axes), [i for i, f in enumerate(arr.flip_axes) if f])[0]


AFFINES = [np.diag([1.0, 1, 1, 1]), np.diag([-2.0, 1, -1, 1]),
           np.array([[0, -1.5, 0, 0], [2.0, 0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1]]),
           np.array([[0, 0, 1.0, 0], [-1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]])]


@pytest.mark.parametrize("k", range(len(AFFINES)))
@pytest.mark.parametrize("orientation", ["RAS", "LSA", "LPS", "sar"])
def test_append_orientation_is_nibabels_reorientation(tmp_path, k, orientation):
    """append(orientation=) gives the permute/flip whose result is nibabel's reorientation of
    the image to those axis codes (RAS by default; Clara's own frame is LSA)."""
    a = np.random.default_rng(k).integers(0, 1000, (6, 5, 4)).astype(np.int16)
    path = tmp_path / "o.nii.gz"
    nib.save(nib.Nifti1Image(a, AFFINES[k]), str(path))
    dd = vc.DataDefinition(path, orientation=orientation)
    ref = nib.load(str(path))
    o = nib.orientations
    want = ref.as_reoriented(o.ornt_transform(o.io_orientation(ref.affine), o.axcodes2ornt(tuple(orientation.upper()))))
    np.testing.assert_array_equal(_renderer_frame(dd, dd.arrays[0]), np.asanyarray(want.dataobj))
    if orientation == "RAS":
        default = vc.DataDefinition(path).arrays[0]
        assert (default.permute_axes, default.flip_axes) == (dd.arrays[0].permute_axes, dd.arrays[0].flip_axes)


ITK_RIP = """
import json, sys, warnings
warnings.simplefilter("ignore")
import itk
import numpy as np
image_type = itk.Image[itk.SS, 3]
rip = itk.SpatialOrientationEnums().ValidCoordinateOrientations_ITK_COORDINATE_ORIENTATION_RIP
out = []
for path in json.loads(sys.argv[1] if len(sys.argv) > 1 else PATHS):
    io = itk.ImageIOFactory.CreateImageIO(path, itk.CommonEnums.IOFileMode_ReadMode)
    io.SetFileName(path)
    io.ReadImageInformation()
    direction = np.array([io.GetDirection(i) for i in range(3)]).T  # columns: the axes
    f = itk.OrientImageFilter[image_type, image_type].New()
    f.SetGivenCoordinateDirection(itk.Matrix[itk.D, 3, 3](itk.vnl_matrix_from_array(direction)))
    f.SetDesiredCoordinateOrientation(rip)
    out.append([[int(p) for p in f.GetPermuteOrder()], [bool(x) for x in f.GetFlipAxes()]])
print(json.dumps(out))
"""


def test_clara_orientation_is_itks_rip(tmp_path, run_isolated):
    """CLARA_ORIENTATION ("LSA") gives the permute/flip of ITK's OrientImageFilter to RIP, the
    frame Clara Viz's ITK reader asks for, on every axis permutation and flip (ITK runs in a
    child interpreter: its SWIG modules are kept out of this one)."""
    pytest.importorskip("itk")
    assert vc.DataDefinition.CLARA_ORIENTATION == "LSA"
    rng = np.random.default_rng(5)
    paths, affines = [], []
    for case in range(12):
        aff = np.zeros((4, 4))
        aff[3, 3] = 1
        for i, p in enumerate(rng.permutation(3)):
            aff[p, i] = rng.choice([-1.0, 1.0]) * (1 + i)
        path = tmp_path / f"c{case}.nii"
        nib.save(nib.Nifti1Image(np.zeros((4, 5, 6), np.int16), aff), str(path))
        paths.append(str(path))
        affines.append(aff)
    itk_answers = json.loads(run_isolated(ITK_RIP.replace("PATHS", repr(json.dumps(paths))), timeout=240)
                             .strip().splitlines()[-1])
    for path, aff, (permute, flips) in zip(paths, affines, itk_answers):
        arr = vc.DataDefinition(path, orientation=vc.DataDefinition.CLARA_ORIENTATION).arrays[0]
        assert arr.permute_axes == [0] + [p + 1 for p in permute], aff
        assert arr.flip_axes == [False] + flips, aff


def test_append_bad_orientation(tmp_path):
    path = tmp_path / "o.nii"
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2), np.int16), np.eye(4)), str(path))
    for bad in ("RA", "RRS", "XYZ", "RASL", "", 5):
        with pytest.raises(vc.InvalidArgumentError, match="orientation"):
            vc.DataDefinition(path, orientation=bad)
