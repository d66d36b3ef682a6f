"""Habitat features against values counted by hand on small label maps (issue 14 part 3).

Every expected value below is worked out in the comments from the printed array, not taken from
the code: volumes from the voxel counts and spacing, components by eye (face connectivity),
ITHScore = 1 - (1/N) sum_k S_k,max / n_k, every MSI pair count by listing the neighbours, and the
MSI statistics from the symmetric habitat-habitat matrix Q normalised to sum 1.
"""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

from radflow.errors import InputError, SettingsError
from radflow.features import habitat
from radflow.features.habitat import feature_names, habitat_features
from radflow.params.names import FEATURE_NAME_PATTERNS, feature_name_pattern

# 2D map, (y, x), K = 3, pixel 2.0 x 0.75 mm = 1.5 mm^2.
#        x0 x1 x2 x3
#   y0:  1  1  2  0
#   y1:  1  2  2  3
#   y2:  0  3  1  3
MAP_2D = np.array([[1, 1, 2, 0], [1, 2, 2, 3], [0, 3, 1, 3]])
SPACING_2D = (2.0, 0.75)

# 3D map, (z, y, x), K = 2, voxel 2.5 x 1.0 x 0.5 mm = 1.25 mm^3.
MAP_3D = np.array(
    [
        [[1, 1, 0], [1, 2, 2], [0, 2, 1]],  # z0
        [[1, 0, 0], [2, 2, 0], [0, 0, 1]],  # z1
    ]
)
SPACING_3D = (2.5, 1.0, 0.5)

STATISTICS = ("MSIContrast", "MSIHomogeneity", "MSIEnergy", "MSICorrelation")


def _expect(out: dict[str, float], expected: dict[str, float]) -> None:
    for name, value in expected.items():
        assert out[name] == pytest.approx(value, rel=1e-12, abs=1e-15), name


def test_2d_volumes_fractions_components_and_ith_score():
    out = habitat_features(MAP_2D, SPACING_2D, 3)
    # Habitat 1: (0,0) (0,1) (1,0) in one piece, (2,2) alone: N_1 = 4, n_1 = 2, S_1,max = 3.
    # Habitat 2: (0,2) (1,2) (1,1) in one piece: N_2 = 3, n_2 = 1, S_2,max = 3.
    # Habitat 3: (1,3) (2,3) in one piece, (2,1) alone: N_3 = 3, n_3 = 2, S_3,max = 2.
    # N = 10 ROI pixels of 1.5 mm^2.
    _expect(
        out,
        {
            "Volume_1": 6.0, "Volume_2": 4.5, "Volume_3": 4.5,
            "Fraction_1": 0.4, "Fraction_2": 0.3, "Fraction_3": 0.3,
            "Components_1": 2.0, "Components_2": 1.0, "Components_3": 2.0,
            "LargestComponentVolume_1": 4.5,
            "LargestComponentVolume_2": 4.5,
            "LargestComponentVolume_3": 3.0,
            # 1 - (3/2 + 3/1 + 2/2) / 10
            "ITHScore": 0.45,
        },
    )  # fmt: skip


def test_2d_msi_pair_counts():
    out = habitat_features(MAP_2D, SPACING_2D, 3)
    # The ROI's box is the whole array (x3 holds a 3 in y1, y0 and y2 hold ROI pixels), padded
    # by one pixel of 0. Neighbours outside the ROI (0), pixel by pixel:
    #   habitat 1: (0,0) up+left, (0,1) up, (1,0) left+down, (2,2) down        -> P_01 = 6
    #   habitat 2: (0,2) up+right; (1,1), (1,2) none                           -> P_02 = 2
    #   habitat 3: (1,3) up+right, (2,1) left+down, (2,3) right+down           -> P_03 = 6
    # Pairs inside the ROI:
    #   1-1: (0,0)-(0,1), (0,0)-(1,0)                                          -> P_11 = 2
    #   1-2: (0,1)-(0,2), (0,1)-(1,1), (1,0)-(1,1), (2,2)-(1,2)                -> P_12 = 4
    #   1-3: (2,2)-(2,1), (2,2)-(2,3)                                          -> P_13 = 2
    #   2-2: (1,1)-(1,2), (0,2)-(1,2)                                          -> P_22 = 2
    #   2-3: (1,2)-(1,3), (1,1)-(2,1)                                          -> P_23 = 2
    #   3-3: (1,3)-(2,3)                                                       -> P_33 = 1
    # Check: 10 pixels x 4 faces = 40 = 2 x 13 (inside pairs) + 14 (to the outside).
    # All counted pairs: 13 + 14 = 27.
    pairs = {
        (0, 1): 6, (0, 2): 2, (0, 3): 6,
        (1, 1): 2, (1, 2): 4, (1, 3): 2,
        (2, 2): 2, (2, 3): 2,
        (3, 3): 1,
    }  # fmt: skip
    _expect(out, {f"MSIPairs_{i}_{j}": float(n) for (i, j), n in pairs.items()})
    _expect(out, {f"MSI_{i}_{j}": n / 27 for (i, j), n in pairs.items()})


