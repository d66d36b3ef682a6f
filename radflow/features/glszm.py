"""Grey Level Size Zone Matrix (GLSZM) features, numerically as PyRadiomics 3.0.1.

A zone is a connected set of ROI voxels sharing one grey level; voxels are
connected when their Chebyshev (infinity-norm) distance is 1: 26-connectivity
in 3D, 8-connectivity within each slice when ``force2d`` is set. The matrix
:math:`\\mathbf{P}(i, j)` counts the zones of grey level :math:`i` and size
:math:`j` voxels. Grey levels and zone sizes that do not occur are left out,
as PyRadiomics does.

Notation used in the formulas below: :math:`N_z = \\sum_{i,j} \\mathbf{P}(i,j)`
the number of zones, :math:`N_p` the number of ROI voxels,
:math:`p(i,j) = \\mathbf{P}(i,j)/N_z`, :math:`p_g(i) = \\sum_j p(i,j)`,
:math:`p_s(j) = \\sum_i p(i,j)`; :math:`i` runs over the grey levels present
and :math:`j` over the zone sizes present (voxels).

Features (PyRadiomics name: formula):

- SmallAreaEmphasis: :math:`\\sum_{i,j} \\mathbf{P}(i,j) / j^2 / N_z`
- LargeAreaEmphasis: :math:`\\sum_{i,j} \\mathbf{P}(i,j)\\, j^2 / N_z`
- GrayLevelNonUniformity: :math:`\\sum_i (\\sum_j \\mathbf{P}(i,j))^2 / N_z`
- GrayLevelNonUniformityNormalized: :math:`\\sum_i (\\sum_j \\mathbf{P}(i,j))^2 / N_z^2`
- SizeZoneNonUniformity: :math:`\\sum_j (\\sum_i \\mathbf{P}(i,j))^2 / N_z`
- SizeZoneNonUniformityNormalized: :math:`\\sum_j (\\sum_i \\mathbf{P}(i,j))^2 / N_z^2`
- ZonePercentage: :math:`N_z / N_p`
- GrayLevelVariance: :math:`\\sum_i p_g(i)(i - \\mu_i)^2`, :math:`\\mu_i = \\sum_i p_g(i)\\, i`
- ZoneVariance: :math:`\\sum_j p_s(j)(j - \\mu_j)^2`, :math:`\\mu_j = \\sum_j p_s(j)\\, j`
- ZoneEntropy: :math:`-\\sum_{i,j} p(i,j) \\log_2(p(i,j) + \\epsilon)`,
  :math:`\\epsilon` = machine epsilon
- LowGrayLevelZoneEmphasis: :math:`\\sum_{i,j} \\mathbf{P}(i,j) / i^2 / N_z`
- HighGrayLevelZoneEmphasis: :math:`\\sum_{i,j} \\mathbf{P}(i,j)\\, i^2 / N_z`
- SmallAreaLowGrayLevelEmphasis: :math:`\\sum_{i,j} \\mathbf{P}(i,j) / (i^2 j^2) / N_z`
- SmallAreaHighGrayLevelEmphasis: :math:`\\sum_{i,j} \\mathbf{P}(i,j)\\, i^2 / j^2 / N_z`
- LargeAreaLowGrayLevelEmphasis: :math:`\\sum_{i,j} \\mathbf{P}(i,j)\\, j^2 / i^2 / N_z`
- LargeAreaHighGrayLevelEmphasis: :math:`\\sum_{i,j} \\mathbf{P}(i,j)\\, i^2 j^2 / N_z`

Neighbourhoods and ROI preparation come from :mod:`radflow.features._directions`
(offsets exactly as PyRadiomics' C ``build_angles``).

References
----------
Thibault G. et al. (2009) Texture indexes and gray level size zone matrix.
Application to cell nuclei classification. PRIP 2009: 140-145.
Zwanenburg A. et al. (2020) The Image Biomarker Standardization Initiative.
Radiology 295(2): 328-338. https://doi.org/10.1148/radiol.2020191145
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from radflow.features import _texture
from radflow.features._checks import requested_features
from radflow.features._directions import flat_steps, offsets, roi_levels
from radflow.features._native import label_zones
from radflow.features._texture import SizeMatrices, document, evaluate
from radflow.features.registry import declare

__all__ = ["FAMILY", "FEATURES", "compute", "size_zone_matrix"]

FAMILY = "glszm"


def size_zone_matrix(binned, mask, *, force2d=False, force2d_dimension=0):
    """The GLSZM over the grey levels and zone sizes present in the ROI.

    Parameters
    ----------
    binned : ndarray of int, shape (Z, Y, X)
        Discretised image, grey levels >= 1 inside the ROI.
    mask : ndarray of bool or 0/1 int, shape (Z, Y, X)
        The ROI.
    force2d : bool
        Zones are grown within slices only (8-connectivity).
    force2d_dimension : {0, 1, 2}
        Axis across which slices are taken (0 = z, axial).

    Returns
    -------
    matrix : ndarray of float64, shape (N_g, N_s)
        Number of zones per grey level (row) and size (column).
    levels : ndarray of float64, shape (N_g,)
        Grey level of each row.
    sizes : ndarray of float64, shape (N_s,)
        Zone size of each column, voxels.
    """
    connectivity = offsets((1,), bool(force2d), force2d_dimension, bidirectional=True)
    index, levels = roi_levels(binned, mask, pad=1)
    n_voxels = int(np.count_nonzero(index >= 0))
    steps = flat_steps(connectivity, index.shape)
    zone_level, zone_size = label_zones(index.ravel(), steps, n_voxels)
    # Columns only for the sizes present: a dense (levels, largest zone)
    # matrix can need gigabytes for fine binnings.
    sizes = np.flatnonzero(np.bincount(zone_size))
    col_of = np.zeros(sizes[-1] + 1, dtype=np.int64)
    col_of[sizes] = np.arange(sizes.size)
    cells = zone_level.astype(np.int64) * sizes.size + col_of[zone_size]
    matrix = np.bincount(cells, minlength=levels.size * sizes.size).reshape(levels.size, sizes.size)
    return matrix.astype(np.float64), levels.astype(np.float64), sizes.astype(np.float64)


# name -> (formula, IBSI id, default). Order: PyRadiomics' documentation.
# Formulas: :mod:`radflow.features._texture` with j the zone size.
_DEFINITIONS = {
    "SmallAreaEmphasis": (_texture.small_emphasis, "5QRC", True),
    "LargeAreaEmphasis": (_texture.large_emphasis, "48P8", True),
    "GrayLevelNonUniformity": (_texture.grey_non_uniformity, "JNSA", True),
    "GrayLevelNonUniformityNormalized": (_texture.grey_non_uniformity_normalized, "Y1RO", True),
    "SizeZoneNonUniformity": (_texture.size_non_uniformity, "4JP3", True),
    "SizeZoneNonUniformityNormalized": (_texture.size_non_uniformity_normalized, "VB3A", True),
    "ZonePercentage": (_texture.percentage, "P30P", True),
    "GrayLevelVariance": (_texture.grey_variance, "BYLV", True),
    "ZoneVariance": (_texture.size_variance, "3NSA", True),
    "ZoneEntropy": (_texture.entropy, "GU8N", True),
    "LowGrayLevelZoneEmphasis": (_texture.low_grey_emphasis, "XMSY", True),
    "HighGrayLevelZoneEmphasis": (_texture.high_grey_emphasis, "5GN9", True),
    "SmallAreaLowGrayLevelEmphasis": (_texture.small_low_grey_emphasis, "5RAI", True),
    "SmallAreaHighGrayLevelEmphasis": (_texture.small_high_grey_emphasis, "HW1V", True),
    "LargeAreaLowGrayLevelEmphasis": (_texture.large_low_grey_emphasis, "YH51", True),
    "LargeAreaHighGrayLevelEmphasis": (_texture.large_high_grey_emphasis, "J17V", True),
}

FEATURES = declare(FAMILY, _DEFINITIONS)


@document
def compute(
    binned,
    mask,
    *,
    force2d: bool = False,
    force2d_dimension: int = 0,
    features: Iterable[str] | None = None,
) -> dict[str, float]:
    """GLSZM features of one ROI, as PyRadiomics' ``RadiomicsGLSZM``.

    Parameters
    ----------
    %(image)s
    %(force2d)s

    Returns
    -------
    dict of str to float
        Dimensionless feature values keyed by PyRadiomics name; formulas in
        the module docstring.

    %(raises)s
    """
    names = requested_features(features, FEATURES, FAMILY)
    matrix, levels, sizes = size_zone_matrix(
        binned, mask, force2d=force2d, force2d_dimension=force2d_dimension
    )
    return evaluate(names, _DEFINITIONS, SizeMatrices(matrix[None], levels, sizes))
