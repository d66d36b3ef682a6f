"""IBSI texture matrices of the digital phantom, against the IBSI reference manual.

The expected matrices are those printed in the manual's chapter "Digital
phantom texture matrices" (theibsi/ibsi-doc, docs/06_Digital_phantom_texture_matrices.rst):
slices 1..4 are the phantom's planes z = 0..3, levels are the phantom's values
(Ng = 6), Chebyshev distance 1, NGLDM coarseness 0. Each table is written as
{(grey level, column value): count}, column value being the second grey level
(GLCM), run length, zone size, zone distance or dependence count.
"""

from __future__ import annotations

import numpy as np
import pytest

from radflow.features.ibsi.aggregation import level_index
from radflow.features.ibsi.glcm import cooccurrence_matrices
from radflow.features.ibsi.gldzm import border_distance, distance_zone_matrices
from radflow.features.ibsi.glrlm import run_length_matrices
from radflow.features.ibsi.glszm import size_zone_matrices
from radflow.features.ibsi.ngldm import dependence_matrices
from radflow.features.ibsi.ngtdm import tone_difference_matrices

N_LEVELS = 6


def _symmetric(upper):
    """A symmetric GLCM table from its upper triangle (the manual prints both halves)."""
    out = dict(upper)
    out.update({(j, i): n for (i, j), n in upper.items()})
    return out


# GLCM, 2D, merged over the 4 in-plane directions, per slice; and 3D merged over 13 directions.
GLCM_2D_SLICE_MERGED = [
    _symmetric({(1, 1): 22, (1, 4): 17, (1, 6): 6, (4, 4): 16, (4, 6): 11, (6, 6): 4}),
    _symmetric(
        {(1, 1): 42, (1, 3): 5, (1, 4): 8, (1, 6): 8, (3, 4): 1, (3, 6): 2, (4, 4): 4, (4, 6): 3}
    ),
    _symmetric({(1, 1): 56, (1, 4): 7, (1, 6): 4, (4, 4): 2}),
    _symmetric({(1, 1): 70, (1, 4): 7, (1, 6): 5, (4, 4): 2}),
]
GLCM_3D_MERGED = _symmetric(
    {
        (1, 1): 536,
        (1, 3): 14,
        (1, 4): 105,
        (1, 6): 61,
        (3, 4): 5,
        (3, 6): 6,
        (4, 4): 64,
        (4, 6): 28,
        (6, 6): 16,
    }
)
# GLRLM (grey level, run length), the same merging.
GLRLM_2D_SLICE_MERGED = [
    {(1, 1): 16, (1, 2): 8, (1, 4): 1, (4, 1): 17, (4, 2): 6, (4, 3): 1, (6, 1): 9, (6, 3): 1},
    {(1, 1): 10, (1, 2): 15, (1, 4): 2, (3, 1): 4, (4, 1): 12, (4, 2): 2, (6, 1): 8},
    {(1, 1): 10, (1, 2): 11, (1, 3): 5, (1, 4): 1, (1, 5): 1, (4, 1): 6, (4, 2): 1, (6, 1): 4},
    {(1, 1): 6, (1, 2): 9, (1, 3): 6, (1, 4): 2, (1, 5): 2, (4, 1): 6, (4, 2): 1, (6, 1): 4},
]
GLRLM_3D_MERGED = {
    (1, 1): 190, (1, 2): 140, (1, 3): 31, (1, 4): 18, (1, 5): 3, (3, 1): 13, (4, 1): 149,
    (4, 2): 24, (4, 3): 1, (4, 4): 2, (6, 1): 78, (6, 2): 3, (6, 3): 1, (6, 4): 1,
}  # fmt: skip
# GLSZM (grey level, zone size).
GLSZM_2D = [
    {(1, 3): 1, (1, 6): 1, (4, 2): 1, (4, 6): 1, (6, 3): 1},
    {(1, 4): 1, (1, 8): 1, (3, 1): 1, (4, 2): 2, (6, 1): 2},
    {(1, 14): 1, (4, 2): 1, (6, 1): 1},
    {(1, 15): 1, (4, 2): 1, (6, 1): 1},
]
GLSZM_3D = {(1, 50): 1, (3, 1): 1, (4, 2): 1, (4, 14): 1, (6, 7): 1}
# GLDZM (grey level, zone distance).
GLDZM_2D = [
    {(1, 1): 2, (4, 1): 2, (6, 1): 1},
    {(1, 1): 2, (3, 2): 1, (4, 1): 2, (6, 1): 1, (6, 2): 1},
    {(1, 1): 1, (4, 1): 1, (6, 1): 1},
    {(1, 1): 1, (4, 1): 1, (6, 1): 1},
]
GLDZM_3D = {(1, 1): 1, (3, 1): 1, (4, 1): 2, (6, 1): 1}
# NGTDM {grey level: (s_i, n_i)}, s_i printed to 6 decimals.
NGTDM_2D = [
    {1: (14.575, 9), 4: (5.775, 8), 6: (7.325, 3)},
    {1: (11.928571, 12), 3: (0.375, 1), 4: (4.8, 4), 6: (8.0, 2)},
    {1: (7.985714, 14), 4: (4.65, 2), 6: (5.0, 1)},
    {1: (7.582143, 15), 4: (4.65, 2), 6: (5.0, 1)},
]
NGTDM_3D = {1: (39.946954, 50), 3: (0.2, 1), 4: (20.825401, 16), 6: (24.127005, 7)}
# NGLDM (grey level, dependence count).
NGLDM_2D = [
    {
        (1, 2): 3,
        (1, 3): 1,
        (1, 4): 3,
        (1, 5): 2,
        (4, 2): 2,
        (4, 3): 4,
        (4, 4): 2,
        (6, 2): 2,
        (6, 3): 1,
    },
    {(1, 3): 2, (1, 4): 6, (1, 6): 4, (3, 1): 1, (4, 2): 4, (6, 1): 2},
    {(1, 3): 1, (1, 4): 5, (1, 5): 3, (1, 6): 3, (1, 7): 2, (4, 2): 2, (6, 1): 1},
    {(1, 3): 1, (1, 4): 3, (1, 5): 3, (1, 6): 4, (1, 7): 1, (1, 8): 3, (4, 2): 2, (6, 1): 1},
]
NGLDM_3D = {
    (1, 5): 2, (1, 6): 2, (1, 7): 1, (1, 8): 6, (1, 9): 4, (1, 10): 6, (1, 11): 5, (1, 12): 5,
    (1, 13): 3, (1, 14): 2, (1, 15): 5, (1, 16): 3, (1, 17): 3, (1, 18): 2, (1, 21): 1, (3, 1): 1,
    (4, 2): 2, (4, 4): 2, (4, 5): 6, (4, 6): 4, (4, 7): 2, (6, 2): 1, (6, 3): 4, (6, 4): 1,
    (6, 5): 1,
}  # fmt: skip


