r"""IBSI grey level co-occurrence matrix (GLCM) features, with the IBSI aggregation methods.

For a direction :math:`\mathbf{m}` (the 13 unit directions of the 26-neighbourhood
in 3D, the 4 in-plane ones in 2D) multiplied by the distance :math:`\delta`,
element :math:`(i, j)` of the :math:`N_g \times N_g` matrix counts the ROI
voxels of grey level :math:`i` whose neighbour at :math:`\delta\mathbf{m}` is a
ROI voxel of grey level :math:`j`; the IBSI matrix is symmetric,
:math:`\mathbf{M}_{\mathbf{m}} = \mathbf{M}_{\mathbf{m}_+} + \mathbf{M}_{\mathbf{m}_+}^T`.
Rows and columns run over all :math:`N_g` levels of the discretisation. IBSI
1 reference manual, section "Grey level co-occurrence based features" (LFYI).

Notation: :math:`p_{ij}` the matrix divided by its sum, :math:`p_{i.}`,
:math:`p_{.j}` the marginals with means :math:`\mu_{i.}`, :math:`\mu_{.j}`
and standard deviations :math:`\sigma_{i.}`, :math:`\sigma_{.j}`,
:math:`p_{i-j,k} = \sum_{|i-j|=k} p_{ij}` (:math:`k = 0..N_g-1`),
:math:`p_{i+j,k} = \sum_{i+j=k} p_{ij}` (:math:`k = 2..2N_g`); entropies use
:math:`\log_2` with :math:`0 \log 0 = 0`. Features, in registry order:

- joint maximum :math:`\max p_{ij}`; joint average :math:`\mu = \sum i\,p_{ij}`;
  joint variance :math:`\sum (i-\mu)^2 p_{ij}`; joint entropy :math:`-\sum p_{ij}\log_2 p_{ij}`
- difference average :math:`\mu_d = \sum_k k\,p_{i-j,k}`, variance
  :math:`\sum_k (k-\mu_d)^2 p_{i-j,k}`, entropy; sum average, variance, entropy likewise with
  :math:`p_{i+j}`
- angular second moment :math:`\sum p_{ij}^2`; contrast :math:`\sum (i-j)^2 p_{ij}`;
  dissimilarity :math:`\sum |i-j|\,p_{ij}`
- inverse difference :math:`\sum p_{ij}/(1+|i-j|)`, normalised :math:`\sum p_{ij}/(1+|i-j|/N_g)`;
  inverse difference moment :math:`\sum p_{ij}/(1+(i-j)^2)`, normalised
  :math:`\sum p_{ij}/(1+(i-j)^2/N_g^2)`; inverse variance :math:`\sum_{k\ge1} p_{i-j,k}/k^2`
- correlation :math:`(\sum i j\,p_{ij} - \mu_{i.}\mu_{.j})/(\sigma_{i.}\sigma_{.j})`
  (NaN when a marginal has zero variance: one grey level); autocorrelation :math:`\sum i j\,p_{ij}`
- cluster tendency, shade, prominence :math:`\sum (i+j-\mu_{i.}-\mu_{.j})^{2,3,4} p_{ij}`
- information correlation 1 :math:`(HXY-HXY_1)/\max(HX, HY)` (NaN when
  :math:`HX = HY = 0`) and 2 :math:`\sqrt{1-\exp(-2(HXY_2-HXY))}`, with
  :math:`HXY` the joint entropy, :math:`HX`, :math:`HY` the marginals' entropies,
  :math:`HXY_1 = -\sum p_{ij}\log_2(p_{i.}p_{.j})`,
  :math:`HXY_2 = -\sum p_{i.}p_{.j}\log_2(p_{i.}p_{.j})`

Pairs are counted by the kernel shared with PyRadiomics mode
(:func:`radflow.features._shared_kernels.count_pairs`), whose definition agrees.

References
----------
Haralick RM, Shanmugam K, Dinstein I. Textural features for image
classification. IEEE Trans Syst Man Cybern 1973;3(6):610-621.
doi:10.1109/TSMC.1973.4309314

Zwanenburg A et al. The Image Biomarker Standardization Initiative.
Radiology 2020;295(2):328-338. doi:10.1148/radiol.2020191145
"""

from __future__ import annotations

import numpy as np

from radflow.errors import InputError
from radflow.features._directions import flat_steps, offsets
from radflow.features._native import count_pairs
from radflow.features.ibsi.aggregation import document, slice_blocks, tagged_features, texture_input
from radflow.features.ibsi.registry import features

__all__ = ["FEATURES", "compute", "cooccurrence_matrices", "matrix_features"]

FEATURES = features("cm")
#: Largest matrix stack allowed (GiB); more means the image was not discretised.
_MAX_GIB = 2.0


