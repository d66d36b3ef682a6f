"""GLRLM maps: every ROI voxel against PyRadiomics 3.0.1 voxel mode; empty directions."""

from __future__ import annotations

import numpy as np
import pytest

from radflow.errors import SettingsError
from radflow.features.voxel import glrlm
from radflow.params.extraction import Settings

from .test_glcm import compare_maps, small_volume
from .texture_maps import CASES, compare, volume


@pytest.mark.oracle
@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_pyradiomics(case):
    name, settings = CASES[case]
    assert compare("glrlm", *volume(name), settings) > 100


# weightingNorm (every norm), force2D along each axis, binCount, the border.
WEIGHTED = {
    "ct_r1_manhattan": ("ct", {"binWidth": 25, "weightingNorm": "manhattan"}, {"kernelRadius": 1}),
    "pet_r2_euclidean_unmasked": (
        "pet",
        {"binCount": 16, "weightingNorm": "euclidean"},
        {"kernelRadius": 2, "maskedKernel": False},
    ),
    "mr_r1_infinity_force2d_x": (
        "mr",
        {"binWidth": 20, "weightingNorm": "infinity", "force2D": True, "force2Ddimension": 2},
        {"kernelRadius": 1},
    ),
    "border_r3_no_weighting": (
        "border",
        {"binWidth": 25, "weightingNorm": "no_weighting"},
        {"kernelRadius": 3},
    ),
    "border_r2_force2d_y": (
        "border",
        {"binWidth": 25, "force2D": True, "force2Ddimension": 1},
        {"kernelRadius": 2, "maskedKernel": False},
    ),
}


@pytest.mark.oracle
@pytest.mark.parametrize("case", sorted(WEIGHTED))
def test_weighting_matches_pyradiomics(case):
    name, settings, voxel = WEIGHTED[case]
    pairs = compare_maps("glrlm", glrlm, *small_volume(name), settings, voxel)
    assert len(pairs) == 16
    for feature, (ours, theirs) in pairs.items():
        assert np.isfinite(theirs).any(), feature
        np.testing.assert_allclose(
            ours, theirs, rtol=1e-6, atol=1e-12, equal_nan=True, err_msg=f"{case}: {feature}"
        )


def test_lone_voxel_kernel_is_nan_and_runs():
    binned = np.zeros((1, 6, 8), np.int32)
    binned[0, 0, 0] = 1  # alone in its kernel: no direction holds two voxels
    binned[0, 4, 3:7] = [2, 2, 2, 3]
    mask = binned > 0
    centres = np.argwhere(mask)
    maps = glrlm.compute_maps(
        binned.astype(float),
        binned,
        mask,
        centres,
        n_levels=3,
        kernel_radius=2,
        settings=Settings(force_2d=True),
        spacing_zyx=(1.0, 1.0, 1.0),
        features=None,
    )
    assert list(maps) == [f.name for f in glrlm._segment.FEATURES]
    assert np.isnan(maps["RunPercentage"][0])
    # centre (0, 4, 5): along x the kernel holds runs 2,2,2 and 3 -> lengths 3 and 1; the other
    # three directions have one voxel per line and are dropped
    k = 3
    assert tuple(centres[k]) == (0, 4, 5)
    np.testing.assert_allclose(maps["ShortRunEmphasis"][k], (1 / 9 + 1) / 2)
    np.testing.assert_allclose(maps["LongRunEmphasis"][k], (9 + 1) / 2)
    np.testing.assert_allclose(maps["RunPercentage"][k], 2 / 4)
    with pytest.raises(SettingsError, match="Foo"):
        glrlm.compute_maps(
            binned.astype(float),
            binned,
            mask,
            centres,
            n_levels=3,
            kernel_radius=1,
            settings=Settings(),
            spacing_zyx=(1.0, 1.0, 1.0),
            features=["Foo"],
        )


def _random_levels(seed, shape=(6, 9, 11), n_levels=4, holes=0.25):
    rng = np.random.default_rng(seed)
    binned = rng.integers(1, n_levels + 1, size=shape).astype(np.int32)
    binned[rng.random(shape) < holes] = 0  # voxels outside the kernel mask
    return binned


@pytest.mark.parametrize(
    "settings",
    [Settings(), Settings(weighting_norm="manhattan"), Settings(force_2d=True)],
    ids=["13-directions", "weighted", "force2d"],
)
def test_a_centre_alone_equals_the_sliding_window_exactly(settings):
    # The window's value at a centre depends on its kernel only, not on the centres computed
    # before it on the line (pieces of a map are stitched and must equal one piece bit for bit).
    binned = _random_levels(3)
    mask = binned > 0
    centres = np.argwhere(mask)
    kwargs = dict(n_levels=4, kernel_radius=2, settings=settings, spacing_zyx=(2.0, 0.7, 0.7))
    whole = glrlm.compute_maps(binned.astype(float), binned, mask, centres, features=None, **kwargs)
    for k in range(0, len(centres), 7):
        alone = glrlm.compute_maps(
            binned.astype(float), binned, mask, centres[k : k + 1], features=None, **kwargs
        )
        for name, values in whole.items():
            np.testing.assert_array_equal(alone[name], values[k : k + 1], err_msg=name)
    # centres in any order: the same values at the same rows
    order = np.random.default_rng(0).permutation(len(centres))
    shuffled = glrlm.compute_maps(
        binned.astype(float), binned, mask, centres[order], features=None, **kwargs
    )
    for name, values in whole.items():
        np.testing.assert_array_equal(shuffled[name], values[order], err_msg=name)


def test_a_line_with_a_gap_keeps_its_direction():
    # Two voxels of level 1 with a voxel outside the mask between them: along x the line holds
    # two voxels, so that direction counts (two runs of length 1); every other direction has one
    # voxel per line and is empty (PyRadiomics' multiElement rule).
    binned = np.array([[[1, 0, 1]]], np.int32)
    mask = binned > 0
    centres = np.argwhere(mask)
    maps = glrlm.compute_maps(
        binned.astype(float),
        binned,
        mask,
        centres,
        n_levels=1,
        kernel_radius=2,
        settings=Settings(),
        spacing_zyx=(1.0, 1.0, 1.0),
        features=None,
    )
    for k in range(2):
        assert maps["ShortRunEmphasis"][k] == 1.0  # both runs of length 1
        assert maps["GrayLevelNonUniformity"][k] == 2.0  # 2^2 / 2 runs
        assert maps["RunPercentage"][k] == 1.0  # 2 runs / 2 voxels
        assert maps["RunEntropy"][k] == pytest.approx(0.0, abs=1e-12)  # one cell, p = 1
