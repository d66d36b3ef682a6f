r"""Gradient magnitude image, as PyRadiomics' ``getGradientImage``.

:math:`|\nabla I|` by central differences (SimpleITK's
``GradientMagnitudeImageFilter``, zero-flux boundary), in image units per mm
(or per voxel with ``use_spacing=False``). Each output voxel reads its six
face neighbours, so a crop one voxel larger than the ROI box (or reaching
the volume's edge) gives exactly the whole-image values inside the ROI.
"""

from __future__ import annotations

import SimpleITK as sitk

from radflow.filters._checks import boolean, check_image

__all__ = ["MARGIN_VOXELS", "gradient_image"]

#: Voxels a crop needs beyond the ROI along each axis.
MARGIN_VOXELS = 1


def gradient_image(image: sitk.Image, *, use_spacing: bool = True) -> sitk.Image:
    """Gradient magnitude of `image`.

    Parameters
    ----------
    image : SimpleITK.Image
        3D scalar image; spacing in mm.
    use_spacing : bool
        Differences per mm (PyRadiomics' ``gradientUseSpacing``, default
        True) rather than per voxel.

    Returns
    -------
    SimpleITK.Image
        float32 whatever the input type (SimpleITK's choice, kept for
        PyRadiomics' numbers); image units per mm (or per voxel).
    """
    check_image(image)
    gmif = sitk.GradientMagnitudeImageFilter()
    gmif.SetUseImageSpacing(boolean(use_spacing, "use_spacing"))
    return gmif.Execute(image)
