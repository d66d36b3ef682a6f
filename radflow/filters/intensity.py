r"""Voxel-wise intensity transforms, as PyRadiomics' ``getSquareImage`` and siblings.

With :math:`x` a voxel's intensity and :math:`M = \max|x|` over the *whole*
image (PyRadiomics reads it from the full volume, so a crop must be given
the volume's `max_abs`), all in float64:

- square: :math:`f(x) = (x / \sqrt{M})^2`
- squareroot: :math:`f(x) = \operatorname{sign}(x)\sqrt{|x| M}`
- logarithm: :math:`f(x) = \operatorname{sign}(x)\log(|x| + 1)\, M / \log(M + 1)`
- exponential: :math:`f(x) = \exp(x \log(M) / M)`

Each maps :math:`[-M, M]` back onto a range of size comparable to the
original. Being voxel-wise they need no margin when cropping. An image of
zeros has :math:`M = 0`: square and logarithm are then NaN and exponential
is NaN (0/0), as in PyRadiomics.
"""

from __future__ import annotations

import math

import numpy as np
import SimpleITK as sitk

from radflow.errors import InputError
from radflow.filters._checks import check_image

__all__ = ["exponential_image", "logarithm_image", "max_abs", "square_image", "squareroot_image"]


def max_abs(image: sitk.Image) -> float:
    """:math:`\\max|x|` over `image` (image units), as the transforms read it."""
    check_image(image)
    return float(np.max(np.abs(sitk.GetArrayViewFromImage(image).astype(np.float64))))


def _prepare(image: sitk.Image, max_abs_value: float | None) -> tuple[np.ndarray, float]:
    check_image(image)
    values = sitk.GetArrayFromImage(image).astype(np.float64)
    if max_abs_value is None:
        return values, float(np.max(np.abs(values)))
    if (
        isinstance(max_abs_value, bool)
        or not isinstance(max_abs_value, (int, float, np.floating, np.integer))
        or not math.isfinite(max_abs_value)
        or max_abs_value < 0
    ):
        raise InputError("max_abs", f"{max_abs_value!r} is not a finite number >= 0")
    if values.size and np.max(np.abs(values)) > max_abs_value:
        raise InputError(
            "max_abs",
            f"{max_abs_value!r} is below max |intensity| of the image "
            f"({np.max(np.abs(values))!r}); pass the whole volume's value",
        )
    return values, float(max_abs_value)


def _as_image(values: np.ndarray, like: sitk.Image) -> sitk.Image:
    out = sitk.GetImageFromArray(values)
    out.CopyInformation(like)
    return out


def square_image(image: sitk.Image, *, max_abs: float | None = None) -> sitk.Image:
    """Square image (PyRadiomics ``square``), float64.

    Parameters
    ----------
    image : SimpleITK.Image
        3D scalar image.
    max_abs : float, optional
        :math:`\\max|x|` of the whole volume when `image` is a crop of it
        (image units); default: of `image`.
    """
    values, m = _prepare(image, max_abs)
    with np.errstate(divide="ignore", invalid="ignore"):
        coeff = 1 / np.sqrt(m)
        return _as_image((coeff * values) ** 2, image)


def squareroot_image(image: sitk.Image, *, max_abs: float | None = None) -> sitk.Image:
    """Square-root image (PyRadiomics ``squareroot``), float64; see :func:`square_image`."""
    values, m = _prepare(image, max_abs)
    positive, negative = values > 0, values < 0
    values[positive] = np.sqrt(values[positive] * m)
    values[negative] = -np.sqrt(-values[negative] * m)
    return _as_image(values, image)


def logarithm_image(image: sitk.Image, *, max_abs: float | None = None) -> sitk.Image:
    """Logarithm image (PyRadiomics ``logarithm``), float64; see :func:`square_image`."""
    values, m = _prepare(image, max_abs)
    positive, negative = values > 0, values < 0
    values[positive] = np.log(values[positive] + 1)
    values[negative] = -np.log(-(values[negative] - 1))
    # PyRadiomics divides by max |log image| of the whole image: log(M + 1),
    # the same float whichever sign the extreme voxel has.
    with np.errstate(divide="ignore", invalid="ignore"):
        return _as_image(values * (m / np.log(m + 1)), image)


def exponential_image(image: sitk.Image, *, max_abs: float | None = None) -> sitk.Image:
    """Exponential image (PyRadiomics ``exponential``), float64; see :func:`square_image`."""
    values, m = _prepare(image, max_abs)
    with np.errstate(divide="ignore", invalid="ignore"):
        coeff = np.log(m) / m
        return _as_image(np.exp(coeff * values), image)
