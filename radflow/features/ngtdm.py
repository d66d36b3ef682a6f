"""Neighbouring Grey Tone Difference Matrix (NGTDM) features, as PyRadiomics 3.0.1.

For every ROI voxel of grey level :math:`i`, :math:`\\bar{A}` is the mean grey
level of its neighbours: the ROI voxels at one of the Chebyshev distances
``distances`` (both directions; with ``force2d`` only within the slice). Per
grey level the matrix holds :math:`n_i`, the number of ROI voxels, and
:math:`s_i = \\sum |i - \\bar{A}|` over them. A voxel with no neighbour in
the ROI still counts in :math:`n_i` and adds 0 to :math:`s_i`: PyRadiomics'
documentation says such voxels are left out, its C code (followed here)
keeps them.

Notation: :math:`N_{v,p} = \\sum_i n_i`, :math:`p_i = n_i / N_{v,p}`,
:math:`N_{g,p}` the number of grey levels present; sums run over the grey
levels present (:math:`p_i > 0`).

Features (PyRadiomics name: formula):

- Coarseness: :math:`1 / \\sum_i p_i s_i`, or :math:`10^6` when the sum is 0
  (a flat ROI).
- Contrast: :math:`\\left(\\frac{1}{N_{g,p}(N_{g,p}-1)} \\sum_{i,j} p_i p_j (i-j)^2\\right)
  \\left(\\frac{1}{N_{v,p}} \\sum_i s_i\\right)`, 0 when :math:`N_{g,p} = 1`.
- Busyness: :math:`\\sum_i p_i s_i / \\sum_{i,j} |i p_i - j p_j|`, 0 when the
  denominator is 0.
- Complexity: :math:`\\frac{1}{N_{v,p}} \\sum_{i,j} |i-j| \\frac{p_i s_i + p_j s_j}{p_i + p_j}`
- Strength: :math:`\\sum_{i,j} (p_i + p_j)(i-j)^2 / \\sum_i s_i`, 0 when
  :math:`\\sum_i s_i = 0`.

References
----------
Amadasun M., King R. (1989) Textural features corresponding to textural
properties. IEEE Trans. Syst. Man Cybern. 19(5): 1264-1274.
https://doi.org/10.1109/21.44046
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from radflow.features._checks import requested_features
from radflow.features._directions import flat_steps, offsets, roi_levels
from radflow.features._native import tone_differences
from radflow.features._texture import document, evaluate
from radflow.features.registry import declare

__all__ = ["COARSENESS_FLAT", "FAMILY", "FEATURES", "compute", "tone_difference_matrix"]

FAMILY = "ngtdm"

#: PyRadiomics' Coarseness of a ROI without grey-tone differences.
COARSENESS_FLAT = 1e6


def tone_difference_matrix(binned, mask, *, distances=(1,), force2d=False, force2d_dimension=0):
    """The NGTDM over the grey levels present in the ROI.

    Parameters
    ----------
    binned, mask, distances, force2d, force2d_dimension
        As for :func:`compute`.

    Returns
    -------
    counts : ndarray of float64, shape (N_g,)
        :math:`n_i`, ROI voxels per grey level.
    sums : ndarray of float64, shape (N_g,)
        :math:`s_i`, summed absolute differences to the neighbourhood mean.
    levels : ndarray of float64, shape (N_g,)
        The grey levels.
    """
    neighbours = offsets(distances, bool(force2d), force2d_dimension, bidirectional=True)
    index, levels = roi_levels(binned, mask, pad=int(np.abs(neighbours).max(initial=0)))
    counts, sums = tone_differences(index.ravel(), levels, flat_steps(neighbours, index.shape))
    return counts.astype(np.float64), sums, levels.astype(np.float64)


class _Matrix:
    """The NGTDM and the sums every feature starts from (PyRadiomics' names)."""

    def __init__(self, counts, sums, levels):
        self.Nvp = counts.sum()
        self.p = counts / self.Nvp
        self.s = sums
        self.i = levels
        self.Ngp = levels.size


def _coarseness(c):
    total = np.sum(c.p * c.s)
    return 1.0 / total if total != 0 else COARSENESS_FLAT


def _contrast(c):
    pairs = c.Ngp * (c.Ngp - 1)
    if pairs == 0:
        return 0.0
    spread = np.sum(c.p[:, None] * c.p * (c.i[:, None] - c.i) ** 2)
    return spread * np.sum(c.s) / c.Nvp / pairs


def _busyness(c):
    weighted = c.i * c.p
    denominator = np.sum(np.abs(weighted[:, None] - weighted))
    return np.sum(c.p * c.s) / denominator if denominator != 0 else 0.0


def _complexity(c):
    ps = c.p * c.s
    terms = np.abs(c.i[:, None] - c.i) * (ps[:, None] + ps) / (c.p[:, None] + c.p)
    return np.sum(terms) / c.Nvp


def _strength(c):
    total = np.sum(c.s)
    if total == 0:
        return 0.0
    return np.sum((c.p[:, None] + c.p) * (c.i[:, None] - c.i) ** 2) / total


# name -> (formula, IBSI id, default). Order: PyRadiomics' documentation.
_DEFINITIONS = {
    "Coarseness": (_coarseness, "QCDE", True),
    "Contrast": (_contrast, "65HE", True),
    "Busyness": (_busyness, "NQ30", True),
    "Complexity": (_complexity, "HDEZ", True),
    "Strength": (_strength, "1X9X", True),
}

FEATURES = declare(FAMILY, _DEFINITIONS)


@document
def compute(
    binned,
    mask,
    *,
    distances: Iterable[int] = (1,),
    force2d: bool = False,
    force2d_dimension: int = 0,
    features: Iterable[str] | None = None,
) -> dict[str, float]:
    """NGTDM features of one ROI, as PyRadiomics' ``RadiomicsNGTDM``.

    Parameters
    ----------
    %(image)s
    %(distances)s
    %(force2d)s

    Returns
    -------
    dict of str to float
        Feature values keyed by PyRadiomics name (dimensionless, grey levels
        in bins); formulas in the module docstring.

    %(raises)s
    """
    names = requested_features(features, FEATURES, FAMILY)
    matrix = _Matrix(
        *tone_difference_matrix(
            binned, mask, distances=distances, force2d=force2d, force2d_dimension=force2d_dimension
        )
    )
    return evaluate(names, _DEFINITIONS, matrix)
