r"""GLCM feature maps: PyRadiomics 3.0.1 voxel mode (``voxelBased=True``), one value per centre.

For each centre the kernel is its box (:mod:`radflow.features.voxel._kernel`); a pair counts
when both voxels lie in the box and in ``kernel_mask`` (PyRadiomics' ``calculate_glcm`` with a
bounding box per voxel). The features and their formulas are those of
:mod:`radflow.features.glcm`, evaluated per kernel as PyRadiomics' voxel mode does:

- grey levels keep their bin values :math:`i` (the ROI-level grey levels of PyRadiomics'
  ``grayLevels``; levels absent from a kernel only add zero rows), and :math:`N_g` in Idmn and
  Idn is the ROI-level ``n_levels``;
- an offset with no pair in a kernel gives NaN for that kernel and is skipped by the average
  over offsets (``nanmean``), except for JointAverage, which PyRadiomics averages with a plain
  mean: it is NaN at every centre where an offset is empty that some other centre's kernel
  fills (offsets empty in every kernel are deleted before averaging, as PyRadiomics does);
- MCC is the square root of the second largest eigenvalue of :math:`Q`; PyRadiomics pads
  :math:`Q` with the zero rows of the ROI levels absent from the kernel, so a kernel with one
  grey level gives 0, and a ROI with a single grey level gives 1 everywhere.

Computation: one pass per centre in a compiled kernel. The kernel's grey levels get local slots
(a lookup reset after each centre); the pairs of one offset (or, with ``weightingNorm``, of all
offsets into their weighted sum) are counted into one small matrix over those slots only, and
the features are evaluated from its non-zero entries (the entry list kept while counting)
before the next offset reuses it. The cost per centre is the kernel's pairs plus its entries,
independent of ``n_levels``; the working set is one (kernel levels)^2 matrix.
Slots follow grey-level order and the entries are visited in :math:`(i, j)` order (one bit mask
per row, or a sort for kernels of more than 64 levels), so sums run in PyRadiomics' order and
round the same way: exact ties such as :math:`\sigma_x \sigma_y = 0` (Correlation 1) fall the
same side. Nothing else is allocated per centre or offset. Without weighting the counts are integers
and :math:`p \log_2(p + \epsilon)` is looked up per count value; :math:`HXY1` and :math:`HXY2`
come from the marginals' logs plus the first-order term of :math:`\epsilon` (the direct sums
where that term is not tiny, where :math:`\max(HX, HY) < 0.01`, and near the Imc2 tie
:math:`HXY2 = HXY`), equal to the direct sums to ~1e-15.
With ``weightingNorm``, weights more than :math:`1/\epsilon` apart (e.g. 5 mm slices beside
1 mm pixels: :math:`e^{-25}`) leave a near-flat kernel whose Imc1/Imc2/Correlation are rounding
noise in PyRadiomics and here alike.
MCC takes :math:`Q`'s eigenvalues from the symmetric matrix
:math:`C C^T`, :math:`C = D_x^{-1/2} P D_y^{-1/2}` (similar to :math:`Q`), over the levels
present only, with its known top eigenpair :math:`(1, \sqrt{p_x})` removed, through a compiled
Householder tridiagonalisation and Laguerre's iteration for the largest remaining eigenvalue
(checked by Sturm counts, bisection as fallback), in preallocated work arrays. With
``symmetricalGLCM`` :math:`C` itself is symmetric, :math:`C C^T = C^2`, and the second largest
eigenvalue of :math:`Q` is the square of the largest :math:`|\lambda|` of :math:`C` less its top
eigenpair: no matrix product.

Differences from PyRadiomics (documented, deliberate):

- MCC: PyRadiomics' ``numpy.linalg.eigvals`` refuses the NaN of an empty offset, so when any
  centre's kernel has an empty offset (common with ``maskedKernel`` near the ROI border) the
  whole MCC map keeps ``initValue``; here each centre gets its value, the empty offsets skipped
  as for every other feature. Where PyRadiomics' eigenvalue is rounding noise around 0 its
  result is 0, a NaN or a value below 1e-7; here it is the square root of the clamped value.
- The deprecated features (Dissimilarity, Homogeneity1, Homogeneity2, SumVariance), which
  PyRadiomics leaves at ``initValue``, get the value of their equivalent feature, as in
  :mod:`radflow.features.glcm`.
"""

from __future__ import annotations

import collections

import numba
import numpy as np

from radflow.features import glcm as _segment
from radflow.features._checks import requested_features
from radflow.features._directions import offset_lengths_mm, offsets
from radflow.features.voxel._kernel import (
    document_maps,
    half_widths,
    kernel_box,
    kernel_levels,
    mean_over_matrices,
)
from radflow.features.voxel._sizes import prepare

