"""Feature families: pure functions of arrays (intensities, ROI, spacing in mm) to numbers.

One module per PyRadiomics feature class (``firstorder``, ``shape``, ``shape2d``, ``glcm``,
``glrlm``, ``glszm``, ``gldm``, ``ngtdm``), the IBSI families in :mod:`radflow.features.ibsi`,
kernels shared by families and modes in ``_shared_kernels`` and ``_texture``, and the explicit
registry in :mod:`radflow.features.registry`. Family modules load on first use (through
:func:`radflow._lazy.attach`), so an extraction loads only the classes it computes.
"""

from radflow._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    [
        "firstorder",
        "glcm",
        "gldm",
        "glrlm",
        "glszm",
        "ibsi",
        "ngtdm",
        "registry",
        "shape",
        "shape2d",
        "skeleton",
    ],
)
