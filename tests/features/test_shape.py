"""Shape (3D): the mesh kernels against plain NumPy, the family against PyRadiomics."""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pytest
from scipy import ndimage

from radflow.errors import SettingsError
from radflow.features import _mesh, shape

#: Every feature, deprecated ones too (PyRadiomics' classes compute them when asked).
ALL = [f.name for f in shape.FEATURES]

logging.getLogger("radiomics").setLevel(logging.ERROR)


def _blobs(shape_zyx, seed, sigma=1.5, level=0.55):
    """Smoothed-noise ROI: several parts, holes, concave borders."""
    rng = np.random.default_rng(seed)
    return ndimage.gaussian_filter(rng.random(shape_zyx), sigma) > level


def _ellipsoid(shape_zyx, radii_zyx):
    grid = np.indices(shape_zyx, dtype=float)
    centre = (np.array(shape_zyx, dtype=float) - 1) / 2
    r2 = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii_zyx))
    return r2 <= 1


def _masks():
    """(id, mask, spacing_zyx): the structured cases every parity test runs on."""
    line = np.zeros((5, 6, 7), bool)
    line[2, 3, 1:6] = True
    plate = np.zeros((5, 9, 9), bool)
    plate[2, 2:7, 1:8] = True
    plate[2, 4, 4] = False  # a hole
    voxel = np.zeros((3, 3, 3), bool)
    voxel[1, 1, 1] = True
    border = np.zeros((6, 7, 8), bool)
    border[:, :3, :] = True  # touches the array faces: the padding matters
    noise = np.random.default_rng(7).random((7, 8, 9)) < 0.5  # every cube configuration
    return [
        ("blobs", _blobs((20, 24, 24), 0), (1.0, 1.0, 1.0)),
        ("blobs_aniso", _blobs((20, 24, 24), 1, level=0.5), (3.0, 0.7, 0.9)),
        ("ellipsoid", _ellipsoid((15, 21, 25), (6.5, 9.2, 11.3)), (2.5, 0.8, 0.8)),
        ("noise", noise, (1.3, 1.1, 0.6)),
        ("border", border, (1.0, 2.0, 0.5)),
        ("one_slice", plate, (5.0, 0.9, 0.9)),
        ("line", line, (2.0, 1.0, 1.0)),
        ("one_voxel", voxel, (1.0, 1.0, 1.0)),
    ]


CASES = _masks()
IDS = [case[0] for case in CASES]


# --- kernels against obvious NumPy versions -------------------------------------------------


def _naive_vertices(mask):
    """Midpoints (doubled grid) of every edge whose two voxels differ, by array shifts."""
    out = []
    for axis in range(3):
        low = tuple(slice(None, -1) if k == axis else slice(None) for k in range(3))
        high = tuple(slice(1, None) if k == axis else slice(None) for k in range(3))
        idx = np.argwhere(mask[low] != mask[high]) * 2
        idx[:, axis] += 1
        out.append(idx)
    return np.concatenate(out)


def _naive_diameters(vertices, spacing):
    xyz = (0.5 * vertices) * spacing
    d2 = ((xyz[:, None, :] - xyz[None, :, :]) ** 2).sum(-1)
    same = [vertices[:, None, k] == vertices[None, :, k] for k in range(3)]
    return np.sqrt([d2[same[0]].max(), d2[same[1]].max(), d2[same[2]].max(), d2.max()])


def _naive_area_volume(mask, spacing):
    """Area and volume of a mesh built triangle by triangle from the same table, in NumPy."""
    area = volume = 0.0
    for iz, iy, ix in itertools.product(*(range(n - 1) for n in mask.shape)):
        corners = [mask[iz + c[0], iy + c[1], ix + c[2]] for c in _mesh._CUBE_CORNERS]
        index = sum(1 << k for k, inside in enumerate(corners) if inside)
        sign = 1.0
        if index >= 128:
            index, sign = 255 - index, -1.0
        edges = [e for e in _mesh._CUBE_TRIANGLES[index] if e >= 0]
        for tri in np.reshape(edges, (-1, 3)):
            a, b, c = (np.array([iz, iy, ix]) + _mesh._CUBE_EDGE_MIDPOINTS[tri]) * spacing
            volume += sign * np.dot(np.cross(a, b), c) / 6
            area += 0.5 * np.linalg.norm(np.cross(b - a, c - a))
    return area, volume


