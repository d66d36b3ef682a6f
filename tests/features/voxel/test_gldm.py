"""GLDM maps: every ROI voxel against PyRadiomics 3.0.1 voxel mode; hand values; input checks."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from radflow.errors import SettingsError
from radflow.features.voxel import gldm
from radflow.params.extraction import Settings

from .texture_maps import CASES, compare, volume


@pytest.mark.oracle
@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_pyradiomics(case):
    name, settings = CASES[case]
    assert compare("gldm", *volume(name), settings) > 100


@pytest.mark.oracle
@pytest.mark.parametrize(
    "settings",
    [
        {"kernelRadius": 2, "binWidth": 25, "distances": [1, 2], "gldm_a": 1},
        {"kernelRadius": 3, "binWidth": 25, "distances": [2], "maskedKernel": False},
    ],
)
def test_distances_and_alpha(settings):
    compare("gldm", *volume("ct"), settings)


@pytest.mark.oracle
@pytest.mark.parametrize(
    "settings",
    [
        {"kernelRadius": 2, "binWidth": 0.5, "force2D": True, "gldm_a": 1},
        {"kernelRadius": 3, "binWidth": 0.5, "force2D": True, "force2Ddimension": 2},
        {"kernelRadius": 2, "binWidth": 0.5, "force2D": True, "force2Ddimension": 1},
    ],
    ids=["axial-alpha", "x-fixed", "y-fixed"],
)
def test_force2d_sliding_kernels(settings):
    # kernelRadius >= 2 with distance 1 takes the sliding path; x-fixed: boxes one plane wide
    assert compare("gldm", *volume("pet"), settings) > 100


def test_a_centre_alone_equals_the_sliding_window_exactly():
    # A value depends on its kernel only, not on the window's path (stitched map pieces must
    # equal one piece bit for bit); centres in any order give the same rows.
    rng = np.random.default_rng(11)
    binned = rng.integers(1, 5, size=(5, 8, 13)).astype(np.int32)
    binned[rng.random(binned.shape) < 0.3] = 0
    mask = binned > 0
    centres = np.argwhere(mask)
    kwargs = dict(
        n_levels=4, kernel_radius=2, settings=Settings(), spacing_zyx=(1, 1, 1), features=None
    )
    whole = gldm.compute_maps(binned.astype(float), binned, mask, centres, **kwargs)
    for k in range(0, len(centres), 6):
        alone = gldm.compute_maps(binned.astype(float), binned, mask, centres[k : k + 1], **kwargs)
        for name, values in whole.items():
            np.testing.assert_array_equal(alone[name], values[k : k + 1], err_msg=name)
    order = rng.permutation(len(centres))
    shuffled = gldm.compute_maps(binned.astype(float), binned, mask, centres[order], **kwargs)
    for name, values in whole.items():
        np.testing.assert_array_equal(shuffled[name], values[order], err_msg=name)


def _line():
    binned = np.zeros((1, 1, 6), np.int32)
    binned[0, 0] = [1, 1, 2, 4, 4, 4]
    return binned, binned > 0


def test_dependence_cut_at_the_kernel_box():
    binned, mask = _line()
    maps = gldm.compute_maps(
        binned.astype(float), binned, mask, np.array([[0, 0, 1], [0, 0, 4]]), n_levels=4,
        kernel_radius=1, settings=Settings(), spacing_zyx=(1, 1, 1),
        features=["LargeDependenceEmphasis", "GrayLevelNonUniformityNormalized",
                  "DependencePercentage"],
    )  # fmt: skip
    # Kernel x 0..2 -> levels 1, 1, 2: dependence sizes 2, 2, 1. Kernel x 3..5 -> 4, 4, 4:
    # sizes 2, 3, 2 (the neighbour at x = 2 lies outside the kernel).
    np.testing.assert_allclose(maps["LargeDependenceEmphasis"], [9 / 3, 17 / 3])
    np.testing.assert_allclose(maps["GrayLevelNonUniformityNormalized"], [5 / 9, 1])
    np.testing.assert_array_equal(maps["DependencePercentage"], [1, 1])


def test_bad_alpha():
    # Settings refuses it too; compute_maps checks what it is given (any settings object).
    binned, mask = _line()
    with pytest.raises(SettingsError, match="gldm_a"):
        gldm.compute_maps(
            binned, binned, mask, np.array([[0, 0, 1]]), n_levels=4, kernel_radius=1,
            settings=SimpleNamespace(gldm_a=-1, distances=(1,), force_2d=False,
                                     force_2d_dimension=0),
            spacing_zyx=(1, 1, 1),
        )  # fmt: skip