__all__ = ["compute_maps"]

_EPS = np.spacing(1)

#: Features the compiled kernel computes, in its output column order.
_COLUMNS = (
    "Autocorrelation",
    "JointAverage",
    "ClusterProminence",
    "ClusterShade",
    "ClusterTendency",
    "Contrast",
    "Correlation",
    "DifferenceAverage",
    "DifferenceEntropy",
    "DifferenceVariance",
    "JointEnergy",
    "JointEntropy",
    "Imc1",
    "Imc2",
    "Idm",
    "MCC",
    "Idmn",
    "Id",
    "Idn",
    "InverseVariance",
    "MaximumProbability",
    "SumAverage",
    "SumEntropy",
    "SumSquares",
)
#: Deprecated features and the column whose value they equal.
_DEPRECATED = {
    "Dissimilarity": "DifferenceAverage",
    "Homogeneity1": "Id",
    "Homogeneity2": "Idm",
    "SumVariance": "ClusterTendency",
}
_JA = _COLUMNS.index("JointAverage")
_MCC = _COLUMNS.index("MCC")
#: Work arrays of :func:`_glcm_maps`, allocated once per call (see there for each).
_Work = collections.namedtuple(
    "_Work",
    "ei ej oi oj rowmask px py lx ly rx ry sum_k diff_k plog plog_stamp rowpos colpos "
    "c_work m_work tri_d tri_e2 hh_v hh_p",
)
#: de Bruijn sequence and table: the index of the lowest set bit of a uint64 ``b`` is
#: ``_DEBRUIJN_INDEX[((b & -b) * _DEBRUIJN) >> 58]``.
_DEBRUIJN = np.uint64(0x03F79D71B4CB0A89)
_DEBRUIJN_INDEX = np.zeros(64, dtype=np.int64)
for _bit in range(64):
    _DEBRUIJN_INDEX[(((1 << _bit) * int(_DEBRUIJN)) % 2**64) >> 58] = _bit
del _bit
#: First-order term of log2(1 + u) = u / ln 2 for u = eps / (p_x p_y) (see _matrix_features).
_EPS_LN2 = float(np.spacing(1.0) / np.log(2.0))
#: Bound above the eigenvalues MCC solves for (C less its top eigenpair: [-1, 1]; C C^T less
#: it: [0, 1]), with room for rounding; where it is not above them the Sturm check falls back
#: to bisection over the whole Gershgorin interval.
_UPPER = 1.0 + 1e-9


@document_maps
def compute_maps(
    image,
    binned,
    kernel_mask,
    centres,
    *,
    n_levels,
    kernel_radius,
    settings,
    spacing_zyx,
    features,
    empty_offsets=None,
) -> dict[str, np.ndarray]:
    """GLCM features of the kernel of each centre, as PyRadiomics 3.0.1 voxel mode.

    Parameters
    ----------
    image : ndarray of float64, shape (z, y, x)
        Intensities of the box (unused: GLCM works on ``binned``).
    %(binned)s
    %(kernel_mask)s
    %(centres)s
    %(n_levels)s
    %(kernel_radius)s
    settings : radflow.params.extraction.Settings
        Reads ``distances``, ``symmetrical_glcm``, ``weighting_norm``, ``force_2d``,
        ``force_2d_dimension``.
    spacing_zyx : sequence of 3 float
        Voxel spacing, mm (``weightingNorm`` weights).
    features : iterable of str or None
        PyRadiomics GLCM feature names; None: the non-deprecated ones.
    empty_offsets : array of bool, optional
        One flag per offset (in :func:`radflow.features._directions.offsets` order for
        ``binned.shape``): True where the offset has no pair in the kernel of *any* centre of the
        whole region (PyRadiomics deletes those before averaging JointAverage). Default: found
        from ``centres`` themselves, as one PyRadiomics call does; a caller that computes a
        region's centres in several calls passes the whole region's flags so that the pieces
        equal one call.

    Returns
    -------
    dict of str to ndarray of float64, shape (n,)
        Feature name -> value per centre (NaN where PyRadiomics gives NaN; see the module
        docstring for MCC and the deprecated features).

    Raises
    ------
    InputError, SettingsError
        Inconsistent arrays, ``kernel_radius`` < 1, unknown feature names
        (:func:`radflow.features.voxel._sizes.prepare`).
    """
    names = requested_features(features, _segment.FEATURES, "GLCM")
    binned, centres = prepare(image, binned, kernel_mask, centres, n_levels, kernel_radius)
    kmask = binned > 0  # prepare zeroes the levels outside kernel_mask
    force2d = bool(settings.force_2d)
    steps = offsets(
        settings.distances, force2d, settings.force_2d_dimension, False, size_zyx=binned.shape
    )
    if settings.weighting_norm is None:
        weights = np.empty(0)
    elif settings.weighting_norm == "no_weighting":
        weights = np.ones(len(steps))
    else:
        lengths = offset_lengths_mm(steps, spacing_zyx, settings.weighting_norm)
        weights = np.exp(-(lengths**2))
    present = np.unique(binned[kmask])  # PyRadiomics' grayLevels
    n_present = len(present)
    wanted = set(names) | {_DEPRECATED[n] for n in names if n in _DEPRECATED}
    out = np.full((len(centres), len(_COLUMNS)), np.nan)
    empty = np.zeros((len(centres), len(steps)), dtype=np.bool_)
    if len(centres) and len(steps):
        _glcm_maps(
            binned,
            kmask,
            centres,
            np.ascontiguousarray(steps),
            half_widths(kernel_radius, force2d, settings.force_2d_dimension),
            weights,
            bool(settings.symmetrical_glcm),
            int(n_levels),
            "Imc2" in wanted,
            "MCC" in wanted,
            out,
            empty,
        )
    if len(weights) == 0 and len(steps) > 1:
        # PyRadiomics deletes the offsets empty in every kernel; JointAverage (a plain mean)
        # is NaN where another offset is empty in this kernel.
        kept = ~empty.all(axis=0) if empty_offsets is None else ~np.asarray(empty_offsets, bool)
        out[empty[:, kept].any(axis=1), _JA] = np.nan
    if n_present < 2:
        out[:, _MCC] = 1.0  # PyRadiomics: a flat region gives 1
    return {name: out[:, _COLUMNS.index(_DEPRECATED.get(name, name))].copy() for name in names}


