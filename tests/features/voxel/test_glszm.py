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
