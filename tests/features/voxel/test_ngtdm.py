"""NGTDM maps: every ROI voxel against PyRadiomics 3.0.1 voxel mode; hand values; input checks."""

from __future__ import annotations

import numpy as np
import pytest

from radflow.errors import SettingsError
from radflow.features.voxel import ngtdm
from radflow.params.extraction import Settings

from .texture_maps import CASES, compare, volume


@pytest.mark.oracle
@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_pyradiomics(case):
    name, settings = CASES[case]
    assert compare("ngtdm", *volume(name), settings) > 100


@pytest.mark.oracle
@pytest.mark.parametrize(
    "settings",
    [
        {"kernelRadius": 2, "binWidth": 25, "distances": [1, 2]},
        {"kernelRadius": 3, "binWidth": 25, "distances": [2], "maskedKernel": False},
    ],
)
def test_distances(settings):
    compare("ngtdm", *volume("ct"), settings)


@pytest.mark.oracle
@pytest.mark.parametrize(
    "settings",
    [
        {"kernelRadius": 2, "binWidth": 0.5, "force2D": True},
        {"kernelRadius": 3, "binWidth": 0.5, "force2D": True, "force2Ddimension": 2},
        {"kernelRadius": 2, "binWidth": 0.5, "force2D": True, "force2Ddimension": 1},
    ],
    ids=["axial", "x-fixed", "y-fixed"],
)
def test_force2d_sliding_kernels(settings):
    # kernelRadius >= 2 with distance 1 takes the sliding path; x-fixed: boxes one plane wide
    assert compare("ngtdm", *volume("pet"), settings) > 100


def test_a_centre_alone_equals_the_sliding_window_exactly():
    # A value depends on its kernel only, not on the window's path (stitched map pieces must
    # equal one piece bit for bit); centres in any order give the same rows.
    rng = np.random.default_rng(7)
    binned = rng.integers(1, 6, size=(5, 8, 13)).astype(np.int32)
    binned[rng.random(binned.shape) < 0.3] = 0
    mask = binned > 0
    centres = np.argwhere(mask)
    kwargs = dict(
        n_levels=5, kernel_radius=2, settings=Settings(), spacing_zyx=(1, 1, 1), features=None
    )
    whole = ngtdm.compute_maps(binned.astype(float), binned, mask, centres, **kwargs)
    for k in range(0, len(centres), 6):
        alone = ngtdm.compute_maps(binned.astype(float), binned, mask, centres[k : k + 1], **kwargs)
        for name, values in whole.items():
            np.testing.assert_array_equal(alone[name], values[k : k + 1], err_msg=name)
    order = rng.permutation(len(centres))
    shuffled = ngtdm.compute_maps(binned.astype(float), binned, mask, centres[order], **kwargs)
    for name, values in whole.items():
        np.testing.assert_array_equal(shuffled[name], values[order], err_msg=name)


def test_hand_values():
    binned = np.zeros((1, 1, 6), np.int32)
    binned[0, 0] = [3, 3, 1, 2, 2, 2]
    maps = ngtdm.compute_maps(
        binned.astype(float), binned, binned > 0, np.array([[0, 0, 0], [0, 0, 4]]), n_levels=3,
        kernel_radius=1, settings=Settings(), spacing_zyx=(1, 1, 1), features=None,
    )  # fmt: skip
    # Kernel x 0..1: two voxels of level 3, each the other's only neighbour: s = 0 (flat).
    assert maps["Coarseness"][0] == 1e6
    assert maps["Contrast"][0] == maps["Busyness"][0] == maps["Strength"][0] == 0
    # Kernel x 3..5, all level 2: flat as well.
    assert maps["Coarseness"][1] == 1e6
    centre = ngtdm.compute_maps(
        binned.astype(float), binned, binned > 0, np.array([[0, 0, 2]]), n_levels=3,
        kernel_radius=1, settings=Settings(), spacing_zyx=(1, 1, 1), features=["Coarseness"],
    )  # fmt: skip
    # Kernel x 1..3 -> levels 3, 1, 2: s_3 = |3 - 1| = 2, s_1 = |1 - 2.5| = 1.5, s_2 = 1;
    # p = 1/3 each: coarseness = 1 / (4.5 / 3).
    np.testing.assert_allclose(centre["Coarseness"], [3 / 4.5])


def test_unknown_feature():
    binned = np.ones((1, 1, 3), np.int32)
    with pytest.raises(SettingsError, match="unknown ngtdm"):
        ngtdm.compute_maps(
            binned, binned, binned > 0, np.array([[0, 0, 1]]), n_levels=1, kernel_radius=1,
            settings=Settings(), spacing_zyx=(1, 1, 1), features=["Coarse"],
        )  # fmt: skip
