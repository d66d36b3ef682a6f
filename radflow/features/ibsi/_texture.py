r"""The sixteen run-length-type features the IBSI GLRLM, GLSZM, GLDZM and NGLDM share.

IBSI 1 reference manual, section "Grey level run length based features"
(TP0I), whose definitions the GLSZM (9SAK), GLDZM (VMDZ) and NGLDM (REK0)
repeat with the run length :math:`j` read as zone size, zone distance or
dependence count. For a matrix :math:`r_{ij}` (:math:`N_g` grey levels
:math:`i`, sizes :math:`j`), :math:`N_s = \sum_{ij} r_{ij}`, :math:`N_v` the
number of voxels, :math:`r_{i.}`, :math:`r_{.j}` the marginal sums,
:math:`p_{ij} = r_{ij}/N_s`:

- short / long emphasis :math:`\frac{1}{N_s}\sum_j r_{.j}/j^2`,
  :math:`\frac{1}{N_s}\sum_j j^2 r_{.j}`
- low / high grey level emphasis :math:`\frac{1}{N_s}\sum_i r_{i.}/i^2`,
  :math:`\frac{1}{N_s}\sum_i i^2 r_{i.}`
- short low / high grey level emphasis :math:`\frac{1}{N_s}\sum_{ij} r_{ij}/(i^2 j^2)`,
  :math:`\frac{1}{N_s}\sum_{ij} i^2 r_{ij}/j^2`
- long low / high grey level emphasis :math:`\frac{1}{N_s}\sum_{ij} j^2 r_{ij}/i^2`,
  :math:`\frac{1}{N_s}\sum_{ij} i^2 j^2 r_{ij}`
- grey level non-uniformity :math:`\frac{1}{N_s}\sum_i r_{i.}^2` (normalised: :math:`/N_s^2`)
- size non-uniformity :math:`\frac{1}{N_s}\sum_j r_{.j}^2` (normalised: :math:`/N_s^2`)
- percentage :math:`N_s/N_v`
- grey level variance :math:`\sum_{ij}(i-\mu)^2 p_{ij}`, :math:`\mu=\sum_{ij} i\,p_{ij}`;
  size variance likewise with :math:`j`
- entropy :math:`-\sum_{ij} p_{ij}\log_2 p_{ij}`

The PyRadiomics-mode counterpart is :mod:`radflow.features._texture`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["size_features"]


def size_features(matrix: np.ndarray, lengths: np.ndarray, n_voxels: float) -> np.ndarray:
    """The sixteen run-length-type features of one matrix, in IBSI order.

    Parameters
    ----------
    matrix : ndarray, shape (N_g, N_j)
        Counts; row ``i`` is grey level ``i + 1``, column ``k`` has
        run length (zone size, distance, dependence count) ``lengths[k]``.
    lengths : ndarray, shape (N_j,)
        The value :math:`j` of each column (>= 1).
    n_voxels : float
        :math:`N_v`.

    Returns
    -------
    ndarray of float64, shape (16,)
        Short, long emphasis; low, high grey level emphasis; short-low,
        short-high, long-low, long-high emphasis; grey level
        non-uniformity (plain, normalised); length non-uniformity (plain,
        normalised); percentage; grey level variance; length variance;
        entropy. The order of every such family in the IBSI registry.
    """
    n_s = matrix.sum()
    i2 = np.arange(1, matrix.shape[0] + 1, dtype=np.float64) ** 2
    j = np.asarray(lengths, dtype=np.float64)
    j2 = j**2
    by_level = matrix.sum(axis=1)
    by_length = matrix.sum(axis=0)
    p = matrix / n_s
    p_level = by_level / n_s
    p_length = by_length / n_s
    mean_level = p_level @ np.sqrt(i2)
    mean_length = p_length @ j
    nonzero = p[p > 0]
    return np.array(
        [
            p_length @ (1.0 / j2),
            p_length @ j2,
            p_level @ (1.0 / i2),
            p_level @ i2,
            (1.0 / i2) @ p @ (1.0 / j2),
            i2 @ p @ (1.0 / j2),
            (1.0 / i2) @ p @ j2,
            i2 @ p @ j2,
            by_level @ by_level / n_s,
            p_level @ p_level,
            by_length @ by_length / n_s,
            p_length @ p_length,
            n_s / n_voxels,
            p_level @ (np.sqrt(i2) - mean_level) ** 2,
            p_length @ (j - mean_length) ** 2,
            -nonzero @ np.log2(nonzero),
        ]
    )