@numba.njit(cache=True)
def _glcm_maps(
    binned,
    kmask,
    centres,
    steps,
    half,
    weights,
    symmetric,
    n_levels,
    do_imc2,
    do_mcc,
    out,
    empty,
):
    """Fill ``out[c, :]`` (columns of ``_COLUMNS``) and ``empty[c, a]`` for each centre c."""
    sz, sy, sx = binned.shape
    na = steps.shape[0]
    weighted = weights.shape[0] > 0
    nm = 1 if weighted else na
    kvol = (2 * half[0] + 1) * (2 * half[1] + 1) * (2 * half[2] + 1)
    lmax = min(kvol, n_levels)
    slot = np.full(n_levels + 1, -1, np.int64)  # slot[0] stays -1: level 0 is outside
    glev = np.empty(lmax, np.int64)
    counts = np.zeros((lmax, lmax))
    cap = min(lmax * lmax, 2 * kvol * (na if weighted else 1))
    work = _Work(
        np.empty(cap + 1, np.int64),  # ei: rows of the non-zero cells, as counted (+1: the
        np.empty(cap + 1, np.int64),  # ej   branch-free append writes one past the last)
        np.empty(cap, np.int64),  # oi: the same cells in (i, j) order
        np.empty(cap, np.int64),  # oj
        np.zeros(lmax, np.uint64),  # rowmask
        np.zeros(lmax),  # px
        np.zeros(lmax),  # py
        np.zeros(lmax),  # lx: log2 px
        np.zeros(lmax),  # ly
        np.zeros(lmax),  # rx: 1 / px
        np.zeros(lmax),  # ry
        np.zeros(2 * n_levels + 1),  # sum_k
        np.zeros(n_levels + 1),  # diff_k
        np.zeros(2 * kvol + 1),  # plog: p log2(p + eps) of an integer count
        np.full(2 * kvol + 1, -1, np.int64),  # plog_stamp: the matrix plog holds it for
        np.empty(lmax, np.int64),  # rowpos
        np.empty(lmax, np.int64),  # colpos
        np.empty((lmax, lmax)),  # c_work
        np.empty((lmax, lmax)),  # m_work
        np.empty(lmax),  # tri_d
        np.empty(lmax),  # tri_e2
        np.empty(lmax),  # hh_v
        np.empty(lmax),  # hh_p
    )
    ei = work.ei
    ej = work.ej
    local = np.empty((2 * half[0] + 1, 2 * half[1] + 1, 2 * half[2] + 1), np.int64)
    values = np.empty((nm, out.shape[1]))
    ng = float(n_levels)
    stamp = 0
    for c in range(centres.shape[0]):
        cz, cy, cx = centres[c, 0], centres[c, 1], centres[c, 2]
        z0, z1, y0, y1, x0, x1 = kernel_box(cz, cy, cx, sz, sy, sx, half[0], half[1], half[2])
        # local slots of the grey levels in the kernel, in grey-level order so that the
        # entries run over (i, j) as PyRadiomics' sums do (same rounding)
        n_slots = kernel_levels(binned, kmask, z0, z1, y0, y1, x0, x1, slot, glev)
        _insertion_sort(glev, n_slots)
        for s in range(n_slots):
            slot[glev[s]] = s
        # the kernel's slots (-1 outside the kernel region), read by every offset
        for z in range(z0, z1):
            for y in range(y0, y1):
                for x in range(x0, x1):
                    local[z - z0, y - y0, x - x0] = slot[binned[z, y, x]]
        # one matrix at a time (each offset, or their weighted sum): the working set is one
        # matrix over the kernel's levels whatever the number of offsets
        box = (0, z1 - z0, 0, y1 - y0, 0, x1 - x0)
        n_entries = 0
        for a in range(na):
            w = weights[a] if weighted else 1.0
            if w != 0.0:  # an underflowed weight adds nothing
                n_entries = _count_pairs(
                    local, box, steps[a], w, symmetric, counts, ei, ej, n_entries
                )
            if weighted and a < na - 1:
                continue
            m = 0 if weighted else a
            stamp += 1
            _matrix_features(
                counts,
                n_entries,
                glev,
                n_slots,
                ng,
                not weighted,
                symmetric,
                stamp,
                do_imc2,
                do_mcc,
                work,
                values[m],
            )
            if not weighted:
                empty[c, m] = np.isnan(values[m, 0])
            for e in range(n_entries):
                counts[ei[e], ej[e]] = 0.0
            n_entries = 0
        # average over the matrices, NaN skipped (numpy.nanmean)
        mean_over_matrices(values, out[c])
        for s in range(n_slots):
            slot[glev[s]] = -1


