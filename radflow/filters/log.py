r"""Laplacian of Gaussian (LoG) images, as PyRadiomics' ``getLoGImage``.

Each image is :math:`\sigma^2 \nabla^2 (G_\sigma * I)`: the Laplacian of the
image smoothed by a Gaussian of standard deviation :math:`\sigma` (mm),
normalised across scale (the :math:`\sigma^2` factor), computed by
SimpleITK's ``LaplacianRecursiveGaussianImageFilter`` (Deriche's recursive
approximation of the Gaussian and its derivatives) exactly as PyRadiomics
calls it. The result is float32 whatever the input type.

Cropping. The recursive filter has infinite support, but its impulse response
decays exponentially, about a factor 10 per 2 sigma. Filtering a crop that
reaches :data:`MARGIN_SIGMAS` sigma beyond the ROI on every side (or the
volume's edge, where the crop and the whole image share the same boundary)
gives, inside the ROI, the whole-image values to within a few float32
roundings: measured on a 100 x 512 x 512 CT with a 70k-voxel lung tumour
(``benchmarks/bench_filters.py``), the largest deviation was 7e-8, 8e-8 and
1.5e-7 of the largest absolute LoG value in the ROI for sigma 1, 3 and 5 mm
(at 8 sigma: 2e-7, 9e-7, 5e-6). Pointwise relative error is meaningless near
the LoG's zero crossings, hence that yardstick.

References
----------
Deriche R. Recursively implementing the Gaussian and its derivatives.
INRIA Research Report RR-1893, 1993.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence

import SimpleITK as sitk

from radflow.errors import InputError
from radflow.filters._checks import check_image, positive_list

__all__ = ["MARGIN_SIGMAS", "log_image", "log_image_name", "log_images", "log_margin_voxels"]

#: Margin, in sigmas, that the crop must extend beyond the ROI.
MARGIN_SIGMAS = 12.0


def log_image_name(sigma_mm) -> str:
    """PyRadiomics' image type name: ``log-sigma-3-0-mm-3D`` for 3.0, ``log-sigma-3-mm-3D`` for 3.

    PyRadiomics formats the value as written in the parameter file, so an
    integer sigma gives a different name from the same float.
    """
    return f"log-sigma-{str(sigma_mm).replace('.', '-')}-mm-3D"


def log_image(image: sitk.Image, *, sigma_mm: float) -> sitk.Image:
    """LoG of `image` at one scale, without PyRadiomics' size checks.

    Parameters
    ----------
    image : SimpleITK.Image
        3D scalar image (HU, SUV ...); spacing in mm.
    sigma_mm : float
        Standard deviation of the Gaussian, mm, > 0.

    Returns
    -------
    SimpleITK.Image
        float32, same grid as `image`; image units (normalised across scale).
    """
    check_image(image)
    (sigma_mm,) = positive_list([sigma_mm], "sigma_mm")
    lrgif = sitk.LaplacianRecursiveGaussianImageFilter()
    lrgif.SetNormalizeAcrossScale(True)
    lrgif.SetSigma(float(sigma_mm))
    return lrgif.Execute(image)


def log_images(
    image: sitk.Image,
    *,
    sigmas_mm: Sequence[float],
    source_shape_zyx: Sequence[int] | None = None,
) -> Iterator[tuple[str, sitk.Image]]:
    """``(name, LoG image)`` for each sigma, lazily, as PyRadiomics' ``getLoGImage``.

    As PyRadiomics, skips (with a warning) every sigma when the image is
    smaller than 4 voxels along an axis, and a sigma for which some axis has
    fewer than ``ceil(sigma / spacing) + 1`` voxels.

    Parameters
    ----------
    image : SimpleITK.Image
        3D scalar image; spacing in mm.
    sigmas_mm : sequence of float
        Gaussian standard deviations, mm, each > 0, in output order.
    source_shape_zyx : sequence of 3 int, optional
        Shape (z, y, x) of the whole volume when `image` is a crop of it:
        PyRadiomics checks sigma against the whole image. Default: the shape
        of `image`.

    Yields
    ------
    name : str
        ``log-sigma-<sigma>-mm-3D`` (see :func:`log_image_name`).
    image : SimpleITK.Image
        float32 LoG image on the grid of `image`.
    """
    check_image(image)
    sigmas_mm = positive_list(sigmas_mm, "sigmas_mm")
    size = (
        tuple(image.GetSize())
        if source_shape_zyx is None
        else tuple(int(n) for n in source_shape_zyx)[::-1]
    )
    if len(size) != 3:
        raise InputError(
            "source_shape_zyx", f"expected 3 values (z, y, x), got {source_shape_zyx!r}"
        )
    return _log_images(image, sigmas_mm, size)


def _log_images(image, sigmas_mm, size):
    spacing = image.GetSpacing()
    if min(size) < 4:
        warnings.warn(
            f"LoG: image size {size} (x, y, z) is below 4 voxels along an axis; no LoG image",
            stacklevel=3,
        )
        return
    for sigma in sigmas_mm:
        if all(n >= math.ceil(sigma / s) + 1 for n, s in zip(size, spacing)):
            yield log_image_name(sigma), log_image(image, sigma_mm=sigma)
        else:
            warnings.warn(
                f"LoG: sigma {sigma} mm skipped: image size {size} (x, y, z) is below "
                f"sigma / spacing {tuple(spacing)} + 1 along an axis",
                stacklevel=3,
            )


def log_margin_voxels(
    sigmas_mm: Sequence[float], spacing_zyx: Sequence[float]
) -> tuple[int, int, int]:
    """Voxels (z, y, x) to read beyond the ROI box so that a crop filters like the whole image."""
    sigmas_mm = positive_list(sigmas_mm, "sigmas_mm")
    return tuple(math.ceil(MARGIN_SIGMAS * max(sigmas_mm) / s) for s in spacing_zyx)
