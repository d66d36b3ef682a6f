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
- ZoneEntropy: :math:`-\\sum_{i,j} p(i,j) \\log_2(p(i,j) + \\epsilon)`, :math:`\\epsilon` = machine epsilon
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

from collections.abc import Callable, Iterable

import numba
import numpy as np

from radflow.features._checks import requested_features
from radflow.features._directions import flat_steps, offsets, roi_levels
from radflow.features.registry import Feature

FAMILY = "glszm"

FEATURES = (
    Feature("SmallAreaEmphasis", FAMILY, "5QRC"),
    Feature("LargeAreaEmphasis", FAMILY, "48P8"),
    Feature("GrayLevelNonUniformity", FAMILY, "JNSA"),
    Feature("GrayLevelNonUniformityNormalized", FAMILY, "Y1RO"),
    Feature("SizeZoneNonUniformity", FAMILY, "4JP3"),
    Feature("SizeZoneNonUniformityNormalized", FAMILY, "VB3A"),
    Feature("ZonePercentage", FAMILY, "P30P"),
    Feature("GrayLevelVariance", FAMILY, "BYLV"),
    Feature("ZoneVariance", FAMILY, "3NSA"),
    Feature("ZoneEntropy", FAMILY, "GU8N"),
    Feature("LowGrayLevelZoneEmphasis", FAMILY, "XMSY"),
    Feature("HighGrayLevelZoneEmphasis", FAMILY, "5GN9"),
    Feature("SmallAreaLowGrayLevelEmphasis", FAMILY, "5RAI"),
    Feature("SmallAreaHighGrayLevelEmphasis", FAMILY, "HW1V"),
    Feature("LargeAreaLowGrayLevelEmphasis", FAMILY, "YH51"),
    Feature("LargeAreaHighGrayLevelEmphasis", FAMILY, "J17V"),
)


# --------------------------------------------------------------------------
# Kernel
# --------------------------------------------------------------------------


@numba.njit(cache=True)
def _label_zones(index, flat_offsets, n_voxels):
    """Level index and size of every zone, by flood fill from each unvisited voxel.

    ``index`` (int32, raveled, -1 outside the ROI, with a margin of -1) is
    consumed: visited voxels are set to -1. ``n_voxels`` (ROI size) bounds
    the number of zones and the stack depth.
    """
    zone_level = np.empty(n_voxels, np.int32)
    zone_size = np.empty(n_voxels, np.int64)
    stack = np.empty(n_voxels, np.int64)
    n_zones = 0
    for start in range(index.shape[0]):
        level = index[start]
        if level < 0:
            continue
        index[start] = -1
        stack[0] = start
        top = 1
        size = 0
        while top > 0:
            top -= 1
            k = stack[top]
            size += 1
            for a in range(flat_offsets.shape[0]):
                j = k + flat_offsets[a]
                if index[j] == level:
                    index[j] = -1
                    stack[top] = j
                    top += 1
        zone_level[n_zones] = level
        zone_size[n_zones] = size
        n_zones += 1
    return zone_level[:n_zones], zone_size[:n_zones]


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
    zone_level, zone_size = _label_zones(index.ravel(), flat_steps(connectivity, index.shape), n_voxels)
    # Columns only for the sizes present: a dense (levels, largest zone)
    # matrix can need gigabytes for fine binnings.
    sizes = np.flatnonzero(np.bincount(zone_size))
    col_of = np.zeros(sizes[-1] + 1, dtype=np.int64)
    col_of[sizes] = np.arange(sizes.size)
    cells = zone_level.astype(np.int64) * sizes.size + col_of[zone_size]
    matrix = np.bincount(cells, minlength=levels.size * sizes.size).reshape(levels.size, sizes.size)
    return matrix.astype(np.float64), levels.astype(np.float64), sizes.astype(np.float64)


# --------------------------------------------------------------------------
# Features, from the matrix (P), its margins and the level/size vectors
# --------------------------------------------------------------------------