def test_2d_msi_statistics():
    out = habitat_features(MAP_2D, SPACING_2D, 3)
    # Q before normalising: Q11 = 2, Q12 = Q21 = 4, Q13 = Q31 = 2, Q22 = 2, Q23 = Q32 = 2,
    # Q33 = 1; sum 21.
    # Contrast: 1 x (4 + 4) + 4 x (2 + 2) + 1 x (2 + 2) = 28 -> 28/21.
    # Homogeneity: (2 + 2 + 1) + (4 + 4)/2 + (2 + 2)/5 + (2 + 2)/2 = 11.8 -> 11.8/21.
    # Energy: (2^2 + 2 x 4^2 + 2 x 2^2 + 2^2 + 2 x 2^2 + 1^2) / 21^2 = 57/441.
    # Correlation: row sums 8, 8, 5 -> mean 39/21 = 13/7, E[i^2] = 85/21,
    #   variance 85/21 - 169/49 = 88/147; E[ij] = (2 + 2x2x4 + 2x3x2 + 4x2 + 2x6x2 + 9)/21 = 71/21,
    #   covariance 71/21 - 169/49 = -10/147; correlation -10/88.
    _expect(
        out,
        {
            "MSIContrast": 28 / 21,
            "MSIHomogeneity": 11.8 / 21,
            "MSIEnergy": 57 / 441,
            "MSICorrelation": -10 / 88,
        },
    )


def test_3d_volumes_fractions_components_and_ith_score():
    out = habitat_features(MAP_3D, SPACING_3D, 2)
    # Habitat 1 (6 voxels): z0 (0,0) (0,1) (1,0) and z1 (0,0) in one piece (z0 (0,0)-z1 (0,0)
    # along z), z0 (2,2)-z1 (2,2) a second one: n_1 = 2, S_1,max = 4.
    # Habitat 2 (5 voxels): z0 (1,1) (1,2) (2,1), z1 (1,0) (1,1), all joined through z0/z1 (1,1):
    # n_2 = 1, S_2,max = 5. N = 11, voxel 1.25 mm^3.
    _expect(
        out,
        {
            "Volume_1": 7.5, "Volume_2": 6.25,
            "Fraction_1": 6 / 11, "Fraction_2": 5 / 11,
            "Components_1": 2.0, "Components_2": 1.0,
            "LargestComponentVolume_1": 5.0, "LargestComponentVolume_2": 6.25,
            "ITHScore": 1 - (4 / 2 + 5 / 1) / 11,
        },
    )  # fmt: skip


