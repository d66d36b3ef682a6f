"""GLSZM maps: every ROI voxel against PyRadiomics 3.0.1 voxel mode; input checks."""

from __future__ import annotations

import numpy as np
import pytest

from radflow.errors import InputError, SettingsError
from radflow.features.voxel import glszm
from radflow.params.extraction import Settings

from .texture_maps import CASES, compare, volume


@pytest.mark.oracle
@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_pyradiomics(case):
    name, settings = CASES[case]
    assert compare("glszm", *volume(name), settings) > 100


@pytest.mark.oracle
def test_in_plane_zones_along_x():
    compare("glszm", *volume("ct"), {"kernelRadius": 2, "binWidth": 25, "force2D": True,
                                     "force2Ddimension": 2})  # fmt: skip


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
    # kernelRadius >= 2 labels the planes once per line; x-fixed: boxes one plane wide
    assert compare("glszm", *volume("pet"), settings) > 100


def test_a_centre_alone_equals_the_sliding_window_exactly():
    # A value depends on its kernel only, not on the window's path (stitched map pieces must
    # equal one piece bit for bit); centres in any order give the same rows. Three levels
    # make zones that wind through several planes of a kernel.
    rng = np.random.default_rng(13)
    binned = rng.integers(1, 4, size=(6, 8, 14)).astype(np.int32)
    binned[rng.random(binned.shape) < 0.2] = 0
    mask = binned > 0
    centres = np.argwhere(mask)
    kwargs = dict(
        n_levels=3, kernel_radius=2, settings=Settings(), spacing_zyx=(1, 1, 1), features=None
    )
    whole = glszm.compute_maps(binned.astype(float), binned, mask, centres, **kwargs)
    for k in range(0, len(centres), 6):
        alone = glszm.compute_maps(binned.astype(float), binned, mask, centres[k : k + 1], **kwargs)
        for name, values in whole.items():
            np.testing.assert_array_equal(alone[name], values[k : k + 1], err_msg=name)
    order = rng.permutation(len(centres))
    shuffled = glszm.compute_maps(binned.astype(float), binned, mask, centres[order], **kwargs)
    for name, values in whole.items():
        np.testing.assert_array_equal(shuffled[name], values[order], err_msg=name)


def _single_zone_case():
    binned = np.zeros((3, 4, 5), np.int32)
    binned[1, 1:3, 1:4] = 2  # one zone of 6 voxels
    binned[1, 1, 1] = 1  # ... now a zone of 5 and a single voxel
    return binned, binned > 0


def test_zones_cut_at_the_kernel_box():
    binned, mask = _single_zone_case()
    centres = np.array([[1, 1, 1], [1, 2, 3]])
    maps = glszm.compute_maps(
        binned.astype(float), binned, mask, centres, n_levels=2, kernel_radius=1,
        settings=Settings(), spacing_zyx=(1, 1, 1),
        features=["ZonePercentage", "LargeAreaEmphasis"],
    )  # fmt: skip
    # Kernel of (1, 1, 1): x 0..2, y 0..2 -> level 1 at (1, 1) and level 2 at (1, 2), (2, 1),
    # (2, 2): 2 zones of 1 and 3 voxels. Kernel of (1, 2, 3): x 2..4, y 1..3 -> level 2 at
    # (1, 2), (1, 3), (2, 2), (2, 3): one zone of 4.
    np.testing.assert_allclose(maps["ZonePercentage"], [2 / 4, 1 / 4])
    np.testing.assert_allclose(maps["LargeAreaEmphasis"], [(1 + 9) / 2, 16])


def test_bad_input():
    binned, mask = _single_zone_case()
    common = dict(n_levels=2, settings=Settings(), spacing_zyx=(1, 1, 1))
    centre = np.array([[1, 1, 1]])
    with pytest.raises(SettingsError, match="kernelRadius"):
        glszm.compute_maps(binned, binned, mask, centre, kernel_radius=0, **common)
    with pytest.raises(SettingsError, match="unknown glszm"):
        glszm.compute_maps(
            binned, binned, mask, centre, kernel_radius=1, features=["Nope"], **common
        )
    with pytest.raises(InputError, match="centres"):
        glszm.compute_maps(binned, binned, mask, np.array([[0, 0, 0]]), kernel_radius=1, **common)
    with pytest.raises(InputError, match="n_levels"):
        glszm.compute_maps(binned, binned * 3, mask, centre, kernel_radius=1, **common)
