"""Whole-image intensity normalisation, as PyRadiomics 3.0.1's ``normalizeImage``.

SimpleITK image in, SimpleITK image (64-bit float, same geometry) out.
"""

from __future__ import annotations

import math
from numbers import Real

import SimpleITK as sitk

from radflow.errors import SettingsError

__all__ = ["normalise"]


def normalise(
    image: sitk.Image, *, scale: float = 1.0, remove_outliers: float | None = None
) -> sitk.Image:
    r"""z-score the whole image, optionally clip outliers, then scale.

    .. math:: f(x) = s \, \mathrm{clip}\!\left(\frac{x - \mu}{\sigma}, -n, n\right)

    with :math:`\mu` and :math:`\sigma` the mean and standard deviation of
    *every* voxel of the image (not only the ROI), as SimpleITK's
    ``Normalize`` computes them, :math:`n` = `remove_outliers` and
    :math:`s` = `scale`. Outliers are clipped before scaling, as in PyRadiomics.

    Parameters
    ----------
    image : SimpleITK.Image
        Scalar image, any pixel type (HU, SUV, MR signal).
    scale : float
        Factor applied last (PyRadiomics' ``normalizeScale``), > 0.
    remove_outliers : float, optional
        Clip at +/- this many standard deviations (``removeOutliers``), > 0.

    Returns
    -------
    SimpleITK.Image
        64-bit float, same size, spacing, origin and direction.
    """
    _check_positive(scale, "scale")
    if remove_outliers is not None:
        _check_positive(remove_outliers, "remove_outliers")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise SettingsError(
            f"image must be scalar, it has {image.GetNumberOfComponentsPerPixel()} components"
        )
    normalised = sitk.Normalize(image)
    if remove_outliers is not None:
        normalised = sitk.Clamp(
            normalised, lowerBound=-float(remove_outliers), upperBound=float(remove_outliers)
        )
    return normalised * float(scale)


def _check_positive(value, name: str) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, Real)
        or not (math.isfinite(value) and value > 0)
    ):
        raise SettingsError(f"{name} must be a finite number > 0, got {value!r}")