def test_3d_msi_pair_counts_and_statistics():
    out = habitat_features(MAP_3D, SPACING_3D, 2)
    # Pairs inside the ROI, by axis:
    #   x: z0 row0 1-1; z0 row1 1-2, 2-2; z0 row2 2-1; z1 row1 2-2
    #   y: z0 col0 1-1; z0 col1 1-2, 2-2; z0 col2 2-1; z1 col0 1-2
    #   z: (0,0) 1-1; (1,0) 1-2; (1,1) 2-2; (2,2) 1-1
    #   -> P_11 = 1 + 1 + 2 = 4, P_12 = 2 + 3 + 1 = 6, P_22 = 2 + 1 + 1 = 4.
    # Faces to the outside (the padding included), voxel by voxel:
    #   habitat 1: z0 (0,0) 3, z0 (0,1) 4, z0 (1,0) 3, z0 (2,2) 3, z1 (0,0) 4, z1 (2,2) 5 -> 22
    #   habitat 2: z0 (1,1) 1, z0 (1,2) 4, z0 (2,1) 4, z1 (1,0) 3, z1 (1,1) 4            -> 16
    # Check: 6 x 6 = 36 = 2 P_11 + P_12 + P_01 and 5 x 6 = 30 = 2 P_22 + P_12 + P_02.
    # All counted pairs: 22 + 16 + 4 + 6 + 4 = 52.
    pairs = {(0, 1): 22, (0, 2): 16, (1, 1): 4, (1, 2): 6, (2, 2): 4}
    _expect(out, {f"MSIPairs_{i}_{j}": float(n) for (i, j), n in pairs.items()})
    _expect(out, {f"MSI_{i}_{j}": n / 52 for (i, j), n in pairs.items()})
    # Q = [[4, 6], [6, 4]] / 20 = [[0.2, 0.3], [0.3, 0.2]].
    # Contrast 2 x 0.3 = 0.6; homogeneity 0.4 + 0.6 / 2 = 0.7; energy 2 x 0.04 + 2 x 0.09 = 0.26;
    # mean 1.5, variance 0.25, covariance 0.25 x 0.4 - 0.25 x 0.6 = -0.05 -> correlation -0.2.
    _expect(
        out,
        {"MSIContrast": 0.6, "MSIHomogeneity": 0.7, "MSIEnergy": 0.26, "MSICorrelation": -0.2},
    )


def test_result_does_not_depend_on_the_crop():
    # The ROI touches the edges of MAP_3D; in a larger array of 0 every count is the same
    # (the pairs with the outside are counted in the padded box either way).
    big = np.zeros((5, 7, 6), dtype=np.uint8)
    big[2:4, 1:4, 2:5] = MAP_3D
    assert habitat_features(big, SPACING_3D, 2) == habitat_features(MAP_3D, SPACING_3D, 2)


def test_absent_habitat():
    # MAP_3D with K = 3: habitat 3 is absent. Its volume, fraction, components and pair counts
    # are 0, it is left out of ITHScore, and Q gains an empty row and column (same statistics).
    out = habitat_features(MAP_3D, SPACING_3D, 3)
    _expect(
        out,
        {
            "Volume_3": 0.0, "Fraction_3": 0.0, "Components_3": 0.0,
            "LargestComponentVolume_3": 0.0,
            "MSIPairs_0_3": 0.0, "MSIPairs_1_3": 0.0, "MSIPairs_2_3": 0.0, "MSIPairs_3_3": 0.0,
            "MSI_0_3": 0.0, "MSI_3_3": 0.0,
            "Volume_1": 7.5, "Fraction_1": 6 / 11, "MSIPairs_1_2": 6.0, "MSI_1_2": 6 / 52,
            "ITHScore": 1 - (4 / 2 + 5 / 1) / 11,
            "MSIContrast": 0.6, "MSIHomogeneity": 0.7, "MSIEnergy": 0.26, "MSICorrelation": -0.2,
        },
    )  # fmt: skip


def test_single_habitat_in_one_piece():
    # K = 1, pixels 1 mm: an L of three pixels. P_11 = 2 (corner to each arm); faces to the
    # outside 3 x 4 - 2 x 2 = 8. Q = [[1]]: no contrast, homogeneity and energy 1, and the
    # standard deviation 0 gives correlation 1. One piece: ITHScore = 1 - 3/3 = 0.
    out = habitat_features(np.array([[1, 1], [1, 0]]), (1.0, 1.0), 1)
    assert out == pytest.approx(
        {
            "Volume_1": 3.0, "Fraction_1": 1.0, "Components_1": 1.0,
            "LargestComponentVolume_1": 3.0, "ITHScore": 0.0,
            "MSIPairs_0_1": 8.0, "MSIPairs_1_1": 2.0, "MSI_0_1": 0.8, "MSI_1_1": 0.2,
            "MSIContrast": 0.0, "MSIHomogeneity": 1.0, "MSIEnergy": 1.0, "MSICorrelation": 1.0,
        }
    )  # fmt: skip


