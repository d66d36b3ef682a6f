r"""First-order feature maps, as PyRadiomics 3.0.1's ``firstorder`` in voxel mode.

For each centre the statistics of :mod:`radflow.features.firstorder` (same definitions,
same conventions: NumPy's linear percentiles, 0 skewness and kurtosis for a flat kernel,
``voxelArrayShift`` in the energies) are taken over the voxels of its kernel that
``kernel_mask`` keeps: the ROI voxels of the box ``[c - r, c + r]`` clipped to the array
(:mod:`radflow.features.voxel._kernel`) when ``maskedKernel``, every voxel of that box
otherwise. The histogram features (``Entropy``, ``Uniformity``) use ``binned``, the levels
PyRadiomics' class discretised from the float64 intensities over the discretisation region.

The kernel slides along x: the sorted intensities of the kernel are kept from one centre to
the next (the leaving column taken out and the sorted entering column merged in, in one O(k)
pass per step for a kernel of k voxels, instead of a sort of the whole kernel; a column is
sorted once, when it enters, and kept until it leaves), and so are the counts per grey level
with the list of levels present, ascending, from which ``Entropy`` and ``Uniformity`` are
summed (a value depends on its kernel only, not on the window's path). Only lines (or gaps)
that the window jumps over restart it. Memory is the output plus one kernel's working set.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np

from radflow.features._checks import requested_features
from radflow.features.firstorder import FEATURES
from radflow.features.voxel._kernel import half_widths, kernel_box, line_starts, slide_planes
from radflow.features.voxel._sizes import count_planes

__all__ = ["FEATURES", "compute_maps"]

FAMILY = "firstorder"
_NAMES = tuple(f.name for f in FEATURES)
_HISTOGRAM = frozenset({"Entropy", "Uniformity"})
_EPS = float(np.spacing(1))


def compute_maps(
    image,
    binned,
    kernel_mask,
    centres,
    *,
    n_levels: int,
    kernel_radius: int,
    settings,
    spacing_zyx: Sequence[float],
    features: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """First-order values of each centre's kernel, equal to PyRadiomics' voxel mode.

    Parameters
    ----------
    image : (z, y, x) array of float64
        Intensities of the padded box (after the image type's filter).
    binned : (z, y, x) array of int
        Grey levels ``1..n_levels`` where ``kernel_mask`` holds (0 elsewhere); read only
        for ``Entropy`` and ``Uniformity``.
    kernel_mask : (z, y, x) array of bool
        Voxels that count inside a kernel.
    centres : (n, 3) array of int
        Voxels (z, y, x) whose value is computed, in C order; each must lie in
        ``kernel_mask``.
    n_levels : int
        Largest grey level of ``binned``.
    kernel_radius : int
        PyRadiomics' ``kernelRadius``, >= 1.
    settings : radflow.params.extraction.Settings
        Reads ``voxel_array_shift``, ``force_2d`` and ``force_2d_dimension``.
    spacing_zyx : sequence of 3 float
        Voxel size, mm (``TotalEnergy``).
    features : sequence of str, optional
        Feature names (default: PyRadiomics' default-enabled ones).

    Returns
    -------
    dict of str to numpy.ndarray
        Feature name -> float64 array of shape ``(n,)``.

    Raises
    ------
    SettingsError
        An unknown feature name.
    ValueError
        Arrays of different shapes, a centre outside ``kernel_mask``, a kernel radius < 1.
    """
    wanted = requested_features(features, FEATURES, FAMILY)
    image = np.ascontiguousarray(image, dtype=np.float64)
    kernel_mask = np.ascontiguousarray(kernel_mask, dtype=bool)
    binned = np.ascontiguousarray(binned, dtype=np.int64)
    if not (image.ndim == 3 and image.shape == kernel_mask.shape == binned.shape):
        raise ValueError(
            f"image {image.shape}, binned {binned.shape} and kernel_mask {kernel_mask.shape} "
            "must be 3D arrays of one shape"
        )
    if int(kernel_radius) < 1:
        raise ValueError(f"kernel_radius must be >= 1, got {kernel_radius!r}")
    centres = np.ascontiguousarray(np.asarray(centres, dtype=np.int64).reshape(-1, 3))
    if centres.size and not kernel_mask[tuple(centres.T)].all():
        raise ValueError("every centre must lie inside kernel_mask")
    histogram = bool(_HISTOGRAM.intersection(wanted))
    if histogram and centres.size and binned[kernel_mask].min(initial=1) < 1:
        raise ValueError("binned must hold levels >= 1 wherever kernel_mask holds")
    n_levels = int(max(n_levels, binned.max(initial=0))) if histogram else 0
    half = half_widths(kernel_radius, settings.force_2d, settings.force_2d_dimension)
    voxel_volume = float(np.multiply.reduce(np.asarray(spacing_zyx, dtype=np.float64)[::-1]))
    out = np.empty((len(_NAMES), centres.shape[0]), dtype=np.float64)
    if centres.shape[0]:
        _maps(
            image,
            kernel_mask,
            np.where(kernel_mask, binned, 0),
            centres,
            line_starts(centres),
            half,
            float(settings.voxel_array_shift),
            voxel_volume,
            n_levels,
            histogram,
            out,
        )
    return {name: out[_NAMES.index(name)] for name in wanted}


# -- kernels --------------------------------------------------------------------


@numba.njit(cache=True)
def _columns(image, kernel_mask, z0, z1, y0, y1, xa, xb, buf):
    """The kernel-mask values of columns ``[xa, xb)`` of the box, sorted, into ``buf``; their
    count."""
    n = 0
    for x in range(xa, xb):
        for z in range(z0, z1):
            for y in range(y0, y1):
                if kernel_mask[z, y, x]:
                    buf[n] = image[z, y, x]
                    n += 1
    buf[:n].sort()
    return n


@numba.njit(cache=True)
def _slide(values, n, gone, n_gone, extra, n_extra, out):
    """``out``: the sorted ``values[:n]`` minus the sorted multiset ``gone[:n_gone]`` (a part
    of it) merged with the sorted ``extra[:n_extra]``, in one pass. Returns its length."""
    i = 0
    j = 0
    e = 0
    k = 0
    while i < n:
        v = values[i]
        i += 1
        if j < n_gone and v == gone[j]:
            j += 1
            continue
        while e < n_extra and extra[e] < v:
            out[k] = extra[e]
            k += 1
            e += 1
        out[k] = v
        k += 1
    while e < n_extra:
        out[k] = extra[e]
        k += 1
        e += 1
    return k


@numba.njit(cache=True)
def _percentile(ordered, n, q):
    """NumPy's linear percentile of the sorted ``ordered[:n]`` (its interpolation arithmetic)."""
    virtual = (n - 1) * (q / 100.0)
    below = int(np.floor(virtual))
    if below >= n - 1:
        return ordered[n - 1]
    gamma = virtual - below
    low = ordered[below]
    high = ordered[below + 1]
    if gamma >= 0.5:
        return high - (high - low) * (1.0 - gamma)
    return low + (high - low) * gamma


@numba.njit(cache=True)
def _statistics(ordered, n, shift, voxel_volume, out, k):
    """Every intensity statistic of the sorted kernel values ``ordered[:n]`` into ``out[:, k]``."""
    total = 0.0
    energy = 0.0
    for i in range(n):
        total += ordered[i]
        shifted = ordered[i] + shift
        energy += shifted * shifted
    mean = total / n
    m2 = 0.0
    m3 = 0.0
    m4 = 0.0
    mad = 0.0
    for i in range(n):
        d = ordered[i] - mean
        d2 = d * d
        m2 += d2
        m3 += d2 * d
        m4 += d2 * d2
        mad += abs(d)
    m2 /= n
    m3 /= n
    m4 /= n
    p10 = _percentile(ordered, n, 10.0)
    p25 = _percentile(ordered, n, 25.0)
    p75 = _percentile(ordered, n, 75.0)
    p90 = _percentile(ordered, n, 90.0)
    half = n // 2
    median = ordered[half] if n % 2 else (ordered[half - 1] + ordered[half]) / 2.0
    # The closed range [p10, p90] is a contiguous run of the sorted values.
    lo = 0
    while ordered[lo] < p10:
        lo += 1
    hi = n
    while ordered[hi - 1] > p90:
        hi -= 1
    # No value in [p10, p90] (two distinct values: both percentiles fall strictly between them):
    # PyRadiomics' mean of an empty slice, NaN.
    robust = np.nan
    if hi > lo:
        robust_total = 0.0
        for i in range(lo, hi):
            robust_total += ordered[i]
        robust_mean = robust_total / (hi - lo)
        robust = 0.0
        for i in range(lo, hi):
            robust += abs(ordered[i] - robust_mean)
        robust /= hi - lo
    scale = m2 if m2 != 0.0 else 1.0
    out[0, k] = energy
    out[1, k] = energy * voxel_volume
    out[3, k] = ordered[0]
    out[4, k] = p10
    out[5, k] = p90
    out[6, k] = ordered[n - 1]
    out[7, k] = mean
    out[8, k] = median
    out[9, k] = p75 - p25
    out[10, k] = ordered[n - 1] - ordered[0]
    out[11, k] = mad / n
    out[12, k] = robust
    out[13, k] = np.sqrt(energy / n)
    out[14, k] = np.sqrt(m2)
    out[15, k] = m3 / scale**1.5
    out[16, k] = m4 / scale**2.0
    out[17, k] = np.sqrt(m2) ** 2
    # out[2] (Entropy) and out[18] (Uniformity) come from the counts


@numba.njit(cache=True)
def _histogram(counts, present, n_present, n, out, k):
    """Entropy and uniformity from the counts of the levels present in the kernel (ascending,
    so a kernel's values do not depend on the window's path)."""
    entropy = 0.0
    uniformity = 0.0
    for t in range(n_present):
        p = counts[present[t]] / n
        entropy += p * np.log2(p + _EPS)
        uniformity += p * p
    out[2, k] = -1.0 * entropy
    out[18, k] = uniformity


@numba.njit(cache=True)
def _maps(
    image,
    kernel_mask,
    levels,
    centres,
    starts,
    half,
    shift,
    voxel_volume,
    n_levels,
    histogram,
    out,
):
    sz, sy, sx = image.shape
    hz, hy, hx = half[0], half[1], half[2]
    size = (2 * hz + 1) * (2 * hy + 1) * (2 * hx + 1)
    values = np.empty(size, dtype=np.float64)
    spare = np.empty(size, dtype=np.float64)
    gone = np.empty(size, dtype=np.float64)
    extra = np.empty(size, dtype=np.float64)
    width = 2 * hx + 1
    kept = np.empty((width, (2 * hz + 1) * (2 * hy + 1)), dtype=np.float64)
    kept_n = np.zeros(width, dtype=np.int64)
    counts = np.zeros(n_levels + 1, dtype=np.int64)
    present = np.empty(n_levels + 1, dtype=np.int64)
    n_present = 0
    n = 0
    window = np.zeros(4, np.int64)  # the columns held (slide_planes)
    for line in range(starts.size - 1):
        for k in range(starts[line], starts[line + 1]):
            z0, z1, y0, y1, x0, x1 = kernel_box(
                centres[k, 0], centres[k, 1], centres[k, 2], sz, sy, sx, hz, hy, hx
            )
            restart, leaving, entering, _, _ = slide_planes(window, x0, x1, k == starts[line])
            if restart:  # a new line, or no overlap with the columns held: empty them
                for t in range(n_present):
                    counts[present[t]] = 0
                n_present = 0
                n = 0
            # Columns leaving, entering: one merge pass. A column is sorted once, when it
            # enters, and kept (slot x % width) until it leaves.
            n_gone = 0
            for x in range(leaving[0], leaving[1]):
                m = kept_n[x % width]
                gone[n_gone : n_gone + m] = kept[x % width, :m]
                n_gone += m
            if leaving[1] - leaving[0] > 1:
                gone[:n_gone].sort()
            n_extra = 0
            for x in range(entering[0], entering[1]):
                m = _columns(image, kernel_mask, z0, z1, y0, y1, x, x + 1, kept[x % width])
                kept_n[x % width] = m
                extra[n_extra : n_extra + m] = kept[x % width, :m]
                n_extra += m
            if entering[1] - entering[0] > 1:
                extra[:n_extra].sort()
            n = _slide(values, n, gone, n_gone, extra, n_extra, spare)
            values, spare = spare, values
            if histogram:
                n_present = count_planes(
                    levels, z0, z1, y0, y1, leaving[0], leaving[1], counts, present, n_present, -1
                )
                n_present = count_planes(
                    levels, z0, z1, y0, y1, entering[0], entering[1], counts, present, n_present,
                    1,
                )  # fmt: skip
            _statistics(values, n, shift, voxel_volume, out, k)
            if histogram:
                _histogram(counts, present, n_present, n, out, k)