@numba.njit(cache=True)
def _insertion_sort(a, n):
    """Sort ``a[:n]`` in place (a kernel's few grey levels; no allocation)."""
    for k in range(1, n):
        v = a[k]
        i = k - 1
        while i >= 0 and a[i] > v:
            a[i + 1] = a[i]
            i -= 1
        a[i + 1] = v


@numba.njit(cache=True)
def _count_pairs(local, box, step, w, symmetric, counts, ei, ej, n_entries):
    """Add ``w`` to ``counts[i, j]`` (and ``[j, i]`` when ``symmetric``) for each pair of kernel
    voxels at offset ``step`` inside ``box`` of ``local`` (the kernel's slots, -1 outside the
    kernel region); list new non-zero cells in ``ei, ej``. Returns the new number of entries."""
    z0, z1, y0, y1, x0, x1 = box
    dz, dy, dx = step[0], step[1], step[2]
    # the voxels whose neighbour at ``step`` stays in the box
    for z in range(max(z0, z0 - dz), min(z1, z1 - dz)):
        for y in range(max(y0, y0 - dy), min(y1, y1 - dy)):
            for x in range(max(x0, x0 - dx), min(x1, x1 - dx)):
                i = local[z, y, x]
                j = local[z + dz, y + dy, x + dx]
                if i < 0 or j < 0:
                    continue
                # branch-free append of a new cell: written always, kept when it was empty
                # (half the cells are new: a branch would be mispredicted)
                value = counts[i, j]
                ei[n_entries] = i
                ej[n_entries] = j
                n_entries += value == 0.0
                counts[i, j] = value + w
                if symmetric:
                    value = counts[j, i]
                    ei[n_entries] = j
                    ej[n_entries] = i
                    n_entries += value == 0.0
                    counts[j, i] = value + w
    return n_entries


@numba.njit(cache=True)
def _ordered_entries(ei, ej, n_entries, n_slots, lmax, rowmask, oi, oj):
    """The cells ``(ei, ej)[:n_entries]`` in (i, j) order into ``oi, oj``: through one bit mask
    per row (no sort, no allocation) when the kernel has at most 64 levels, else a sort."""
    if n_slots <= 64:
        one = np.uint64(1)
        for s in range(n_slots):
            rowmask[s] = 0
        for e in range(n_entries):
            rowmask[ei[e]] |= one << np.uint64(ej[e])
        k = 0
        for i in range(n_slots):
            bits = rowmask[i]
            while bits != 0:
                low = bits & (~bits + one)
                oi[k] = i
                oj[k] = _DEBRUIJN_INDEX[(low * _DEBRUIJN) >> np.uint64(58)]
                k += 1
                bits ^= low
    else:
        keys = np.empty(n_entries, np.int64)
        for e in range(n_entries):
            keys[e] = ei[e] * lmax + ej[e]
        keys = np.sort(keys)
        for e in range(n_entries):
            oi[e] = keys[e] // lmax
            oj[e] = keys[e] % lmax