class _Coefficients:
    """The matrix and the sums every feature starts from (PyRadiomics' names)."""

    def __init__(self, matrix, levels, sizes):
        self.P = matrix
        self.i = levels
        self.j = sizes
        self.pg = matrix.sum(axis=1)
        self.ps = matrix.sum(axis=0)
        self.Nz = matrix.sum()
        self.Np = np.sum(self.ps * sizes)


def _entropy(c):
    """Entropy of the normalised matrix, PyRadiomics' epsilon included (GLDM too)."""
    p = c.P / c.Nz
    return -np.sum(p * np.log2(p + np.spacing(1)))


def _variance(margin, values, total):
    """Variance of ``values`` weighted by ``margin / total`` (GLDM too)."""
    p = margin / total
    mean = np.sum(p * values)
    return np.sum(p * (values - mean) ** 2)


_FORMULAS: dict[str, Callable[[_Coefficients], float]] = {
    "SmallAreaEmphasis": lambda c: np.sum(c.ps / c.j**2) / c.Nz,
    "LargeAreaEmphasis": lambda c: np.sum(c.ps * c.j**2) / c.Nz,
    "GrayLevelNonUniformity": lambda c: np.sum(c.pg**2) / c.Nz,
    "GrayLevelNonUniformityNormalized": lambda c: np.sum(c.pg**2) / c.Nz**2,
    "SizeZoneNonUniformity": lambda c: np.sum(c.ps**2) / c.Nz,
    "SizeZoneNonUniformityNormalized": lambda c: np.sum(c.ps**2) / c.Nz**2,
    "ZonePercentage": lambda c: c.Nz / c.Np,
    "GrayLevelVariance": lambda c: _variance(c.pg, c.i, c.Nz),
    "ZoneVariance": lambda c: _variance(c.ps, c.j, c.Nz),
    "ZoneEntropy": _entropy,
    "LowGrayLevelZoneEmphasis": lambda c: np.sum(c.pg / c.i**2) / c.Nz,
    "HighGrayLevelZoneEmphasis": lambda c: np.sum(c.pg * c.i**2) / c.Nz,
    "SmallAreaLowGrayLevelEmphasis": lambda c: np.sum(c.P / (c.i[:, None] ** 2 * c.j**2)) / c.Nz,
    "SmallAreaHighGrayLevelEmphasis": lambda c: np.sum(c.P * c.i[:, None] ** 2 / c.j**2) / c.Nz,
    "LargeAreaLowGrayLevelEmphasis": lambda c: np.sum(c.P * c.j**2 / c.i[:, None] ** 2) / c.Nz,
    "LargeAreaHighGrayLevelEmphasis": lambda c: np.sum(c.P * c.i[:, None] ** 2 * c.j**2) / c.Nz,
}


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
    binned : ndarray of int, shape (Z, Y, X)
        Discretised image (``sitk.GetArrayFromImage`` order), grey levels
        >= 1 inside the ROI; values outside the ROI are ignored. Cropped or
        not, the result is the same.
    mask : ndarray of bool or 0/1 int, shape (Z, Y, X)
        The ROI, non-empty.
    force2d : bool
        Zones are grown within slices only (PyRadiomics ``force2D``).
    force2d_dimension : {0, 1, 2}
        Axis across which slices are taken: 0 = z (axial), 1 = y, 2 = x
        (PyRadiomics ``force2Ddimension``).
    features : iterable of str, optional
        Names to compute (see ``FEATURES``); default all.

    Returns
    -------
    dict of str to float
        Dimensionless feature values keyed by PyRadiomics name; formulas in
        the module docstring.

    Raises
    ------
    InputError
        Bad array (shape, dtype, empty ROI, grey level < 1).
    SettingsError
        Bad setting or unknown feature name.
    """
    names = requested_features(features, FEATURES, FAMILY)
    coefficients = _Coefficients(
        *size_zone_matrix(binned, mask, force2d=force2d, force2d_dimension=force2d_dimension)
    )
    return {name: float(_FORMULAS[name](coefficients)) for name in names}
