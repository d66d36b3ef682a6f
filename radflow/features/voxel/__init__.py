"""Voxel-based feature maps: PyRadiomics' voxel mode, one value per ROI voxel from its kernel.

One module per PyRadiomics feature class (``firstorder``, ``glcm``, ``glrlm``, ``glszm``,
``gldm``, ``ngtdm``), each exposing the same function::

    compute_maps(image, binned, kernel_mask, centres, *, n_levels, kernel_radius, settings,
                 spacing_zyx, features) -> dict[str, numpy.ndarray]

with arrays in ``(z, y, x)`` order on the ROI box padded by ``kernelRadius`` (the box
:mod:`radflow.extraction.voxel` crops), ``binned`` the grey levels ``1..n_levels`` (0 outside
the discretisation region), ``kernel_mask`` the voxels that may count in a kernel (the ROI when
``maskedKernel``, else the whole box) and ``centres`` the ``(n, 3)`` voxels whose values are
computed (ROI voxels in C order). Each returns one float64 array of shape ``(n,)`` per feature
name, with PyRadiomics 3.0.1's values (NaN where it gives NaN). Kernel bounds shared by the
classes are in :mod:`radflow.features.voxel._kernel`.

Shape classes have no voxel mode (PyRadiomics skips them as well). Class modules load on first
use (through :func:`radflow._lazy.attach`).
"""

from radflow._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    ["firstorder", "glcm", "gldm", "glrlm", "glszm", "ngtdm"],
)