@numba.njit(cache=True)
def _matrix_features(
    counts, n_entries, glev, n_slots, ng, integral, symmetric, stamp, do_imc2, do_mcc, work, values
):
    """Features of one co-occurrence matrix given by its non-zero cells ``work.ei, work.ej``.

    ``symmetric``: the matrix equals its transpose (``symmetricalGLCM``).
    ``integral``: the counts are integers (no weighting), so ``p log2(p + eps)`` is looked up
    per count value (``work.plog``, valid where ``work.plog_stamp`` equals ``stamp``).
    """
    eps = np.spacing(1.0)
    lmax = counts.shape[0]
    oi = work.oi
    oj = work.oj
    px = work.px
    py = work.py
    sum_k = work.sum_k
    diff_k = work.diff_k
    _ordered_entries(work.ei, work.ej, n_entries, n_slots, lmax, work.rowmask, oi, oj)
    total = 0.0
    for e in range(n_entries):
        total += counts[oi[e], oj[e]]
    if total == 0.0:
        values[:] = np.nan
        return
    for s in range(n_slots):
        px[s] = 0.0
        py[s] = 0.0
    plog = work.plog
    plog_stamp = work.plog_stamp
    ux = 0.0
    uy = 0.0
    autocorrelation = 0.0
    contrast = 0.0
    energy = 0.0
    hxy = 0.0
    max_p = 0.0
    for e in range(n_entries):
        i = oi[e]
        j = oj[e]
        n = counts[i, j]
        p = n / total
        gi = glev[i]
        gj = glev[j]
        px[i] += p
        py[j] += p
        ux += p * gi
        uy += p * gj
        autocorrelation += p * (gi * gj)
        d = abs(gi - gj)
        contrast += p * (d * d)
        energy += p * p
        if integral:
            k = int(n)
            if plog_stamp[k] != stamp:
                plog_stamp[k] = stamp
                plog[k] = p * np.log2(p + eps)
            hxy -= plog[k]
        else:
            hxy -= p * np.log2(p + eps)
        max_p = max(max_p, p)
        sum_k[gi + gj] += p
        diff_k[d] += p
    # marginal entropies; log2 p_x (without eps) and 1 / p_x for HXY1 and HXY2 below
    lx = work.lx
    ly = work.ly
    rx = work.rx
    ry = work.ry
    hx = 0.0
    hy = 0.0
    n_rows = 0
    n_cols = 0
    min_x = 1.0
    min_y = 1.0
    for s in range(n_slots):
        hx -= px[s] * np.log2(px[s] + eps)
        hy -= py[s] * np.log2(py[s] + eps)
        if px[s] > 0.0:
            n_rows += 1
            min_x = min(min_x, px[s])
        if py[s] > 0.0:
            n_cols += 1
            min_y = min(min_y, py[s])
    # HXY1 = -sum p log2(px py + eps) and HXY2 = -sum px py log2(px py + eps) through
    # log2(px py + eps) = log2 px + log2 py + u / ln 2 + O(u^2), u = eps / (px py): equal to
    # rounding (~1e-15) when u is tiny (integer counts give px py >= 1 / total^2); the direct
    # sums where u is not tiny, and where max(HX, HY) is small, as Imc1 divides by it (one grey
    # level: PyRadiomics' exact tie HXY == HXY1 gives 0 there)
    fast = eps / (min_x * min_y) < 1e-6 and max(hx, hy) > 0.01
    marg = 0.0  # sum px log2 px + sum py log2 py
    if fast:
        for s in range(n_slots):
            if px[s] > 0.0:
                rx[s] = 1.0 / px[s]
                lx[s] = np.log2(px[s])
                marg += px[s] * lx[s]
            if py[s] > 0.0:
                ry[s] = 1.0 / py[s]
                ly[s] = np.log2(py[s])
                marg += py[s] * ly[s]
    shade = 0.0
    prominence = 0.0
    tendency = 0.0
    sum_squares = 0.0
    var_y = 0.0
    corm = 0.0
    hxy1 = 0.0
    first_order = 0.0
    for e in range(n_entries):
        i = oi[e]
        j = oj[e]
        p = counts[i, j] / total
        dx = glev[i] - ux
        dy = glev[j] - uy
        t = glev[i] + glev[j] - ux - uy
        t2 = t * t
        tendency += p * t2
        shade += p * (t2 * t)
        prominence += p * (t2 * t2)
        sum_squares += p * dx**2
        var_y += p * dy**2
        corm += p * dx * dy
        if fast:
            first_order += p * rx[i] * ry[j]
        else:
            hxy1 -= p * np.log2(px[i] * py[j] + eps)
    if fast:
        hxy1 = -marg - _EPS_LN2 * first_order
    # difference and sum distributions over their ranges in the kernel, in index order
    span = glev[n_slots - 1] - glev[0]
    diff_average = 0.0
    diff_entropy = 0.0
    idm = 0.0
    idmn = 0.0
    id_ = 0.0
    idn = 0.0
    inverse_variance = 0.0
    for d in range(span + 1):
        pd = diff_k[d]
        if pd == 0.0:
            continue
        diff_average += d * pd
        diff_entropy -= pd * np.log2(pd + eps)
        idm += pd / (1 + d * d)
        idmn += pd / (1 + (d * d) / (ng * ng))
        id_ += pd / (1 + d)
        idn += pd / (1 + d / ng)
        if d > 0:
            inverse_variance += pd / (d * d)
    diff_variance = 0.0
    for d in range(span + 1):
        pd = diff_k[d]
        if pd != 0.0:
            diff_variance += pd * (d - diff_average) ** 2
            diff_k[d] = 0.0
    sum_average = 0.0
    sum_entropy = 0.0
    for k in range(2 * glev[0], 2 * glev[n_slots - 1] + 1):
        ps = sum_k[k]
        if ps != 0.0:
            sum_average += k * ps
            sum_entropy -= ps * np.log2(ps + eps)
            sum_k[k] = 0.0
    sig = np.sqrt(sum_squares) * np.sqrt(var_y)
    correlation = 1.0 if sig == 0.0 else corm / (sig + eps)
    div = max(hx, hy)
    imc1 = (hxy - hxy1) / div if div != 0.0 else 0.0
    imc2 = np.nan
    if do_imc2:
        hxy2 = 0.0
        if fast:
            hxy2 = -marg - _EPS_LN2 * (n_rows * n_cols)
        if not fast or hxy2 - hxy < 1e-5:
            # PyRadiomics' sum: exact ties (HXY2 == HXY, e.g. one grey level) give 0 as there
            hxy2 = 0.0
            for i in range(n_slots):
                if px[i] == 0.0:
                    continue
                for j in range(n_slots):
                    if py[j] == 0.0:
                        continue
                    pp = px[i] * py[j]
                    hxy2 -= pp * np.log2(pp + eps)
        if hxy2 == hxy:
            imc2 = 0.0
        else:
            base = 1.0 - np.exp(-2.0 * (hxy2 - hxy))
            imc2 = np.sqrt(base) if base >= 0.0 else np.nan
    mcc = np.nan
    if do_mcc:
        mcc = _mcc(counts, n_entries, total, n_slots, symmetric, work)
    values[0] = autocorrelation
    values[1] = ux
    values[2] = prominence
    values[3] = shade
    values[4] = tendency
    values[5] = contrast
    values[6] = correlation
    values[7] = diff_average
    values[8] = diff_entropy
    values[9] = diff_variance
    values[10] = energy
    values[11] = hxy
    values[12] = imc1
    values[13] = imc2
    values[14] = idm
    values[15] = mcc
    values[16] = idmn
    values[17] = id_
    values[18] = idn
    values[19] = inverse_variance
    values[20] = max_p
    values[21] = sum_average
    values[22] = sum_entropy
    values[23] = sum_squares


