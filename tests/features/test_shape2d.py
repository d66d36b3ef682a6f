"""Shape (2D): the contour kernel against hand values, the family against PyRadiomics."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from scipy import ndimage

from radflow.errors import SettingsError
from radflow.features import _mesh, shape2d

#: Every feature, deprecated ones too (PyRadiomics' classes compute them when asked).
ALL = [f.name for f in shape2d.FEATURES]

logging.getLogger("radiomics").setLevel(logging.ERROR)


def _slice(plane, axis):
    """A (z, y, x) mask holding ``plane`` as its one slice along ``axis``."""
    return np.expand_dims(plane, axis)


def _planes():
    rng = np.random.default_rng(11)
    blobs = ndimage.gaussian_filter(rng.random((24, 26)), 1.5) > 0.52  # parts and holes
    disc = np.hypot(*np.ogrid[-9:10, -7:8]) <= 6.5
    ring = disc & ~(np.hypot(*np.ogrid[-9:10, -7:8]) <= 3)
    line = np.zeros((5, 9), bool)
    line[2, 1:8] = True
    pixel = np.zeros((3, 3), bool)
    pixel[1, 1] = True
    noise = rng.random((9, 11)) < 0.5  # saddle squares included
    return [("blobs", blobs), ("disc", disc), ("ring", ring), ("line", line), ("pixel", pixel),
            ("noise", noise)]  # fmt: skip


PLANES = _planes()
SPACINGS = [(1.0, 1.0, 1.0), (3.0, 0.7, 0.9)]


def test_square_contour_by_hand():
    """A 2x2 square: an octagon through its edge midpoints, 4 unit sides and 4 half-diagonals."""
    mask = np.zeros((4, 4), np.uint8)
    mask[1:3, 1:3] = 1
    sy, sx = 0.5, 2.0
    perimeter, area = _mesh.contour_perimeter_area(mask, np.array([sy, sx]))
    assert perimeter == pytest.approx(2 * sy + 2 * sx + 4 * np.hypot(sy / 2, sx / 2))
    assert area == pytest.approx(4 * sy * sx - 4 * (sy / 2) * (sx / 2) / 2)
    out = shape2d.compute(mask[None], spacing_zyx=(9.0, sy, sx), features=["MaximumDiameter"])
    # Farthest contour vertices: (0.5, 1) to (2.5, 2) in pixel units, and its mirror images.
    assert out["MaximumDiameter"] == pytest.approx(
        max(np.hypot(2 * sy, 1 * sx), np.hypot(1 * sy, 2 * sx))
    )


def test_orientation_does_not_change_the_area():
    plane = PLANES[0][1]
    sy, sx = 0.8, 1.3
    a = shape2d.compute(plane[None], spacing_zyx=(1.0, sy, sx))
    b = shape2d.compute(plane[::-1, ::-1][None], spacing_zyx=(1.0, sy, sx))
    for name in a:
        assert b[name] == pytest.approx(a[name], rel=1e-12), name
    assert a["MeshSurface"] > 0


def test_uncropped_mask_gives_the_same_result():
    plane = PLANES[1][1]
    small = shape2d.compute(_slice(plane, 1), spacing_zyx=(2.0, 1.5, 0.8), force2d_dimension=1)
    big = np.zeros((plane.shape[0] + 4, 7, plane.shape[1] + 3), np.uint8)
    big[2:-2, 4, 1:-2] = plane
    assert shape2d.compute(big, spacing_zyx=(2.0, 1.5, 0.8), force2d_dimension=1) == pytest.approx(
        small
    )


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (
            {"mask": np.ones((2, 3, 3), bool)},
            ValueError,
            "spans 2 slices along force2d_dimension=0",
        ),
        ({"force2d_dimension": 3}, SettingsError, "force2d_dimension"),
        ({"force2d_dimension": True}, SettingsError, "force2d_dimension"),
        ({"features": ["Perimeter", "Area"]}, SettingsError, "'Area'"),
        ({"mask": np.zeros((1, 3, 3), bool)}, ValueError, "empty"),
        ({"spacing_zyx": (1.0, -1.0, 1.0)}, ValueError, "spacing_zyx"),
    ],
)
def test_bad_input(kwargs, error, match):
    args = {"mask": np.ones((1, 3, 3), bool), "spacing_zyx": (1.0, 1.0, 1.0)} | kwargs
    mask = args.pop("mask")
    with pytest.raises(error, match=match):
        shape2d.compute(mask, **args)


def test_registry():
    assert len(shape2d.FEATURES) == 10
    assert [f.name for f in shape2d.FEATURES if not f.default] == ["SphericalDisproportion"]


# --- parity with PyRadiomics --------------------------------------------------------------


def _pyradiomics_shape2d(mask, spacing_zyx, dimension):
    radiomics_shape2d = pytest.importorskip("radiomics.shape2D")
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(mask.astype(np.int16))
    image.SetSpacing(tuple(float(s) for s in spacing_zyx[::-1]))
    roi = sitk.GetImageFromArray(mask.astype(np.uint8))
    roi.CopyInformation(image)
    extractor = radiomics_shape2d.RadiomicsShape2D(
        image, roi, label=1, force2D=True, force2Ddimension=dimension
    )
    for name in extractor.featureNames:
        extractor.enableFeatureByName(name)
    with np.errstate(divide="ignore", invalid="ignore"):
        return {k: float(v) for k, v in extractor.execute().items()}


@pytest.mark.oracle
@pytest.mark.parametrize("dimension", [0, 1, 2])
@pytest.mark.parametrize("spacing", SPACINGS, ids=["iso", "aniso"])
@pytest.mark.parametrize("case", PLANES, ids=[p[0] for p in PLANES])
def test_parity_with_pyradiomics(case, spacing, dimension):
    mask = _slice(case[1], dimension)
    expected = _pyradiomics_shape2d(mask, spacing, dimension)
    got = shape2d.compute(mask, spacing_zyx=spacing, force2d_dimension=dimension, features=ALL)
    assert set(got) == set(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.oracle
def test_pyradiomics_also_refuses_a_thick_mask():
    with pytest.raises(ValueError):
        _pyradiomics_shape2d(np.ones((2, 3, 3), bool), (1.0, 1.0, 1.0), 0)
