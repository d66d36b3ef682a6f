r"""IBSI neighbourhood grey tone difference matrix (NGTDM) features, with the IBSI aggregation
methods.

The neighbourhood of a ROI voxel is the ROI voxels within Chebyshev distance
:math:`\delta` (in 2D only those in its slice); :math:`\overline{X}_k` is their
mean grey level. A voxel with at least one neighbour has a valid
neighbourhood. For each grey level :math:`i`, :math:`n_i` counts the voxels
of level :math:`i` with a valid neighbourhood and
:math:`s_i = \sum |i - \overline{X}_k|` sums over them. With
:math:`N_{v,c} = \sum_i n_i`, :math:`p_i = n_i / N_{v,c}` and
:math:`N_{g,p}` the number of levels with :math:`p_i > 0` (sums over pairs
run over those levels). Merging 2D matrices sums :math:`n_i` and :math:`s_i`
over the slices. IBSI 1 reference manual, section "Neighbourhood grey tone
difference based features" (IPET). Features, in registry order:

- coarseness :math:`1/\sum_i p_i s_i`; :math:`10^6` when the sum is 0
- contrast :math:`\frac{1}{N_{g,p}(N_{g,p}-1)}\sum_{i_1,i_2} p_{i_1} p_{i_2}(i_1-i_2)^2
  \cdot \frac{1}{N_{v,c}}\sum_i s_i`; 0 when :math:`N_{g,p} = 1`
- busyness :math:`\sum_i p_i s_i / \sum_{i_1,i_2}|i_1 p_{i_1} - i_2 p_{i_2}|`; 0 when
  :math:`N_{g,p} = 1`, NaN when the denominator is 0 otherwise (undefined)
- complexity
  :math:`\frac{1}{N_{v,c}}\sum_{i_1,i_2}|i_1-i_2|\frac{p_{i_1}s_{i_1}+p_{i_2}s_{i_2}}{p_{i_1}+p_{i_2}}`
- strength :math:`\sum_{i_1,i_2}(p_{i_1}+p_{i_2})(i_1-i_2)^2 / \sum_i s_i`; 0 when
  :math:`\sum_i s_i = 0`

:math:`s_i` comes from the NGTDM kernel shared with PyRadiomics mode
(:func:`radflow.features._shared_kernels.tone_differences`), whose definition of
:math:`s_i` agrees; its voxel counts include voxels without neighbours,
which the IBSI leaves out of :math:`n_i`, so those are subtracted.

References
----------
Amadasun M, King R. Textural features corresponding to textural properties.
IEEE Trans Syst Man Cybern 1989;19(5):1264-1274. doi:10.1109/21.44046

Zwanenburg A et al. The Image Biomarker Standardization Initiative.
Radiology 2020;295(2):328-338. doi:10.1148/radiol.2020191145
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from radflow.features._directions import flat_steps, offsets
from radflow.features._native import tone_differences
from radflow.features.ibsi.aggregation import (
    document,
    planes,
    tagged_features,
    texture_input,
)
from radflow.features.ibsi.registry import features

__all__ = ["FEATURES", "compute", "matrix_features", "tone_difference_matrices"]

FEATURES = features("ngt")
#: Coarseness of a ROI without grey tone differences (IBSI's arbitrary maximum).
COARSENESS_FLAT = 1e6


@document
def tone_difference_matrices(
    index: np.ndarray, n_levels: int, dimension: str, *, distance: int = 1
):
    """NGTDMs, one per slice (2D) or for the volume (3D).

    Parameters
    ----------
    %(index)s
    %(neighbourhood)s

    Returns
    -------
    n : ndarray of float64, shape (n_slices, n_levels)
        :math:`n_i`, voxels with a valid neighbourhood per grey level.
    s : ndarray of float64, shape (n_slices, n_levels)
        :math:`s_i`.
    """
    planar = dimension == "2D"
    neighbours = offsets(range(1, distance + 1), force2d=planar, bidirectional=True)
    steps = flat_steps(neighbours, index.shape)
    grey = np.arange(1, n_levels + 1, dtype=np.int64)
    roi = index >= 0
    footprint = np.ones(
        (1 if planar else 2 * distance + 1,) + (2 * distance + 1,) * 2, dtype=np.int32
    )
    footprint[tuple(n // 2 for n in footprint.shape)] = 0
    isolated = roi & (ndimage.correlate(roi.astype(np.int32), footprint, mode="constant") == 0)
    n, s = [], []
    for key in planes(index, dimension):
        counts, sums = tone_differences(index[key].ravel(), grey, steps)
        n.append(counts - np.bincount(index[key][isolated[key]], minlength=n_levels))
        s.append(sums)
    return np.array(n, dtype=np.float64), np.array(s)


def matrix_features(n: np.ndarray, s: np.ndarray) -> np.ndarray:
    """The five NGTDM features of one (merged) matrix, in registry order."""
    n_vc = n.sum()
    present = n > 0
    p = n[present] / n_vc
    s_p = s[present]
    grey = np.flatnonzero(present) + 1.0
    n_gp = grey.size
    weighted = p @ s_p
    square_diff = (grey[:, None] - grey[None, :]) ** 2
    p_pairs = p[:, None] + p[None, :]
    coarseness = 1.0 / weighted if weighted > 0 else COARSENESS_FLAT
    if n_gp == 1:
        contrast = busyness = 0.0
    else:
        contrast = (p @ square_diff @ p) / (n_gp * (n_gp - 1)) * s.sum() / n_vc
        spread = np.abs((grey * p)[:, None] - (grey * p)[None, :]).sum()
        busyness = weighted / spread if spread > 0 else np.nan
    ps = p * s_p
    complexity = np.sum(np.sqrt(square_diff) * (ps[:, None] + ps[None, :]) / p_pairs) / n_vc
    strength = np.sum(p_pairs * square_diff) / s.sum() if s.sum() > 0 else 0.0
    return np.array([coarseness, contrast, busyness, complexity, strength])


@document
def compute(
    levels, *, intensity_mask, n_levels, aggregations=("3D",), distance: int = 1
) -> dict[str, float]:
    """IBSI NGTDM features of one ROI.

    Parameters
    ----------
    %(image)s
    %(n_levels)s
    %(zone)s
    %(distance)s

    Returns
    -------
    dict of str to float
        ``{"ngt_coarseness_3D": ..., ...}``: every NGTDM tag of the requested
        aggregations, in grey-level units (dimensionless bins).

    %(raises)s
    """
    given = texture_input(
        levels, intensity_mask, n_levels, aggregations, directional=False, distance=distance
    )

    def build(dimension):
        matrices = tone_difference_matrices(
            given.index, n_levels, dimension, distance=given.distance
        )
        return matrices, matrix_features

    return tagged_features(FEATURES, given.aggregations, build)