@numba.njit(cache=True)
def _mcc(counts, n_entries, total, n_slots, symmetric, work):
    """Square root of the second largest eigenvalue of PyRadiomics' Q (see module docstring).

    :math:`Q` is similar to :math:`C C^T`, :math:`C = D_x^{-1/2} P D_y^{-1/2}` over the levels
    present; :math:`C C^T` and :math:`C^T C` share their non-zero eigenvalues, so the smaller
    is used. Its largest eigenvalue is 1 with the unit eigenvector :math:`\\sqrt{p_x}` (resp.
    :math:`\\sqrt{p_y}`); removing it (:math:`M = C C^T - \\sqrt{p_x}\\sqrt{p_x}^T`) leaves the
    second largest as the largest eigenvalue of :math:`M`, found by :func:`_tridiagonalise` and
    :func:`_largest_eigenvalue`. Reads the cells ``work.oi, work.oj`` and the marginals
    ``work.px, work.py``; uses the other work arrays.
    """
    px = work.px
    py = work.py
    rowpos = work.rowpos
    colpos = work.colpos
    c = work.c_work
    m = work.m_work
    v = work.hh_v
    oi = work.oi
    oj = work.oj
    n_rows = 0
    n_cols = 0
    for s in range(n_slots):
        if px[s] > 0.0:
            rowpos[s] = n_rows
            n_rows += 1
        if py[s] > 0.0:
            colpos[s] = n_cols
            n_cols += 1
    if n_rows < 2 or n_cols < 2:
        return 0.0  # rank one: eigenvalues 1 and zeros
    if symmetric:
        # P = P^T: C is symmetric, Q's eigenvalues are the squares of C's, and C's top
        # eigenpair is (1, sqrt(px)); with it removed (C' = C - v v^T), the second largest
        # eigenvalue of Q is the largest |eigenvalue| of C'; no product C C^T
        n = n_rows
        scale = work.hh_p  # 1 / sqrt(total px) per slot
        for s in range(n_slots):
            if px[s] > 0.0:
                v[rowpos[s]] = np.sqrt(px[s])
                scale[s] = 1.0 / np.sqrt(total * px[s])
        for a in range(n):
            va = v[a]
            for b in range(a + 1):
                m[a, b] = -va * v[b]
        for e in range(n_entries):
            i = oi[e]
            j = oj[e]
            if i >= j:
                m[rowpos[i], rowpos[j]] += counts[i, j] * scale[i] * scale[j]
        d = work.tri_d
        e2 = work.tri_e2
        if n == 2:  # eigenvalues 0 (removed) and the trace
            return abs(m[0, 0] + m[1, 1])
        _tridiagonalise(m, n, d, e2, v, work.hh_p)
        top = _largest_eigenvalue(d, e2, n, _UPPER)
        if _count_below(d, e2, n, -top) == 0:
            return max(top, 0.0)
        for s in range(n):
            d[s] = -d[s]
        return max(top, _largest_eigenvalue(d, e2, n, _UPPER), 0.0)
    # M = B^T B - v v^T with B = C^T (n_cols x n_rows) or C, whichever has fewer columns;
    # B is stored row by row so that the inner loops run along rows
    rows_first = n_rows <= n_cols
    n = n_rows if rows_first else n_cols
    n_k = n_cols if rows_first else n_rows
    for k in range(n_k):
        for a in range(n):
            c[k, a] = 0.0
    for e in range(n_entries):
        i = oi[e]
        j = oj[e]
        value = (counts[i, j] / total) / np.sqrt(px[i] * py[j])
        if rows_first:
            c[colpos[j], rowpos[i]] = value
        else:
            c[rowpos[i], colpos[j]] = value
    for s in range(n_slots):
        if rows_first and px[s] > 0.0:
            v[rowpos[s]] = np.sqrt(px[s])
        elif not rows_first and py[s] > 0.0:
            v[colpos[s]] = np.sqrt(py[s])
    for a in range(n):
        va = v[a]
        for b in range(a + 1):
            m[a, b] = -va * v[b]
        for k in range(n_k):
            cka = c[k, a]
            if cka != 0.0:
                for b in range(a + 1):
                    m[a, b] += cka * c[k, b]
    _tridiagonalise(m, n, work.tri_d, work.tri_e2, v, work.hh_p)
    second = _largest_eigenvalue(work.tri_d, work.tri_e2, n, _UPPER)
    return np.sqrt(second) if second > 0.0 else 0.0