def _table(matrix, columns=None):
    """{(grey level, column value): count} of the non-zero entries of a dense matrix."""
    columns = np.arange(1, matrix.shape[1] + 1) if columns is None else columns
    rows, cols = np.nonzero(matrix)
    return {(int(i) + 1, int(columns[j])): float(matrix[i, j]) for i, j in zip(rows, cols)}


def _index(phantom, pad=1):
    image, mask = phantom
    return level_index(image, mask, N_LEVELS, pad=pad)[0]


def test_glcm(phantom):
    matrices = cooccurrence_matrices(_index(phantom), N_LEVELS, "2D")
    assert matrices.shape == (4, 4, N_LEVELS, N_LEVELS)
    assert [_table(m) for m in matrices.sum(axis=1)] == GLCM_2D_SLICE_MERGED
    assert (
        _table(cooccurrence_matrices(_index(phantom), N_LEVELS, "3D").sum(axis=(0, 1)))
        == GLCM_3D_MERGED
    )


def test_glcm_2_5d_merged_is_the_sum_of_the_slice_tables(phantom):
    expected = {}
    for table in GLCM_2D_SLICE_MERGED:
        for key, n in table.items():
            expected[key] = expected.get(key, 0) + n
    assert (
        _table(cooccurrence_matrices(_index(phantom), N_LEVELS, "2D").sum(axis=(0, 1))) == expected
    )


def test_glrlm(phantom):
    matrices = run_length_matrices(_index(phantom), N_LEVELS, "2D")
    assert matrices.shape[:2] == (4, 4)
    assert [_table(m) for m in matrices.sum(axis=1)] == GLRLM_2D_SLICE_MERGED
    assert (
        _table(run_length_matrices(_index(phantom), N_LEVELS, "3D").sum(axis=(0, 1)))
        == GLRLM_3D_MERGED
    )


def test_glszm(phantom):
    matrices, sizes = size_zone_matrices(_index(phantom), N_LEVELS, "2D")
    assert [_table(m, sizes) for m in matrices] == GLSZM_2D
    matrices, sizes = size_zone_matrices(_index(phantom), N_LEVELS, "3D")
    assert _table(matrices[0], sizes) == GLSZM_3D


@pytest.mark.parametrize("dimension, expected", [("2D", GLDZM_2D), ("3D", [GLDZM_3D])])
def test_gldzm(phantom, dimension, expected):
    mask = phantom[1]
    index = _index(phantom, pad=0)  # the phantom's ROI box is the whole image
    matrices, n_voxels = distance_zone_matrices(
        index, border_distance(mask, dimension), N_LEVELS, dimension
    )
    assert [_table(m) for m in matrices] == expected
    assert n_voxels.tolist() == ([20, 19, 17, 18] if dimension == "2D" else [74])


@pytest.mark.parametrize("dimension, expected", [("2D", NGTDM_2D), ("3D", [NGTDM_3D])])
def test_ngtdm(phantom, dimension, expected):
    n, s = tone_difference_matrices(_index(phantom), N_LEVELS, dimension)
    for n_slice, s_slice, table in zip(n, s, expected, strict=True):
        levels = sorted(table)
        assert np.flatnonzero(n_slice).tolist() == [g - 1 for g in levels]
        assert n_slice[[g - 1 for g in levels]].tolist() == [table[g][1] for g in levels]
        np.testing.assert_allclose(
            s_slice[[g - 1 for g in levels]], [table[g][0] for g in levels], atol=5e-7
        )


@pytest.mark.parametrize("dimension, expected", [("2D", NGLDM_2D), ("3D", [NGLDM_3D])])
def test_ngldm(phantom, dimension, expected):
    matrices = dependence_matrices(_index(phantom), N_LEVELS, dimension)
    assert [_table(m) for m in matrices] == expected
