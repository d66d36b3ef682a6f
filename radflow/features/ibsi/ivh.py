r"""IBSI intensity-volume histogram features (``ivh_*``, IBSI 1 family P88C).

Input are the IVH intensities :math:`X_{d,gl}` of the ROI intensity mask,
the total range :math:`G = [G_{min}, G_{max}]` and the discretisation
interval :math:`w_d`, as the IBSI manual derives them from the IVH
discretisation setting (done by the caller, see :mod:`radflow.preprocess`):

- none (discrete calibrated intensities, e.g. CT in HU): :math:`X_{d,gl} = X_{gl}`,
  :math:`G` the re-segmentation range (upper end :math:`\max X_{gl}` when
  open; :math:`[\min X_{gl}, \max X_{gl}]` without range), :math:`w_d = 1`;
- fixed bin size :math:`w_b` from :math:`X_{min}` (re-segmentation lower bound
  or :math:`\min X_{gl}`): bin centres :math:`X_{min} + (X_d - 0.5) w_b`,
  :math:`G = [X_{min} + w_b/2, X_{max} - w_b/2]`, :math:`w_d = w_b`;
- fixed bin number :math:`N_g`: bin numbers :math:`X_d`, :math:`G = [1, N_g]`, :math:`w_d = 1`.

The IVH is evaluated at every discretised intensity :math:`i_k = G_{min} + k w_d`,
:math:`k = 0..K` with :math:`K = (G_{max} - G_{min}) / w_d`, present in the ROI or
not: the volume fraction :math:`\nu_k = 1 - \frac{1}{N_v}\sum [X_{d,gl} < i_k]`
and the intensity fraction :math:`\gamma_k = (i_k - G_{min}) / (G_{max} - G_{min}) = k / K`.

- ``ivh_v10``, ``ivh_v90`` (BC2M): the largest volume fraction with an
  intensity fraction of at least 10 % / 90 %, i.e. :math:`\nu_k` at the
  smallest :math:`k` with :math:`\gamma_k \ge 0.1` / 0.9; NaN when
  :math:`G_{min} = G_{max}` (no intensity fraction).
- ``ivh_i10``, ``ivh_i90`` (GBPN): the lowest discretised intensity
  :math:`i_k` present in at most 10 % / 90 % of the volume
  (:math:`\nu_k \le 0.1` / 0.9). Where even :math:`i_K` is in more, the
  answer is the next intensity :math:`i_{K+1}` (above every voxel of the
  range, so in none of the volume).
- ``ivh_diff_v10_v90`` (DDTU) :math:`V_{10} - V_{90}`; ``ivh_diff_i10_i90``
  (CNV2) :math:`I_{10} - I_{90}`.
- ``ivh_auc`` (9CMM): area under :math:`\nu(\gamma)` by the trapezoidal rule;
  0 for a single discretised intensity (:math:`K = 0`).

Voxel counts are compared with the fractions in integer arithmetic, so that a
fraction exactly at 10 % counts as "at most 10 %".

References
----------
Zwanenburg A et al. The Image Biomarker Standardisation Initiative: reference
manual, section "Intensity-volume histogram features". arXiv:1612.07003.
"""

from __future__ import annotations

import math

import numpy as np

from radflow.features.ibsi.registry import features
from radflow.features.ibsi.statistics import roi_values

__all__ = ["FEATURES", "compute"]

FAMILY = "ivh"
FEATURES = features(FAMILY)

# Relative slack when placing values on the grid i_k = G_min + k w_d: the bin
# centres the caller computes in floating point sit within rounding of it.
_GRID_SLACK = 1e-6


def compute(values, *, intensity_mask=None, value_range, value_step) -> dict[str, float]:
    """Intensity-volume histogram features of the ROI.

    Parameters
    ----------
    values : array of real
        IVH intensities :math:`X_{d,gl}` (intensities, bin centres or bin
        numbers, see the module docstring), (z, y, x) or any shape.
    intensity_mask : array of bool or int, optional
        The ROI intensity mask, same shape as ``values``. Default: every element.
    value_range : (float, float)
        Total range :math:`G = (G_{min}, G_{max})` in the unit of ``values``.
    value_step : float
        Discretisation interval :math:`w_d` > 0; :math:`G_{max} - G_{min}`
        must be a whole number of steps.

    Returns
    -------
    dict of str to float
        IBSI tag -> value, in the order of :data:`FEATURES`: volume fractions
        in [0, 1], intensities in the unit of ``values``.

    Raises
    ------
    ValueError, TypeError
        A bad range or step, a mask of another shape, an empty ROI, non-finite values.

    Examples
    --------
    >>> out = compute(np.array([1, 1, 1, 1, 1, 2, 2, 2, 2, 4]), value_range=(1, 4), value_step=1)
    >>> out["ivh_v10"], out["ivh_i10"], round(out["ivh_auc"], 4)
    (0.5, 3.0, 0.3833)
    """
    x = roi_values(values, intensity_mask, name="values")
    low, _, step, n_steps = _checked_grid(value_range, value_step)

    # Grid index of each value: k such that i_k <= x < i_(k+1), -1 below G.
    index = np.floor((x - low) / step + _GRID_SLACK).astype(np.int64)
    top = max(n_steps, int(index.max())) + 1
    counts = np.bincount(np.clip(index, -1, top) + 1, minlength=top + 2)
    # at_least[k] = number of voxels with value >= i_k, k = 0..top.
    at_least = np.cumsum(counts[::-1])[::-1][1:]
    n = x.size
    volume = at_least / n  # nu_k

    out: dict[str, float] = {}
    for percent in (10, 90):
        if n_steps == 0:
            out[f"v{percent}"] = np.nan
        else:
            # Smallest k with k / K >= percent / 100.
            k = math.ceil(percent * n_steps / 100 - _GRID_SLACK)
            out[f"v{percent}"] = float(volume[k])
        # Smallest k with at_least[k] / n <= percent / 100; at_least[top] == 0.
        k = int(np.argmax(100 * at_least <= percent * n))
        out[f"i{percent}"] = low + k * step
    out["diff_v10_v90"] = out["v10"] - out["v90"]
    out["diff_i10_i90"] = out["i10"] - out["i90"]
    if n_steps == 0:
        out["auc"] = 0.0
    else:
        out["auc"] = float(np.trapezoid(volume[: n_steps + 1], dx=1.0 / n_steps))
    return {f.tag_stem: float(out[f.tag_stem.removeprefix("ivh_")]) for f in FEATURES}


def _checked_grid(value_range, value_step) -> tuple[float, float, float, int]:
    """(G_min, G_max, w_d, K) from the arguments, checked."""
    try:
        low, high = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise ValueError(
            f"value_range must be two numbers (G_min, G_max), got {value_range!r}"
        ) from None
    if not (math.isfinite(low) and math.isfinite(high) and low <= high):
        raise ValueError(f"value_range must be finite with G_min <= G_max, got {value_range!r}")
    try:
        step = float(value_step)
    except (TypeError, ValueError):
        step = math.nan
    if not (math.isfinite(step) and step > 0):
        raise ValueError(f"value_step must be a positive number, got {value_step!r}")
    steps = (high - low) / step
    n_steps = round(steps)
    if abs(steps - n_steps) > _GRID_SLACK * max(1.0, steps):
        raise ValueError(
            f"value_range {value_range!r} is not a whole number of value_step={value_step!r} steps"
        )
    return low, high, step, n_steps