def test_vertices_and_diameters_match_brute_force():
    """Hull-pruned diameters equal the all-pairs maxima exactly, on convex, concave and flat
    ROIs.
    """
    rng = np.random.default_rng(3)
    masks = [rng.random((4, 5, 6)) < p for p in (0.3, 0.5, 0.7)]
    masks += [_blobs((9, 10, 12), seed, sigma=1.2, level=0.5) for seed in (1, 2)]
    flat = {name: mask for name, mask, _ in CASES if name in ("one_slice", "line")}
    masks += [_ellipsoid((7, 9, 11), (3.2, 4.1, 5.3)), *flat.values()]
    for mask in masks:
        padded = np.pad(mask, 1).view(np.uint8)
        spacing = rng.uniform(0.5, 2.0, 3)
        vertices = _mesh.edge_vertices(padded)
        naive = _naive_vertices(padded.astype(bool))
        assert sorted(map(tuple, vertices)) == sorted(map(tuple, naive))
        np.testing.assert_array_equal(
            _mesh.mesh_diameters(vertices, spacing), _naive_diameters(naive, spacing)
        )


def test_area_volume_match_numpy_mesh():
    rng = np.random.default_rng(4)
    mask = np.pad(rng.random((3, 4, 4)) < 0.5, 1).view(np.uint8)
    spacing = np.array([1.5, 0.8, 1.1])
    np.testing.assert_allclose(
        _mesh.mesh_area_volume(mask, spacing), _naive_area_volume(mask, spacing), rtol=1e-12
    )


def test_triangle_table_is_closed_and_consistent():
    """Every cube's triangles use only edges whose corners differ (a valid MC table)."""
    edge_corners = [(1, 0), (2, 1), (3, 2), (3, 0), (5, 4), (6, 5), (7, 6), (7, 4),
                    (4, 0), (5, 1), (6, 2), (7, 3)]  # fmt: skip
    for index, row in enumerate(_mesh._CUBE_TRIANGLES):
        used = {e for e in row if e >= 0}
        cut = {
            e
            for e, (p, q) in enumerate(edge_corners)
            if bool(index >> p & 1) != bool(index >> q & 1)
        }
        assert used == cut, index


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (2.0, 0.5, 0.7)])
def test_cube_of_known_geometry(spacing):
    """A 2x2x2 block: vertices at its face centres' grid, hand-computed values."""
    mask = np.zeros((4, 4, 4), bool)
    mask[1:3, 1:3, 1:3] = True
    z, y, x = spacing
    out = shape.compute(mask, spacing_zyx=spacing)
    assert out["VoxelVolume"] == pytest.approx(8 * x * y * z)
    # Vertices: one coordinate at 0.5 or 2.5 (a face of the block), the other two at 1 or 2.
    vertices = np.array([np.roll([f, u, v], k) for k in range(3) for f in (0.5, 2.5)
                         for u in (1, 2) for v in (1, 2)]) * spacing  # fmt: skip
    farthest = np.sqrt(((vertices[:, None] - vertices[None]) ** 2).sum(-1)).max()
    assert out["Maximum3DDiameter"] == pytest.approx(farthest)
    # PCA of the 8 voxel centres: variance (spacing/2)^2 per axis.
    assert sorted([out["LeastAxisLength"], out["MinorAxisLength"], out["MajorAxisLength"]]) == (
        pytest.approx(sorted(4 * np.sqrt(np.square(spacing) / 4)))
    )


def test_cropping_and_dtype_do_not_matter():
    mask = _blobs((16, 18, 18), 5)
    big = np.zeros((30, 40, 50), np.int16)
    big[5:21, 10:28, 20:38] = mask
    a = shape.compute(mask, spacing_zyx=(1.2, 0.8, 0.8))
    b = shape.compute(big, spacing_zyx=(1.2, 0.8, 0.8))
    assert a.keys() == b.keys()
    for name in a:
        assert b[name] == pytest.approx(a[name], rel=1e-12), name


def test_feature_subset_and_registry():
    out = shape.compute(
        _blobs((10, 12, 12), 2), spacing_zyx=(1, 1, 1), features=["Flatness", "MeshVolume"]
    )
    assert list(out) == ["MeshVolume", "Flatness"]
    assert [f.name for f in shape.FEATURES if not f.default] == [
        "Compactness1", "Compactness2", "SphericalDisproportion"]  # fmt: skip
    assert len(shape.FEATURES) == 17


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"features": ["Volume"]}, SettingsError, "'Volume'.*valid: MeshVolume"),
        ({"spacing_zyx": (1.0, 1.0)}, ValueError, "spacing_zyx"),
        ({"spacing_zyx": (1.0, 0.0, 1.0)}, ValueError, "spacing_zyx"),
        ({"mask": np.zeros((3, 3, 3), bool)}, ValueError, "mask is empty"),
        ({"mask": np.ones((3, 3), bool)}, ValueError, "3D"),
        ({"mask": np.ones((3, 3, 3), float)}, TypeError, "bool or integer"),
    ],
)
def test_bad_input(kwargs, error, match):
    args = {"mask": np.ones((3, 3, 3), bool), "spacing_zyx": (1.0, 1.0, 1.0)} | kwargs
    mask = args.pop("mask")
    with pytest.raises(error, match=match):
        shape.compute(mask, **args)


# --- parity with PyRadiomics --------------------------------------------------------------