@numba.njit(cache=True)
def _tridiagonalise(m, n, d, e2, v, p):
    """Householder reduction of the symmetric ``m[:n, :n]`` to tridiagonal form: diagonal
    ``d[:n]``, squared off-diagonal ``e2[:n-1]``. Reads and overwrites the lower triangle only;
    ``v, p`` are work vectors."""
    for k in range(n - 2):
        # the column below the diagonal, x = m[k+1:n, k], sent to (alpha, 0, ..., 0)
        norm2 = 0.0
        for i in range(k + 1, n):
            norm2 += m[i, k] * m[i, k]
        d[k] = m[k, k]
        x0 = m[k + 1, k]
        tail = norm2 - x0 * x0
        if tail == 0.0:
            e2[k] = x0 * x0
            continue
        alpha = -np.sqrt(norm2) if x0 >= 0.0 else np.sqrt(norm2)
        e2[k] = norm2
        v[k + 1] = x0 - alpha
        for i in range(k + 2, n):
            v[i] = m[i, k]
        beta = 2.0 / (tail + v[k + 1] * v[k + 1])
        # p = beta A v over the trailing block A, from its lower triangle
        for i in range(k + 1, n):
            p[i] = 0.0
        for i in range(k + 1, n):
            vi = v[i]
            s = m[i, i] * vi
            for j in range(k + 1, i):
                mij = m[i, j]
                s += mij * v[j]
                p[j] += mij * vi
            p[i] += s
        vp = 0.0
        for i in range(k + 1, n):
            p[i] *= beta
            vp += v[i] * p[i]
        kk = 0.5 * beta * vp
        for i in range(k + 1, n):
            p[i] -= kk * v[i]
        # A -= v p^T + p v^T (lower triangle)
        for i in range(k + 1, n):
            vi = v[i]
            pi = p[i]
            for j in range(k + 1, i + 1):
                m[i, j] -= vi * p[j] + pi * v[j]
    if n >= 2:
        d[n - 2] = m[n - 2, n - 2]
        e2[n - 2] = m[n - 1, n - 2] * m[n - 1, n - 2]
    d[n - 1] = m[n - 1, n - 1]


