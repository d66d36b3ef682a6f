"""The one geometry helper: boxes, spacings, same-grid checks (radflow._geometry)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from radflow._geometry import (
    SpacingError,
    bounding_box,
    grid_difference,
    grow_box,
    spacing_mm,
    union_box,
)


def _naive_box(mask):
    hits = np.nonzero(mask)
    if hits[0].size == 0:
        return None
    return tuple(slice(int(h.min()), int(h.max()) + 1) for h in hits)


@pytest.mark.parametrize("shape", [(7,), (5, 6), (4, 5, 6), (3, 2, 4, 5)])
def test_bounding_box_matches_a_naive_box_and_find_objects(shape):
    rng = np.random.default_rng(len(shape))
    for density in (0.0, 0.02, 0.3):
        mask = rng.random(shape) < density
        assert bounding_box(mask) == _naive_box(mask)
        if mask.any():
            assert bounding_box(mask) == ndimage.find_objects(mask.astype(np.uint8))[0]
            assert all(type(s.start) is int and type(s.stop) is int for s in bounding_box(mask))


def test_bounding_box_takes_any_nonzero_value():
    labels = np.zeros((4, 4, 4), dtype=np.int16)
    labels[1, 2, 3] = -2
    labels[2, 1, 1] = 7
    assert bounding_box(labels) == (slice(1, 3), slice(1, 3), slice(1, 4))
    assert bounding_box(np.zeros((0, 3))) is None


def test_grow_box_clips_to_the_array():
    box = (slice(2, 5), slice(0, 3), slice(4, 6))
    assert grow_box(box, (1, 2, 3), (10, 4, 7)) == (slice(1, 6), slice(0, 4), slice(1, 7))
    assert grow_box(box, 0, (10, 4, 7)) == box
    assert grow_box(box, np.array([1, 1, 1]), (10, 4, 7)) == (slice(1, 6), slice(0, 4), slice(3, 7))
    with pytest.raises(ValueError):
        grow_box(box, (1, 1), (10, 4, 7))


def test_union_box():
    assert union_box([]) is None
    boxes = [(slice(1, 3), slice(4, 5)), (slice(2, 6), slice(0, 2))]
    assert union_box(boxes) == (slice(1, 6), slice(0, 5))


@pytest.mark.parametrize(
    "spacing",
    [
        (1, 2, 3),
        [0.5, 0.5, 2.0],
        np.array([0.7, 0.7, 3.0]),
        (np.float32(1.5), np.int64(2), Fraction(1, 2)),
    ],
)
def test_spacing_mm_accepts_positive_finite_numbers(spacing):
    out = spacing_mm(spacing)
    assert out == tuple(float(s) for s in spacing)
    assert all(type(s) is float for s in out)


@pytest.mark.parametrize(
    ("spacing", "reason"),
    [
        ((1, 1), "length"),
        ((1, 1, 1, 1), "length"),
        ("abc", "length"),
        (b"abc", "length"),
        (3.0, "length"),
        ({"z": 1, "y": 1, "x": 1}, "length"),
        (np.ones((1, 3)), "length"),
        ((1, 0, 1), "value"),
        ((1, -1, 1), "value"),
        ((1, math.nan, 1), "value"),
        ((1, math.inf, 1), "value"),
        ((1, True, 1), "value"),
        ((1, "1", 1), "value"),
        ((1, None, 1), "value"),
    ],
)
def test_spacing_mm_refuses(spacing, reason):
    with pytest.raises(SpacingError) as caught:
        spacing_mm(spacing)
    assert caught.value.reason == reason
    assert isinstance(caught.value, ValueError)


def test_spacing_mm_options():
    assert spacing_mm((0, 1.5), ndim=2, allow_zero=True) == (0.0, 1.5)
    assert spacing_mm((None, 2, None), allow_none=True) == (None, 2.0, None)
    with pytest.raises(SpacingError, match=">= 0"):
        spacing_mm((-1, 1), ndim=2, allow_zero=True)
    with pytest.raises(SpacingError) as caught:
        spacing_mm((1, 2, -3))
    assert caught.value.value == -3


def _image(size=(4, 5, 6), spacing=(1.0, 1.0, 2.0), origin=(0.0, 0.0, 0.0)):
    image = sitk.Image(size, sitk.sitkUInt8)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    return image


def test_grid_difference_same_grid_and_order():
    tolerances = {"origin": 1e-6, "spacing": 1e-6, "direction": 1e-6}
    assert grid_difference(_image(), _image(), tolerances) is None
    both = _image(spacing=(1.0, 1.0, 2.5), origin=(0.0, 3.0, 0.0))
    assert grid_difference(_image(), both, tolerances).what == "origin"
    assert grid_difference(_image(), both, {"spacing": 1e-6, "origin": 1e-6}).what == "spacing"
    assert grid_difference(_image(), both, {"direction": 1e-6}) is None  # only what is named


def test_grid_difference_reports_values_and_tolerance():
    found = grid_difference(_image(), _image(origin=(0.0, 0.0, 0.25)), {"origin": 0.1})
    assert found.what == "origin"
    assert found.first == (0.0, 0.0, 0.0) and found.second == (0.0, 0.0, 0.25)
    assert found.difference == pytest.approx(0.25) and found.tolerance == 0.1
    assert grid_difference(_image(), _image(origin=(0.0, 0.0, 0.25)), {"origin": 0.3}) is None


def test_grid_difference_size_and_dimension_first():
    found = grid_difference(_image(), _image(size=(4, 5, 7)), {})
    assert found.what == "size" and found.first == (4, 5, 6) and found.second == (4, 5, 7)
    assert math.isnan(found.difference)
    flat = sitk.Image((4, 5), sitk.sitkUInt8)
    assert grid_difference(_image(), flat, {"origin": 1.0}).what == "dimension"


def test_grid_difference_relative():
    far = _image(origin=(1000.0, 0.0, 0.0))
    near = _image(origin=(1000.0005, 0.0, 0.0))
    assert grid_difference(far, near, {"origin": 1e-6}).what == "origin"
    assert grid_difference(far, near, {"origin": 1e-6}, relative=True) is None
