"""Boundary conditions and input checks shared by the IBSI 2 filters.

The IBSI 2 reference manual names four ways of extending an image beyond its
edge before filtering (section "Boundary conditions"); the same names are
used by every filter in :mod:`radflow.filters.ibsi`:

============  ==========================  =====================  ================
IBSI name     image ``a b c d`` extended  ``scipy.ndimage`` mode  ``numpy.pad`` mode
============  ==========================  =====================  ================
"constant"    ``0 0 | a b c d | 0 0``     ``"constant"`` (0)      ``"constant"``
"nearest"     ``a a | a b c d | d d``     ``"nearest"``           ``"edge"``
"periodic"    ``c d | a b c d | a b``     ``"wrap"``              ``"wrap"``
"mirror"      ``b a | a b c d | d c``     ``"reflect"``           ``"symmetric"``
============  ==========================  =====================  ================

"constant" is the manual's zero padding. The mirror condition repeats the
edge voxel (half-sample symmetry), as the consensus response maps require.
"""

from __future__ import annotations

import numpy as np

from radflow._docstrings import filler
from radflow._geometry import SpacingError, spacing_mm
from radflow.errors import InputError
from radflow.filters._checks import choice, integer
from radflow.params.names import BOUNDARIES

__all__ = [
    "BOUNDARIES",
    "check_boundary",
    "check_dimensions",
    "check_spacing",
    "check_volume",
    "document",
    "ndimage_mode",
    "pad",
]


_NDIMAGE_MODES = {
    "constant": "constant",
    "nearest": "nearest",
    "periodic": "wrap",
    "mirror": "reflect",
}
_PAD_MODES = {"constant": "constant", "nearest": "edge", "periodic": "wrap", "mirror": "symmetric"}

#: Parameter, return and error descriptions the filters share (:data:`document`).
_DOCS = {
    "image": """image : array_like, shape (z, y, x)
        Intensities (HU, SUV, ...).""",
    "spacing": """spacing_zyx : sequence of 3 float
        Voxel spacing in mm.""",
    "boundary": """boundary : {"constant", "nearest", "periodic", "mirror"}, optional
        IBSI boundary condition ("constant" is zero padding).""",
    "returns": """Returns
    -------
    numpy.ndarray of float64, shape (z, y, x)""",
    "raises": """Raises
    ------
    InputError
        `image` is not a finite real 3D array.""",
    "raises_spacing": """Raises
    ------
    InputError
        `image` or `spacing_zyx` invalid.""",
}

#: Fills the shared ``%(image)s``, ``%(boundary)s`` ... descriptions of a filter's docstring.
document = filler(_DOCS)


def check_boundary(boundary, name: str = "boundary") -> str:
    """One of :data:`BOUNDARIES` (SettingsError otherwise)."""
    return choice(boundary, name, BOUNDARIES)


def ndimage_mode(boundary: str) -> str:
    """The ``scipy.ndimage`` ``mode`` of a checked IBSI boundary condition."""
    return _NDIMAGE_MODES[boundary]


def pad(image: np.ndarray, widths, boundary: str) -> np.ndarray:
    """Extend `image` by ``widths`` (``numpy.pad`` pad widths) under an IBSI boundary condition."""
    return np.pad(image, widths, mode=_PAD_MODES[boundary])


def check_volume(image, name: str = "image") -> np.ndarray:
    """A finite 3D real array in (z, y, x) order, returned as float64 (a copy only if needed)."""
    array = np.asarray(image)
    if array.ndim != 3:
        raise InputError(
            name,
            f"expected a 3D array in (z, y, x) order, got {array.ndim}D of shape {array.shape}",
        )
    if array.dtype.kind not in "biuf":
        raise InputError(name, f"expected real intensities, got dtype {array.dtype}")
    if array.size == 0:
        raise InputError(name, f"empty array of shape {array.shape}")
    array = array.astype(np.float64, copy=False)
    if not np.all(np.isfinite(array)):
        raise InputError(name, "contains NaN or infinite intensities")
    return array


def check_spacing(spacing_zyx, name: str = "spacing_zyx") -> tuple[float, float, float]:
    """Three finite voxel spacings > 0 in mm, (z, y, x) order."""
    try:
        return spacing_mm(spacing_zyx)
    except SpacingError as error:
        if error.reason == "length":
            raise InputError(
                name, f"expected 3 spacings in mm in (z, y, x) order, got {spacing_zyx!r}"
            ) from None
        raise InputError(
            name, f"spacings must be finite numbers > 0 mm, got {spacing_zyx!r}"
        ) from None


def check_dimensions(dimensions, name: str = "dimensions") -> int:
    """2 (slice by slice, in the (y, x) plane) or 3 (volumetric); SettingsError otherwise."""
    return integer(dimensions, name, 2, 3)
