r"""IBSI 2 Laplacian of Gaussian (LoG) filter.

Unlike radflow's PyRadiomics-mode LoG (:mod:`radflow.filters.log`: SimpleITK's
recursive Gaussian, scale-normalised by :math:`\sigma^2`), this is the IBSI
kernel sampled on the voxel grid and truncated:

.. math::
    g(\mathbf{k}) = -\frac{1}{\sigma^2} \left(\frac{1}{\sqrt{2\pi}\,\sigma}\right)^d
        \left(d - \frac{\|\mathbf{k}\|^2}{\sigma^2}\right) e^{-\|\mathbf{k}\|^2 / (2\sigma^2)}

with :math:`\mathbf{k}` and :math:`\sigma` in voxels (:math:`\sigma` in mm over
the spacing, per axis), :math:`d` the number of filtered axes and the support
:math:`M = 1 + 2\lfloor t\sigma + 0.5\rfloor` voxels for truncation :math:`t`.
Written as :math:`\sum_a g''_a \prod_{b \ne a} g_b` it is separable, so each
image is filtered by :math:`d^2` 1D convolutions rather than one with
:math:`M^d` taps.
"""

from __future__ import annotations

import math

import numpy as np

from radflow._lazy import load
from radflow.filters._checks import positive
from radflow.filters.ibsi.boundary import (
    check_boundary,
    check_dimensions,
    check_spacing,
    check_volume,
    document,
    ndimage_mode,
)

ndimage = load("scipy.ndimage")  # on first use: PyRadiomics-mode extraction never needs it

__all__ = ["laplacian_of_gaussian"]


@document
def laplacian_of_gaussian(
    image,
    *,
    spacing_zyx,
    sigma_mm: float,
    truncate: float = 4.0,
    boundary: str = "mirror",
    dimensions: int = 3,
) -> np.ndarray:
    """IBSI Laplacian of Gaussian response map.

    Parameters
    ----------
    %(image)s
    %(spacing)s
    sigma_mm : float
        Gaussian standard deviation in mm.
    truncate : float, optional
        Kernel half-width in standard deviations (IBSI: 4).
    %(boundary)s
    dimensions : {3, 2}, optional
        3: volumetric kernel; 2: in-plane kernel applied to each (y, x) slice.

    %(returns)s
        Image units per squared voxel (the kernel is not scale-normalised).

    %(raises_spacing)s
    SettingsError
        A non-positive `sigma_mm` or `truncate`, an unknown boundary or dimension.

    Examples
    --------
    The response to a unit impulse is the kernel; its centre is
    :math:`-d / (\\sigma^2 (2\\pi\\sigma^2)^{d/2})`:

    >>> impulse = np.zeros((9, 9, 9)); impulse[4, 4, 4] = 1.0
    >>> centre = laplacian_of_gaussian(
    ...     impulse, spacing_zyx=(2, 2, 2), sigma_mm=2.0, boundary="constant"
    ... )[4, 4, 4]
    >>> bool(np.isclose(centre, -3 / (2 * np.pi) ** 1.5))
    True
    """
    values = check_volume(image)
    spacing = check_spacing(spacing_zyx)
    sigma = positive(sigma_mm, "sigma_mm")
    truncate = positive(truncate, "truncate")
    mode = ndimage_mode(check_boundary(boundary))
    axes = (0, 1, 2) if check_dimensions(dimensions) == 3 else (1, 2)
    gauss, second = {}, {}
    for axis in axes:
        gauss[axis], second[axis] = _gaussian_and_second_derivative(sigma / spacing[axis], truncate)
    out = np.zeros_like(values)
    for axis in axes:
        term = values
        for other in axes:
            term = ndimage.correlate1d(
                term, second[other] if other == axis else gauss[other], axis=other, mode=mode
            )
        out += term
    return out


def _gaussian_and_second_derivative(sigma: float, truncate: float) -> tuple[np.ndarray, np.ndarray]:
    """Sampled 1D Gaussian (sigma in voxels) and its second derivative, half-width
    floor(t sigma + 0.5).
    """
    radius = math.floor(truncate * sigma + 0.5)
    k = np.arange(-radius, radius + 1, dtype=np.float64)
    gauss = np.exp(-0.5 * (k / sigma) ** 2) / (math.sqrt(2.0 * math.pi) * sigma)
    return gauss, gauss * (k * k - sigma * sigma) / sigma**4
