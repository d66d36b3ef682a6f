"""Neighbour offsets and ROI preparation shared by the texture families."""

from __future__ import annotations

import numpy as np
import pytest

from radflow.errors import InputError, SettingsError
from radflow.features._directions import offsets, roi_levels


def test_counts_and_symmetry():
    # (2d+1)^3 - 1 neighbours at infinity norm <= d; half of them one-way.
    assert offsets([1]).shape == (13, 3)
    assert offsets([1], bidirectional=True).shape == (26, 3)
    assert offsets([2]).shape == ((5**3 - 3**3) // 2, 3)
    assert offsets([1, 2]).shape == ((5**3 - 1) // 2, 3)
    assert offsets([1], force2d=True).shape == (4, 3)
    both = offsets([1, 2], bidirectional=True)
    assert {tuple(r) for r in both} == {tuple(-r) for r in both}
    one = offsets([1, 2])
    assert not ({tuple(r) for r in one} & {tuple(-r) for r in one})


@pytest.mark.parametrize("dim", [0, 1, 2])
def test_force2d_keeps_the_plane(dim):
    off = offsets([1, 2], force2d=True, force2d_dimension=dim)
    assert len(off) == (5**2 - 1) // 2
    assert np.all(off[:, dim] == 0)


def test_order_repeats_and_copies():
    np.testing.assert_array_equal(offsets([2, 1, 2]), offsets([1, 2]))
    a = offsets([1])
    a[0] = 99  # a private copy: the cache is not touched
    assert offsets([1])[0].tolist() == [1, 1, 1]


@pytest.mark.oracle
@pytest.mark.parametrize("size", [(5, 6, 7), (1, 4, 4), (2, 3, 9), (3, 1, 1)])
@pytest.mark.parametrize("distances", [[1], [2], [1, 2], [3, 1]])
def test_matches_pyradiomics_generate_angles(size, distances):
    cmatrices = pytest.importorskip("radiomics").cMatrices
    for bidirectional in (False, True):
        for force2d in (False, True):
            for dim in (0, 1, 2):
                try:
                    ref = _pyradiomics_angles(
                        cmatrices, size, distances, bidirectional, force2d, dim
                    )
                except RuntimeError:  # PyRadiomics: no angle fits in this size
                    ref = np.zeros((0, 3), dtype=np.int64)
                got = offsets(distances, force2d, dim, bidirectional, size_zyx=size)
                np.testing.assert_array_equal(got, ref)
                assert got.dtype == np.int64


def _pyradiomics_angles(cmatrices, size, distances, bidirectional, force2d, dim):
    return cmatrices.generate_angles(
        np.asarray(size, dtype=np.int32), np.asarray(distances), bidirectional, force2d, dim
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"distances": []},
        {"distances": [0]},
        {"distances": [1.5]},
        {"distances": 1},
        {"distances": [True]},
        {"force2d_dimension": 3},
        {"size_zyx": (0, 2, 2)},
    ],
)
def test_bad_settings(kwargs):
    with pytest.raises(SettingsError):
        offsets(**kwargs)


def test_roi_levels_crops_and_compacts():
    binned = np.zeros((4, 5, 6), dtype=np.int16)
    mask = np.zeros(binned.shape, dtype=np.uint8)
    binned[1, 2, 1:4] = [7, 2, 7]
    binned[2, 3, 3] = 9
    binned[0, 0, 0] = -5  # outside the ROI: ignored
    mask[1, 2, 1:4] = 1
    mask[2, 3, 3] = 1
    index, levels = roi_levels(binned, mask)
    assert levels.tolist() == [2, 7, 9]
    assert index.dtype == np.int32 and index.flags.c_contiguous
    np.testing.assert_array_equal(index, [[[1, 0, 1], [-1, -1, -1]], [[-1, -1, -1], [-1, -1, 2]]])


def test_roi_levels_large_levels_use_unique():
    binned = np.array([[[1, 10**9]]], dtype=np.int64)
    index, levels = roi_levels(binned, np.ones_like(binned, dtype=bool))
    assert levels.tolist() == [1, 10**9] and index.tolist() == [[[0, 1]]]


@pytest.mark.parametrize(
    "binned, mask, name",
    [
        (np.ones((3, 3)), np.ones((3, 3), bool), "binned"),
        (np.ones((2, 3, 3), int), np.ones((2, 3, 4), bool), "mask"),
        (np.ones((2, 3, 3)), np.ones((2, 3, 3), bool), "binned"),  # float: not discretised
        (np.ones((2, 3, 3), int), np.full((2, 3, 3), 2), "mask"),  # a label map
        (np.ones((2, 3, 3), int), np.zeros((2, 3, 3), bool), "mask"),  # empty ROI
        (np.zeros((2, 3, 3), int), np.ones((2, 3, 3), bool), "binned"),  # level 0
    ],
)
def test_roi_levels_bad_input(binned, mask, name):
    with pytest.raises(InputError) as err:
        roi_levels(binned, mask)
    assert err.value.source == name