def test_correlation_is_one_when_only_one_habitat_touches_itself():
    # K = 2: habitats 1 and 2 never touch; the only inside pair is 1-1, so Q = [[1, 0], [0, 0]].
    out = habitat_features(np.array([[1, 1, 0, 2]]), (1.0, 1.0), 2)
    _expect(
        out,
        {"MSIPairs_1_1": 1.0, "MSIPairs_1_2": 0.0, "MSIPairs_2_2": 0.0, "MSIPairs_0_2": 4.0},
    )
    _expect(
        out,
        {"MSIContrast": 0.0, "MSIHomogeneity": 1.0, "MSIEnergy": 1.0, "MSICorrelation": 1.0},
    )


def test_diagonal_pixels_are_separate_components_and_no_pairs_give_nan_statistics():
    # K = 1 checkerboard: the two pixels meet at a corner only, so 4-connectivity sees two
    # components of 1 pixel (ITHScore = 1 - (1/2)/2 = 0.75); no face joins two ROI pixels, so
    # Q is empty and the four statistics are NaN, while the pair counts are still given.
    out = habitat_features(np.array([[1, 0], [0, 1]]), (1.0, 1.0), 1)
    _expect(
        out,
        {
            "Components_1": 2.0, "LargestComponentVolume_1": 1.0, "ITHScore": 0.75,
            "MSIPairs_0_1": 8.0, "MSIPairs_1_1": 0.0, "MSI_0_1": 1.0, "MSI_1_1": 0.0,
        },
    )  # fmt: skip
    assert all(math.isnan(out[name]) for name in STATISTICS)


def test_3d_uses_face_connectivity():
    # Two voxels sharing an edge (z0 (0,0) and z1 (1,0)) and a third sharing a corner only
    # (z1 (1,0) and z0 (2,1)) are three components of one 8 mm^3 voxel each in 6-connectivity.
    labels = np.zeros((2, 3, 2), dtype=np.int16)
    labels[0, 0, 0] = labels[1, 1, 0] = labels[0, 2, 1] = 1
    out = habitat_features(labels, (2.0, 2.0, 2.0), 1)
    _expect(
        out,
        {
            "Components_1": 3.0, "LargestComponentVolume_1": 8.0, "Volume_1": 24.0,
            "ITHScore": 1 - (1 / 3) / 3, "MSIPairs_0_1": 18.0, "MSIPairs_1_1": 0.0,
        },
    )  # fmt: skip