@numba.njit(cache=True)
def _count_below(d, e2, n, x):
    """Number of eigenvalues of the tridiagonal (d, e2) below x (Sturm count)."""
    tiny = 1e-300
    count = 0
    q = d[0] - x
    if q < 0.0:
        count += 1
    for i in range(1, n):
        if q == 0.0:
            q = tiny
        q = d[i] - x - e2[i - 1] / q
        if q < 0.0:
            count += 1
    return count


@numba.njit(cache=True)
def _largest_eigenvalue(d, e2, n, upper):
    """Largest eigenvalue of the symmetric tridiagonal (d, e2).

    The matrix is split where an off-diagonal is below 4 eps times its largest entry (``e2``
    set to 0 there: a shift of the eigenvalues within the rounding of the tridiagonalisation,
    e.g. a repeated zero eigenvalue left as noise around 0); each unreduced block has
    simple eigenvalues, so :func:`_block_largest` converges fast on it (a multiple eigenvalue
    slows Laguerre's iteration to a linear rate).
    """
    norm = 0.0
    for k in range(n):
        norm = max(norm, abs(d[k]))
    for k in range(n - 1):
        norm = max(norm, np.sqrt(e2[k]))
    negligible = (4.0 * np.spacing(1.0) * norm) ** 2
    top = -np.inf
    start = 0
    for k in range(n - 1):
        if e2[k] <= negligible:
            e2[k] = 0.0
            top = max(top, _block_largest(d[start : k + 1], e2[start:k], k + 1 - start, upper))
            start = k + 1
    return max(top, _block_largest(d[start:n], e2[start : n - 1], n - start, upper))


@numba.njit(cache=True)
def _block_largest(d, e2, n, upper):
    """Largest eigenvalue of the symmetric tridiagonal (d, e2): Laguerre's iteration from above
    (from ``upper`` or the Gershgorin bound, whichever is lower; monotone, cubic), checked by
    Sturm counts; bisection over the Gershgorin interval if the check fails."""
    if n == 1:
        return d[0]
    lo = np.inf
    hi = -np.inf
    for i in range(n):
        r = 0.0
        if i > 0:
            r += np.sqrt(e2[i - 1])
        if i < n - 1:
            r += np.sqrt(e2[i])
        lo = min(lo, d[i] - r)
        hi = max(hi, d[i] + r)
    scale = max(abs(lo), abs(hi), 1e-300)
    x = min(hi, upper)
    fn = float(n)
    for _ in range(100):
        p0 = 0.0
        p1 = 1.0
        q0 = 0.0
        q1 = 0.0
        r0 = 0.0
        r1 = 0.0
        for i in range(n):
            a = d[i] - x
            b = e2[i - 1] if i > 0 else 0.0
            r2 = a * r1 - b * r0 - 2.0 * q1
            q2 = a * q1 - b * q0 - p1
            p2 = a * p1 - b * p0
            p0, p1 = p1, p2
            q0, q1 = q1, q2
            r0, r1 = r1, r2
            big = abs(p1)
            if big > 1e100 or (big < 1e-100 and big > 0.0):
                s = 1.0 / big
                p0 *= s
                p1 *= s
                q0 *= s
                q1 *= s
                r0 *= s
                r1 *= s
        if p1 == 0.0:
            break
        g = q1 / p1
        h = g * g - r1 / p1
        disc = (fn - 1.0) * (fn * h - g * g)
        denom = g + np.sqrt(disc) if disc > 0.0 else g
        if not denom > 0.0:
            break
        step = fn / denom
        if not step > 4e-16 * scale:
            if step > 0.0:
                x -= step
            break
        x -= step
    # check: every eigenvalue below x + tol, one at least above x - tol
    tol = 8e-16 * scale * n
    if _count_below(d, e2, n, x + tol) == n and _count_below(d, e2, n, x - tol) <= n - 1:
        return x
    return _bisect(d, e2, n, lo, hi)


@numba.njit(cache=True)
def _bisect(d, e2, n, lo, hi):
    """Largest eigenvalue by bisection on Sturm counts in [lo, hi]."""
    lo -= 1e-300
    while True:
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            return hi
        if _count_below(d, e2, n, mid) == n:
            hi = mid
        else:
            lo = mid
