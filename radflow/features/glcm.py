r"""Grey Level Co-occurrence Matrix (GLCM) features, as PyRadiomics 3.0.1 computes them.

For each offset :math:`\mathbf{a}` (13 in 3D at distance 1, see
:func:`radflow.features._directions.offsets`), :math:`\mathbf{P}(i, j)`
counts the ROI voxels of grey level :math:`i` whose neighbour at
:math:`\mathbf{a}` lies in the ROI with grey level :math:`j`. As in
PyRadiomics: grey levels absent from the ROI get no row or column; the
matrix is made symmetrical (:math:`\mathbf{P} + \mathbf{P}^T`) unless
``symmetric=False``; with a ``weighting_norm`` the matrices are summed with
weights :math:`w = e^{-\|\mathbf{a}\|^2}` (offset length in mm) into one;
offsets with an empty matrix are dropped (unless only one matrix is left);
each matrix is normalised, :math:`p = \mathbf{P} / \sum \mathbf{P}`, and
each feature is computed per matrix and averaged over them (NaN values are
skipped, like ``numpy.nanmean``).

Notation: :math:`i, j` are grey levels (bin numbers), :math:`N_g` the
highest grey level in the ROI, :math:`p_x(i) = \sum_j p(i,j)`,
:math:`p_y(j) = \sum_i p(i,j)`, :math:`\mu_x = \sum_i i\,p_x(i)`,
:math:`\mu_y = \sum_j j\,p_y(j)`, :math:`\sigma_x, \sigma_y` their standard
deviations, :math:`p_{x+y}(k) = \sum_{i+j=k} p(i,j)`,
:math:`p_{x-y}(k) = \sum_{|i-j|=k} p(i,j)`, :math:`\epsilon` the float64
machine epsilon, :math:`HX = -\sum_i p_x \log_2(p_x+\epsilon)`,
:math:`HY` likewise, :math:`HXY = -\sum p \log_2(p+\epsilon)`,
:math:`HXY1 = -\sum p(i,j) \log_2(p_x(i) p_y(j)+\epsilon)`,
:math:`HXY2 = -\sum p_x(i) p_y(j) \log_2(p_x(i) p_y(j)+\epsilon)`.
Each feature's formula is in the docstring of its function below.

References
----------
Haralick RM, Shanmugam K, Dinstein I. Textural features for image
classification. IEEE Trans Syst Man Cybern 1973;3(6):610-621.
doi:10.1109/TSMC.1973.4309314

van Griethuysen JJM et al. Computational radiomics system to decode the
radiographic phenotype. Cancer Res 2017;77(21):e104-e107.
doi:10.1158/0008-5472.CAN-17-0339

Zwanenburg A et al. The Image Biomarker Standardization Initiative.
Radiology 2020;295(2):328-338. doi:10.1148/radiol.2020191145
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from radflow.errors import InputError, SettingsError
from radflow.features._directions import flat_steps, offset_lengths_mm, offsets, roi_levels
from radflow.features._native import count_pairs
from radflow.features._texture import (
    check_directional,
    combine_directions,
    document,
    evaluate,
    mean,
    totals,
)
from radflow.features.registry import declare

__all__ = ["FAMILY", "FEATURES", "compute", "cooccurrence"]

FAMILY = "glcm"
_EPS = np.spacing(1)
#: Largest GLCM stack allowed (GiB); more means the image was not discretised.
_MAX_GIB = 2.0


def cooccurrence(binned, mask, *, distances=(1,), force2d=False, force2d_dimension=0):
    """Raw (asymmetric, unnormalised) co-occurrence counts, one matrix per offset.

    Parameters
    ----------
    binned : ndarray of int, shape (z, y, x)
        Discretised image: grey levels >= 1 inside the ROI.
    mask : ndarray of bool or {0, 1} int, shape (z, y, x)
        ROI mask.
    distances : sequence of int
        Neighbour distances in voxels (infinity norm).
    force2d : bool
        Only offsets within planes normal to axis ``force2d_dimension``.
    force2d_dimension : {0, 1, 2}
        Axis of the (z, y, x) array held fixed (0: axial slices).

    Returns
    -------
    counts : ndarray of float64, shape (n_offsets, n_levels, n_levels)
        ``counts[a, i, j]``: voxels of grey level ``levels[i]`` whose
        neighbour at ``offsets_zyx[a]`` is in the ROI with level ``levels[j]``.
    levels : ndarray of int64, shape (n_levels,)
        Grey levels present in the ROI, ascending.
    offsets_zyx : ndarray of int64, shape (n_offsets, 3)
        The offsets, in PyRadiomics' angle order.
    """
    offsets_zyx = offsets(distances, bool(force2d), force2d_dimension, False)
    index, levels = roi_levels(binned, mask, pad=int(np.abs(offsets_zyx).max()))
    size_gib = len(offsets_zyx) * len(levels) ** 2 * 8 / 2**30
    if size_gib > _MAX_GIB:
        raise InputError(
            "binned",
            f"{len(levels)} grey levels in the ROI would need {size_gib:.1f} GiB of GLCMs; "
            "discretise more coarsely (larger binWidth or smaller binCount)",
        )
    counts = np.zeros((len(offsets_zyx), len(levels), len(levels)))
    count_pairs(index.reshape(-1), flat_steps(offsets_zyx, index.shape), counts)
    return counts, levels, offsets_zyx


class _Matrices:
    """Normalised GLCMs (n_angles, N, N) and the sums features share, computed on demand."""

    def __init__(self, p, levels):
        self.p = p
        self.g = levels.astype(np.float64)
        self.ng = int(levels[-1])  # highest grey level in the ROI, PyRadiomics' Ng

    @cached_property
    def px(self):
        return self.p.sum(axis=2)

    @cached_property
    def py(self):
        return self.p.sum(axis=1)

    @cached_property
    def ux(self):
        return self.px @ self.g

    @cached_property
    def uy(self):
        return self.py @ self.g

    def _by_level_pairs(self, keys):
        # the distinct values k of keys[i, j], and per angle the sum of p(i, j)
        # over the pairs with keys[i, j] == k (values that never occur add
        # nothing to any feature, so they are not listed)
        k, inverse = np.unique(keys, return_inverse=True)
        n_angles = self.p.shape[0]
        flat = (inverse.ravel()[None, :] + len(k) * np.arange(n_angles)[:, None]).ravel()
        sums = np.bincount(flat, weights=self.p.ravel(), minlength=n_angles * len(k))
        return k, sums.reshape(n_angles, len(k))

    @cached_property
    def _sums(self):
        return self._by_level_pairs(self.g[:, None] + self.g[None, :])

    @property
    def k_sum(self):
        """Values of i + j."""
        return self._sums[0]

    @property
    def p_sum(self):
        """:math:`p_{x+y}(k)`, (n_angles, len(k_sum))."""
        return self._sums[1]

    @cached_property
    def _differences(self):
        return self._by_level_pairs(np.abs(self.g[:, None] - self.g[None, :]))

    @property
    def k_diff(self):
        """Values of abs(i - j), ascending, starting at 0."""
        return self._differences[0]

    @property
    def p_diff(self):
        """:math:`p_{x-y}(k)`, (n_angles, len(k_diff))."""
        return self._differences[1]

    @cached_property
    def hxy(self):
        return -np.sum(self.p * np.log2(self.p + _EPS), axis=(1, 2))

    @cached_property
    def hx(self):
        return -np.sum(self.px * np.log2(self.px + _EPS), axis=1)

    @cached_property
    def hy(self):
        return -np.sum(self.py * np.log2(self.py + _EPS), axis=1)

    @cached_property
    def pxpy(self):
        return self.px[:, :, None] * self.py[:, None, :]

    @cached_property
    def log_pxpy(self):
        return np.log2(self.pxpy + _EPS)

    def sum_moment(self, power):
        centre = (self.ux + self.uy)[:, None]
        return np.sum(self.p_sum * (self.k_sum[None, :] - centre) ** power, axis=1)


# Each function returns the per-angle values of one feature.


def _autocorrelation(m):
    r"""Autocorrelation: :math:`\sum_{i,j} p(i,j)\,i\,j`."""
    return (m.p @ m.g) @ m.g


def _joint_average(m):
    r"""Joint Average: :math:`\mu_x = \sum_{i,j} p(i,j)\,i` (averaged with mean, not nanmean)."""
    return m.ux


def _cluster_prominence(m):
    r"""Cluster Prominence: :math:`\sum_{i,j} (i+j-\mu_x-\mu_y)^4 p(i,j)`."""
    return m.sum_moment(4)


def _cluster_shade(m):
    r"""Cluster Shade: :math:`\sum_{i,j} (i+j-\mu_x-\mu_y)^3 p(i,j)`."""
    return m.sum_moment(3)


def _cluster_tendency(m):
    r"""Cluster Tendency: :math:`\sum_{i,j} (i+j-\mu_x-\mu_y)^2 p(i,j)`."""
    return m.sum_moment(2)


def _contrast(m):
    r"""Contrast: :math:`\sum_{i,j} (i-j)^2 p(i,j)`."""
    return m.p_diff @ m.k_diff**2


def _correlation(m):
    r"""Correlation:
    :math:`\frac{\sum_{i,j} p(i,j)(i-\mu_x)(j-\mu_y)}{\sigma_x \sigma_y + \epsilon}`, 1 where
    :math:`\sigma_x \sigma_y = 0`.
    """
    dx = m.g[None, :] - m.ux[:, None]
    dy = m.g[None, :] - m.uy[:, None]
    sigx = np.sqrt(np.sum(m.px * dx**2, axis=1))
    sigy = np.sqrt(np.sum(m.py * dy**2, axis=1))
    corm = np.sum(dx * (m.p @ dy[:, :, None])[:, :, 0], axis=1)
    corr = corm / (sigx * sigy + _EPS)
    corr[sigx * sigy == 0] = 1.0
    return corr


def _difference_average(m):
    r"""Difference Average: :math:`DA = \sum_k k\,p_{x-y}(k)`."""
    return m.p_diff @ m.k_diff


def _difference_entropy(m):
    r"""Difference Entropy: :math:`-\sum_k p_{x-y}(k) \log_2(p_{x-y}(k)+\epsilon)`."""
    return -np.sum(m.p_diff * np.log2(m.p_diff + _EPS), axis=1)


def _difference_variance(m):
    r"""Difference Variance: :math:`\sum_k (k-DA)^2 p_{x-y}(k)`."""
    da = _difference_average(m)
    return np.sum(m.p_diff * (m.k_diff[None, :] - da[:, None]) ** 2, axis=1)


def _dissimilarity(m):
    r"""Dissimilarity (deprecated): :math:`\sum_{i,j} |i-j|\,p(i,j)`, equal to Difference Average.

    PyRadiomics computes no value for it; radflow returns the value.
    """
    return _difference_average(m)


def _joint_energy(m):
    r"""Joint Energy (angular second moment): :math:`\sum_{i,j} p(i,j)^2`."""
    return np.sum(m.p * m.p, axis=(1, 2))


def _joint_entropy(m):
    r"""Joint Entropy: :math:`HXY = -\sum_{i,j} p(i,j) \log_2(p(i,j)+\epsilon)`."""
    return m.hxy


def _homogeneity1(m):
    r"""Homogeneity 1 (deprecated): :math:`\sum_{i,j} \frac{p(i,j)}{1+|i-j|}`, equal to Id.

    PyRadiomics computes no value for it; radflow returns the value.
    """
    return _id(m)


def _homogeneity2(m):
    r"""Homogeneity 2 (deprecated): :math:`\sum_{i,j} \frac{p(i,j)}{1+|i-j|^2}`, equal to Idm.

    PyRadiomics computes no value for it; radflow returns the value.
    """
    return _idm(m)


def _imc1(m):
    r"""Informational Measure of Correlation 1: :math:`\frac{HXY-HXY1}{\max(HX, HY)}`, 0 where
    the maximum is 0.
    """
    hxy1 = -np.sum(m.p * m.log_pxpy, axis=(1, 2))
    div = np.fmax(m.hx, m.hy)
    imc1 = m.hxy - hxy1
    nonzero = div != 0
    imc1[nonzero] /= div[nonzero]
    imc1[~nonzero] = 0.0
    return imc1


def _imc2(m):
    r"""Informational Measure of Correlation 2: :math:`\sqrt{1-e^{-2(HXY2-HXY)}}`, 0 where
    :math:`HXY2 = HXY`.
    """
    hxy2 = -np.sum(m.pxpy * m.log_pxpy, axis=(1, 2))
    with np.errstate(
        invalid="ignore"
    ):  # a round-off negative radicand gives NaN, as in PyRadiomics
        imc2 = np.sqrt(1 - np.power(np.e, -2 * (hxy2 - m.hxy)))
    imc2[hxy2 == m.hxy] = 0.0
    return imc2


def _idm(m):
    r"""Inverse Difference Moment: :math:`\sum_k \frac{p_{x-y}(k)}{1+k^2}`."""
    return m.p_diff @ (1 / (1 + m.k_diff**2))


def _mcc(m):
    r"""Maximal Correlation Coefficient: :math:`\sqrt{\lambda_2(Q)}`, second largest eigenvalue of
    :math:`Q(i,j) = \sum_k \frac{p(i,k)\,p(j,k)}{p_x(i)\,p_y(k)}`; 1 when a single grey level.

    PyRadiomics adds :math:`\epsilon` to the denominator and takes a general
    eigendecomposition of :math:`Q`. Here :math:`Q = D_x^{-1} P D_y^{-1} P^T`
    is handled through the symmetric matrix :math:`B B^T`,
    :math:`B = D_x^{-1/2} P D_y^{-1/2}`, which has the same eigenvalues: ten
    times faster, and exact where PyRadiomics is perturbed by round-off.
    """
    n_angles, n, _ = m.p.shape
    if np.isnan(m.p).any():  # PyRadiomics' eigvals fails on NaN and it records NaN
        return np.full(n_angles, np.nan)
    if n < 2:
        return np.ones(1)
    with np.errstate(divide="ignore"):
        rx = np.where(m.px > 0, 1 / np.sqrt(m.px), 0.0)
        ry = np.where(m.py > 0, 1 / np.sqrt(m.py), 0.0)
    b = m.p * rx[:, :, None] * ry[:, None, :]
    eigenvalues = np.linalg.eigvalsh(b @ b.transpose(0, 2, 1))  # ascending
    # a round-off negative eigenvalue: PyRadiomics' complex sqrt has real part 0
    return np.sqrt(np.clip(eigenvalues[:, -2], 0, None))


def _idmn(m):
    r"""Inverse Difference Moment Normalized: :math:`\sum_k \frac{p_{x-y}(k)}{1+k^2/N_g^2}`."""
    return m.p_diff @ (1 / (1 + m.k_diff**2 / m.ng**2))


def _id(m):
    r"""Inverse Difference: :math:`\sum_k \frac{p_{x-y}(k)}{1+k}`."""
    return m.p_diff @ (1 / (1 + m.k_diff))


def _idn(m):
    r"""Inverse Difference Normalized: :math:`\sum_k \frac{p_{x-y}(k)}{1+k/N_g}`."""
    return m.p_diff @ (1 / (1 + m.k_diff / m.ng))


def _inverse_variance(m):
    r"""Inverse Variance: :math:`\sum_{k \ge 1} \frac{p_{x-y}(k)}{k^2}`."""
    return m.p_diff[:, 1:] @ (1 / m.k_diff[1:] ** 2)


def _maximum_probability(m):
    r"""Maximum Probability (joint maximum): :math:`\max_{i,j} p(i,j)`."""
    return m.p.max(axis=(1, 2))


def _sum_average(m):
    r"""Sum Average: :math:`SA = \sum_k k\,p_{x+y}(k)`."""
    return m.p_sum @ m.k_sum


def _sum_entropy(m):
    r"""Sum Entropy: :math:`-\sum_k p_{x+y}(k) \log_2(p_{x+y}(k)+\epsilon)`."""
    return -np.sum(m.p_sum * np.log2(m.p_sum + _EPS), axis=1)


def _sum_variance(m):
    r"""Sum Variance (deprecated): :math:`\sum_k (k-SA)^2 p_{x+y}(k)`, equal to Cluster Tendency.

    PyRadiomics computes no value for it; radflow returns the value.
    """
    sa = _sum_average(m)
    return np.sum(m.p_sum * (m.k_sum[None, :] - sa[:, None]) ** 2, axis=1)


def _sum_squares(m):
    r"""Sum of Squares (joint variance): :math:`\sum_{i,j} (i-\mu_x)^2 p(i,j)`."""
    return np.sum(m.px * (m.g[None, :] - m.ux[:, None]) ** 2, axis=1)


# name -> (per-angle function, IBSI id, default). Order: PyRadiomics' documentation.
_DEFINITIONS = {
    "Autocorrelation": (_autocorrelation, "QWB0", True),
    "JointAverage": (_joint_average, "60VM", True),
    "ClusterProminence": (_cluster_prominence, "AE86", True),
    "ClusterShade": (_cluster_shade, "7NFM", True),
    "ClusterTendency": (_cluster_tendency, "DG8W", True),
    "Contrast": (_contrast, "ACUI", True),
    "Correlation": (_correlation, "NI2N", True),
    "DifferenceAverage": (_difference_average, "TF7R", True),
    "DifferenceEntropy": (_difference_entropy, "NTRS", True),
    "DifferenceVariance": (_difference_variance, "D3YU", True),
    "Dissimilarity": (_dissimilarity, "8S9J", False),
    "JointEnergy": (_joint_energy, "8ZQL", True),
    "JointEntropy": (_joint_entropy, "TU9B", True),
    "Homogeneity1": (_homogeneity1, None, False),
    "Homogeneity2": (_homogeneity2, None, False),
    "Imc1": (_imc1, "R8DG", True),
    "Imc2": (_imc2, "JN9H", True),
    "Idm": (_idm, "WF0Z", True),
    "MCC": (_mcc, None, True),
    "Idmn": (_idmn, "1QCO", True),
    "Id": (_id, "IB1Z", True),
    "Idn": (_idn, "NDRX", True),
    "InverseVariance": (_inverse_variance, "E8JP", True),
    "MaximumProbability": (_maximum_probability, "GYBY", True),
    "SumAverage": (_sum_average, "ZGXS", True),
    "SumEntropy": (_sum_entropy, "P6QZ", True),
    "SumVariance": (_sum_variance, "OEEB", False),
    "SumSquares": (_sum_squares, "UR99", True),
}

FEATURES = declare(FAMILY, _DEFINITIONS)
#: Features PyRadiomics averages over the angles with a plain mean (NaN angles included).
_AVERAGES = {"JointAverage": mean}


def _weights(offsets_zyx, spacing_zyx, weighting_norm):
    """Weight of each offset's matrix in the sum, :math:`e^{-d^2}`; None without weighting."""
    if weighting_norm is None:
        return None
    lengths = offset_lengths_mm(offsets_zyx, spacing_zyx, weighting_norm)
    return np.ones(len(lengths)) if weighting_norm == "no_weighting" else np.exp(-(lengths**2))