def test_keys_are_feature_names_and_match_the_params_patterns():
    # K = 2: 4 per-habitat patterns x 2, ITHScore, 5 label pairs (0,1) (0,2) (1,1) (1,2) (2,2)
    # for MSIPairs and for MSI, 4 statistics.
    expected = (
        "Volume_1", "Volume_2", "Fraction_1", "Fraction_2", "Components_1", "Components_2",
        "LargestComponentVolume_1", "LargestComponentVolume_2", "ITHScore",
        "MSIPairs_0_1", "MSIPairs_0_2", "MSIPairs_1_1", "MSIPairs_1_2", "MSIPairs_2_2",
        "MSI_0_1", "MSI_0_2", "MSI_1_1", "MSI_1_2", "MSI_2_2",
        "MSIContrast", "MSIHomogeneity", "MSIEnergy", "MSICorrelation",
    )  # fmt: skip
    assert feature_names(2) == expected
    assert tuple(habitat_features(MAP_3D, SPACING_3D, 2)) == expected
    for k in (1, 3, 12):
        names = feature_names(k)
        assert len(names) == 4 * k + 1 + 2 * (k * (k + 3) // 2) + 4
        assert all(feature_name_pattern("habitat", name) is not None for name in names)
    assert habitat.FAMILY in FEATURE_NAME_PATTERNS


def test_feature_name_selection():
    assert feature_names(2, ["MSICorrelation", "Fraction"]) == (
        "Fraction_1",
        "Fraction_2",
        "MSICorrelation",
    )
    assert feature_names(3, ["MSI_0_3", "Volume_2", "Volume_2"]) == ("Volume_2", "MSI_0_3")
    assert feature_names(2, "ITHScore") == ("ITHScore",)
    with pytest.raises(SettingsError, match="unknown feature 'Volumes'"):
        feature_names(2, ["Volumes"])
    with pytest.raises(SettingsError, match="K = 2"):
        feature_names(2, ["Fraction_3"])


def test_params_name_patterns():
    for name, pattern in [
        ("Volume_1", "Volume_<k>"),
        ("Volume", "Volume_<k>"),
        ("LargestComponentVolume_10", "LargestComponentVolume_<k>"),
        ("MSIPairs_0_1", "MSIPairs_<i>_<j>"),
        ("MSI_2_2", "MSI_<i>_<j>"),
        ("MSI", "MSI_<i>_<j>"),
        ("ITHScore", "ITHScore"),
    ]:
        assert feature_name_pattern("habitat", name) == pattern, name
    # habitat 0 is the outside; the pair (0, 0) is not counted; pairs are written i <= j;
    # numbers without leading zeros; other classes have no patterns.
    for name in ("Volume_0", "Volume_01", "MSIPairs_0_0", "MSIPairs_2_1", "MSI_1", "ITHScore_1"):
        assert feature_name_pattern("habitat", name) is None, name
    assert feature_name_pattern("glcm", "Contrast") is None


@pytest.mark.parametrize(
    ("labels", "spacing", "match"),
    [
        (MAP_3D, (1.0, 1.0), "3 positive voxel sizes"),
        (MAP_2D, (1.0, 1.0, 1.0), "2 positive voxel sizes"),
        (MAP_2D, (1.0, -1.0), "positive voxel sizes"),
        (MAP_2D, (1.0, float("nan")), "positive voxel sizes"),
        (np.array([1, 2, 0]), (1.0,), "2D .* or 3D"),
        (MAP_2D.astype(float), SPACING_2D, "integer label array"),
        (np.array([[0, 4, 1]]), (1.0, 1.0), "0..3 .* found 4"),
        (np.array([[0, -1, 1]]), (1.0, 1.0), "found -1"),
        (np.zeros((2, 3, 3), dtype=np.uint8), SPACING_3D, "empty"),
    ],
)
def test_bad_input_is_refused(labels, spacing, match):
    with pytest.raises(InputError, match=match):
        habitat_features(labels, spacing, 3)


@pytest.mark.parametrize("n_habitats", [0, -1, 2.0, True, None])
def test_bad_number_of_habitats_is_refused(n_habitats):
    with pytest.raises(SettingsError, match="n_habitats"):
        habitat_features(MAP_2D, SPACING_2D, n_habitats)


def test_docstring_examples():
    from radflow.params import names

    for module in (habitat, names):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


def _pairs_by_loops(labels: np.ndarray) -> dict[tuple[int, int], int]:
    """Pair counts the slow, obvious way: each voxel of the padded map with its next neighbour."""
    padded = np.pad(labels, 1)
    counts: dict[tuple[int, int], int] = {}
    for index in np.ndindex(padded.shape):
        for axis in range(padded.ndim):
            other = list(index)
            other[axis] += 1
            if other[axis] == padded.shape[axis]:
                continue
            a, b = sorted((int(padded[index]), int(padded[tuple(other)])))
            counts[a, b] = counts.get((a, b), 0) + 1
    counts.pop((0, 0), None)
    return counts


@pytest.mark.parametrize("shape", [(7, 9), (4, 6, 5)])
def test_pair_counts_equal_a_loop_over_neighbours(shape):
    rng = np.random.default_rng(len(shape))
    labels = rng.integers(0, 4, size=shape)
    out = habitat_features(labels, (1.0,) * len(shape), 3)
    expected = _pairs_by_loops(labels)
    for i in range(4):
        for j in range(max(i, 1), 4):
            assert out[f"MSIPairs_{i}_{j}"] == expected.get((i, j), 0), (i, j)
    total = sum(expected.values())
    assert out["MSI_0_1"] == pytest.approx(expected.get((0, 1), 0) / total)