def _pyradiomics_shape(mask, spacing_zyx):
    radiomics_shape = pytest.importorskip("radiomics.shape")
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(mask.astype(np.int16))
    image.SetSpacing(tuple(float(s) for s in spacing_zyx[::-1]))
    roi = sitk.GetImageFromArray(mask.astype(np.uint8))
    roi.CopyInformation(image)
    extractor = radiomics_shape.RadiomicsShape(image, roi, label=1)
    for name in extractor.featureNames:  # deprecated ones too
        extractor.enableFeatureByName(name)
    with np.errstate(divide="ignore", invalid="ignore"):
        return {k: float(v) for k, v in extractor.execute().items()}


@pytest.mark.oracle
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_parity_with_pyradiomics(case):
    _, mask, spacing = case
    expected = _pyradiomics_shape(mask, spacing)
    got = shape.compute(mask, spacing_zyx=spacing, features=ALL)
    assert set(got) == set(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-9, atol=1e-12, err_msg=name)


#: Straight lines of voxels (one voxel thick along two axes, as a small ROI resampled to 3 mm
#: can become): (step in voxels (z, y, x), number of voxels, spacing (z, y, x) mm).
LINES = [
    ((3, 2, 1), 6, (6.5, 0.9375, 0.9375)),
    ((3, 2, 1), 9, (2.5, 0.7, 0.7)),
    ((2, 1, 1), 4, (2.5, 0.7, 0.7)),
    ((2, 1, 1), 6, (3.0, 3.0, 3.0)),
    ((1, 1, 1), 9, (6.5, 0.9375, 0.9375)),
]


@pytest.mark.oracle
@pytest.mark.parametrize(("step", "n", "spacing"), LINES)
def test_line_roi_minor_axes_are_rounding_noise_in_both_tools(step, n, spacing):
    """A line has one nonzero principal moment; the other two are eigen-solver noise.

    Hand-computed: n points spaced by the vector d = step * spacing (mm) have
    lambda_major = |d|^2 (n^2 - 1) / 12 and lambda_minor = lambda_least = 0. Both tools return
    sqrt of rounding noise of size eps * lambda_major for the zero ones (different noise: see
    radflow.features.shape), so they agree to that size, not digit for digit.
    """
    mask = np.zeros([k * (n - 1) + 3 for k in step], bool)
    for i in range(n):
        mask[tuple(1 + k * i for k in step)] = True
    expected = _pyradiomics_shape(mask, spacing)
    got = shape.compute(mask, spacing_zyx=spacing, features=ALL)
    d2 = sum((k * s) ** 2 for k, s in zip(step, spacing))
    major = 4 * np.sqrt(d2 * (n * n - 1) / 12)
    assert got["MajorAxisLength"] == pytest.approx(major, rel=1e-12)
    assert expected["MajorAxisLength"] == pytest.approx(major, rel=1e-12)
    noise = np.sqrt(16 * np.finfo(float).eps)  # sqrt(lambda / lambda_major) of the noise
    for values in (got, expected):
        for name in ("MinorAxisLength", "LeastAxisLength"):
            assert 0 <= values[name] <= noise * major, (name, values[name])
        for name in ("Elongation", "Flatness"):
            assert 0 <= values[name] <= noise, (name, values[name])


# --- IBSI 1 digital phantom ----------------------------------------------------------------


def _ibsi_reference(ibsi_dir, config="dig_phantom"):
    """ibsi_id -> (value, tolerance) of one configuration of the IBSI 1 table."""
    import csv

    table = ibsi_dir / "ibsi1" / "reference" / "ibsi_1_reference_values_long.csv"
    with open(table, newline="", encoding="utf-8") as f:
        return {
            row["ibsi_id"]: (float(row["value"]), float(row["tolerance"] or 0))
            for row in csv.DictReader(f)
            if row["config"] == config and row["value"]
        }


@pytest.mark.shared
def test_ibsi_digital_phantom(ibsi_dir):
    import SimpleITK as sitk

    image = sitk.ReadImage(str(ibsi_dir / "ibsi1" / "digital_phantom" / "mask.nii.gz"))
    mask = sitk.GetArrayFromImage(image)
    out = shape.compute(mask, spacing_zyx=image.GetSpacing()[::-1], features=ALL)
    reference = _ibsi_reference(ibsi_dir)
    # PyRadiomics' PCA divides the covariance by N, the IBSI by N - 1.
    n = np.count_nonzero(mask)
    sample = {"MajorAxisLength", "MinorAxisLength", "LeastAxisLength"}
    checked = 0
    for feature in shape.FEATURES:
        if feature.ibsi_id is None:
            continue
        value, tolerance = reference[feature.ibsi_id]
        got = out[feature.name] * (np.sqrt(n / (n - 1)) if feature.name in sample else 1.0)
        assert got == pytest.approx(value, abs=tolerance), feature.name
        checked += 1
    assert checked == 14
