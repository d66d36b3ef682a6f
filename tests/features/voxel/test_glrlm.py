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