@document
def cooccurrence_matrices(
    index: np.ndarray, n_levels: int, dimension: str, *, distance: int = 1, symmetric: bool = True
) -> np.ndarray:
    """Co-occurrence counts, one matrix per slice (2D) or for the volume (3D), per direction.

    Parameters
    ----------
    %(index)s
    dimension : {"2D", "3D"}
        The 4 in-plane directions per slice, or the 13 of the volume.
    distance : int
        :math:`\\delta`, voxels (the directions are multiplied by it).
    symmetric : bool
        Count each pair in both orders (the IBSI matrix). False counts
        along :math:`+\\mathbf{m}` only (non-standard).

    Returns
    -------
    ndarray of float64, shape (n_slices, n_directions, n_levels, n_levels)
        n_slices is 1 in 3D, else the slices holding ROI voxels.
    """
    directions = distance * offsets((1,), force2d=dimension == "2D")
    blocks = slice_blocks(index, dimension)
    size_gib = len(blocks) * len(directions) * n_levels**2 * 8 / 2**30
    if size_gib > _MAX_GIB:
        raise InputError(
            "levels",
            f"{n_levels} grey levels would need {size_gib:.1f} GiB of co-occurrence matrices; "
            "discretise more coarsely",
        )
    steps = flat_steps(directions, index.shape)
    out = np.zeros((len(blocks), len(directions), n_levels, n_levels))
    for block, matrices in zip(blocks, out):
        count_pairs(block.ravel(), steps, matrices)
    if symmetric:
        out += out.transpose(0, 1, 3, 2)
    return out


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-p @ np.log2(p))


def matrix_features(counts: np.ndarray) -> np.ndarray:
    """The 25 GLCM features of one (merged) matrix of counts, in registry order."""
    n_g = counts.shape[0]
    p = counts / counts.sum()
    g = np.arange(1, n_g + 1, dtype=np.float64)
    diff = np.abs(g[:, None] - g[None, :])
    total = g[:, None] + g[None, :]
    p_i, p_j = p.sum(axis=1), p.sum(axis=0)
    mu_i, mu_j = p_i @ g, p_j @ g
    sd_i, sd_j = np.sqrt(p_i @ (g - mu_i) ** 2), np.sqrt(p_j @ (g - mu_j) ** 2)
    p_diff = np.bincount(diff.astype(np.int64).ravel(), weights=p.ravel(), minlength=n_g)
    p_sum = np.bincount(total.astype(np.int64).ravel(), weights=p.ravel(), minlength=2 * n_g + 1)
    k_diff = np.arange(n_g, dtype=np.float64)
    k_sum = np.arange(2 * n_g + 1, dtype=np.float64)
    diff_avg = p_diff @ k_diff
    sum_avg = p_sum @ k_sum
    auto_corr = g @ p @ g
    spread = (total - mu_i - mu_j) * p
    hxy = _entropy(p)
    hx, hy = _entropy(p_i), _entropy(p_j)
    marginal_product = p_i[:, None] * p_j[None, :]
    occurring = p > 0  # implies both marginals > 0
    hxy1 = -p[occurring] @ np.log2(marginal_product[occurring])
    hxy2 = _entropy(marginal_product)
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = (auto_corr - mu_i * mu_j) / (sd_i * sd_j)
        info_corr1 = (hxy - hxy1) / max(hx, hy)
    return np.array(
        [
            p.max(),
            mu_i,
            p_i @ (g - mu_i) ** 2,
            hxy,
            diff_avg,
            p_diff @ (k_diff - diff_avg) ** 2,
            _entropy(p_diff),
            sum_avg,
            p_sum @ (k_sum - sum_avg) ** 2,
            _entropy(p_sum),
            np.sum(p * p),
            p_diff @ k_diff**2,
            diff_avg,
            p_diff @ (1.0 / (1.0 + k_diff)),
            p_diff @ (1.0 / (1.0 + k_diff / n_g)),
            p_diff @ (1.0 / (1.0 + k_diff**2)),
            p_diff @ (1.0 / (1.0 + (k_diff / n_g) ** 2)),
            p_diff[1:] @ (1.0 / k_diff[1:] ** 2),
            corr,
            auto_corr,
            np.sum(spread * (total - mu_i - mu_j)),
            np.sum(spread * (total - mu_i - mu_j) ** 2),
            np.sum(spread * (total - mu_i - mu_j) ** 3),
            info_corr1,
            np.sqrt(1.0 - np.exp(-2.0 * (hxy2 - hxy))),
        ]
    )


@document
def compute(
    levels,
    *,
    intensity_mask,
    n_levels,
    aggregations=("3D_avg", "3D_comb"),
    distance: int = 1,
    symmetric: bool = True,
) -> dict[str, float]:
    """IBSI GLCM features of one ROI.

    Parameters
    ----------
    %(image)s
    %(n_levels)s
    %(directional)s
    %(distance)s
    symmetric : bool
        True (IBSI): count each neighbour pair in both orders.

    Returns
    -------
    dict of str to float
        ``{"cm_joint_max_3D_avg": ..., ...}``: every GLCM tag of the
        requested aggregations; NaN only where undefined (see module docstring).

    %(raises)s
    """
    given = texture_input(
        levels, intensity_mask, n_levels, aggregations, directional=True, distance=distance
    )

    def build(dimension):
        matrices = cooccurrence_matrices(
            given.index, n_levels, dimension, distance=given.distance, symmetric=bool(symmetric)
        )
        return (matrices,), matrix_features

    return tagged_features(FEATURES, given.aggregations, build)
