"""Grey-level discretisation exactly as PyRadiomics 3.0.1 does it.

PyRadiomics (``imageoperations.getBinEdges`` / ``binImage``) gives the ROI
voxels integer bins starting at 1:

- fixed bin width :math:`W`: edges are multiples of :math:`W` from the one at
  or below the ROI minimum, so
  :math:`X_b = \\lfloor X / W \\rfloor - \\lfloor \\min X / W \\rfloor + 1`;
  every bin is half-open :math:`[e_k, e_{k+1})`, a maximum lying on an edge
  opens a bin of its own. This differs from the IBSI's fixed bin size, which
  counts bins from the ROI minimum.
- fixed bin count :math:`N_b`: ``numpy.histogram`` edges over
  :math:`[\\min X, \\max X]`, the top edge raised by 1 so that the maximum
  falls in bin :math:`N_b`.

The arithmetic is done in the input's dtype, as PyRadiomics does, so that
float32 (PET) values on a bin edge land in the same bin. Arrays are in
(z, y, x) order, but nothing here depends on the order.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np

from radflow.errors import InputError, SettingsError

__all__ = ["bin_edges", "discretise"]


def bin_edges(
    values, *, bin_width: float | None = None, bin_count: int | None = None
) -> np.ndarray:
    """Bin edges of PyRadiomics' discretisation for the ROI grey levels `values`.

    Parameters
    ----------
    values : array_like of real numbers
        Grey levels of the ROI voxels (HU, SUV, ...), any shape; must be
        non-empty and finite.
    bin_width : float, optional
        Fixed bin width, in the units of `values`; > 0.
    bin_count : int, optional
        Fixed number of bins, >= 1. Takes precedence over `bin_width`, as
        PyRadiomics' ``binCount`` over ``binWidth``.

    Returns
    -------
    edges : ndarray, shape (n_bins + 1,)
        Increasing edges; bin ``k`` (1-based) is ``[edges[k-1], edges[k])``.

    Examples
    --------
    PyRadiomics' documented example, values 54 to 166, bin width 25. Its
    code (followed here) adds one more, empty, top bin than its docs show:

    >>> bin_edges([54, 100, 166], bin_width=25).tolist()
    [50.0, 75.0, 100.0, 125.0, 150.0, 175.0, 200.0]
    """
    values = _check_values(np.asarray(values), "values").ravel()
    bin_width, bin_count = _check_binning(bin_width, bin_count)
    return _edges(values, bin_width, bin_count)


def discretise(
    image, mask=None, *, bin_width: float | None = None, bin_count: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Discretise the ROI of `image` into integer bins 1..N, as PyRadiomics' ``binImage``.

    Parameters
    ----------
    image : ndarray of real numbers
        Grey levels, e.g. shape (z, y, x) as ``sitk.GetArrayFromImage`` gives.
    mask : ndarray of bool or int, optional
        Same shape as `image`; non-zero voxels form the ROI. None: the whole
        image is the ROI.
    bin_width, bin_count
        See :func:`bin_edges`; `bin_count` takes precedence.

    Returns
    -------
    binned : ndarray of int32, shape of `image`
        Bin index, 1 to N, inside the ROI; 0 outside it.
    edges : ndarray
        The bin edges (:func:`bin_edges` of the ROI values).

    Raises
    ------
    InputError
        The ROI is empty, holds a non-finite value, or `mask` does not
        match `image`.
    SettingsError
        Neither or an invalid `bin_width`/`bin_count`.
    """
    image = np.asarray(image)
    bin_width, bin_count = _check_binning(bin_width, bin_count)
    if mask is None:
        values = _check_values(image, "image").ravel()
        edges = _edges(values, bin_width, bin_count)
        return np.digitize(image, edges).astype(np.int32), edges
    mask = np.asarray(mask)
    if mask.shape != image.shape:
        raise InputError("mask", f"shape {mask.shape} does not match the image shape {image.shape}")
    if mask.dtype != bool and not np.issubdtype(mask.dtype, np.integer):
        raise InputError("mask", f"must be a bool or integer array, got dtype {mask.dtype}")
    roi = mask.astype(bool, copy=False)
    values = _check_values(image[roi], "image inside the ROI")
    edges = _edges(values, bin_width, bin_count)
    binned = np.zeros(image.shape, dtype=np.int32)
    binned[roi] = np.digitize(values, edges)
    return binned, edges


def _edges(values: np.ndarray, bin_width: float | None, bin_count: int | None) -> np.ndarray:
    if bin_count is not None:
        edges = np.histogram_bin_edges(values, bins=bin_count)  # the edges numpy.histogram uses
        edges[-1] += 1  # so that the maximum falls in the top bin under numpy.digitize
        return edges
    minimum, maximum = values.min(), values.max()
    # PyRadiomics' operations in the same order and dtypes: numpy scalars of the
    # image dtype with a Python float width.
    low = minimum - (minimum % bin_width)
    edges = np.arange(low, maximum + 2 * bin_width, bin_width)
    if len(edges) == 1:  # flat ROI: one bin, as numpy.histogram makes for bins=1
        edges = np.array([edges[0] - 0.5, edges[0] + 0.5])
    return edges


def _check_binning(bin_width, bin_count) -> tuple[float | None, int | None]:
    if bin_count is not None:
        if isinstance(bin_count, bool) or not isinstance(bin_count, Integral) or bin_count < 1:
            raise SettingsError(f"bin_count must be an integer >= 1, got {bin_count!r}")
        return None, int(bin_count)
    if bin_width is None:
        raise SettingsError("give bin_width or bin_count")
    if (
        isinstance(bin_width, bool)
        or not isinstance(bin_width, Real)
        or not (math.isfinite(bin_width) and bin_width > 0)
    ):
        raise SettingsError(f"bin_width must be a finite number > 0, got {bin_width!r}")
    return float(bin_width), None


def _check_values(values: np.ndarray, name: str) -> np.ndarray:
    if values.dtype == bool or not (
        np.issubdtype(values.dtype, np.integer) or np.issubdtype(values.dtype, np.floating)
    ):
        raise InputError(
            name, f"grey levels must be integers or real floats, got dtype {values.dtype}"
        )
    if values.size == 0:
        raise InputError(name, "the ROI is empty: no grey level to discretise")
    if np.issubdtype(values.dtype, np.floating) and not np.isfinite(values).all():
        raise InputError(name, "holds NaN or infinite grey levels")
    return values