@document
def compute(
    binned,
    mask,
    *,
    distances=(1,),
    symmetric=True,
    weighting_norm=None,
    spacing_zyx=(1.0, 1.0, 1.0),
    force2d=False,
    force2d_dimension=0,
    features=None,
) -> dict[str, float]:
    """GLCM features of one ROI, equal to PyRadiomics' ``RadiomicsGLCM``.

    Parameters
    ----------
    %(image)s
    %(distances)s
    symmetric : bool
        Count each pair in both directions (``symmetricalGLCM``).
    %(weighting)s
    %(force2d)s

    Returns
    -------
    dict of str to float
        PyRadiomics feature name -> value. NaN where PyRadiomics gives NaN:
        e.g. an ROI in which no voxel has an ROI neighbour at any offset.

    %(raises)s

    Examples
    --------
    >>> import numpy as np
    >>> binned = np.array([[[1, 1, 2], [2, 2, 1]]])  # one slice, (z, y, x)
    >>> compute(binned, binned > 0, force2d=True, features=["Contrast", "JointEnergy"])
    {'Contrast': 0.625, 'JointEnergy': 0.375}
    """
    names = check_directional(features, FEATURES, "GLCM", weighting_norm, spacing_zyx)
    if not isinstance(symmetric, (bool, np.bool_)):
        raise SettingsError(f"symmetric must be True or False, got {symmetric!r}")
    counts, levels, offsets_zyx = cooccurrence(
        binned, mask, distances=distances, force2d=force2d, force2d_dimension=force2d_dimension
    )
    if symmetric:
        counts += counts.transpose(0, 2, 1)
    counts = combine_directions(counts, _weights(offsets_zyx, spacing_zyx, weighting_norm))
    matrices = _Matrices(counts / totals(counts)[:, None, None], levels)
    return evaluate(names, _DEFINITIONS, matrices, _AVERAGES)
