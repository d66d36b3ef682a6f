r"""IBSI 2 Laws kernels: response maps, rotation invariance and energy maps.

A Laws filter is named by its 1D kernels in axis order x, y[, z]: ``E5L5S5``
convolves E5 along x, L5 along y and S5 along z; ``L5S5`` is 2D (x, y) and is
applied to each (y, x) slice. The 1D kernels are normalised to unit
:math:`\ell_2` norm as in the IBSI 2 reference manual:

====  =====================================  ====  =====================================
L3    :math:`[1, 2, 1] / \sqrt{6}`           L5    :math:`[1, 4, 6, 4, 1] / \sqrt{70}`
E3    :math:`[-1, 0, 1] / \sqrt{2}`          E5    :math:`[-1, -2, 0, 2, 1] / \sqrt{10}`
S3    :math:`[-1, 2, -1] / \sqrt{6}`         S5    :math:`[-1, 0, 2, 0, -1] / \sqrt{6}`
\     \                                      W5    :math:`[-1, 2, 0, -2, 1] / \sqrt{10}`
\     \                                      R5    :math:`[1, -4, 6, -4, 1] / \sqrt{70}`
====  =====================================  ====  =====================================

Rotation invariance pools the responses of the kernel's 24 (3D) or 4 (2D)
right-angle rotations. The energy map is the mean of the absolute response
over a cube (square in 2D) of :math:`2\delta + 1` voxels per side, under the
same boundary condition.
"""

from __future__ import annotations

import re

import numpy as np

from radflow._lazy import load
from radflow.errors import SettingsError
from radflow.filters._checks import choice, integer
from radflow.filters.ibsi._separable import pooled_response
from radflow.filters.ibsi.boundary import check_boundary, check_volume, document, ndimage_mode

ndimage = load("scipy.ndimage")  # on first use: PyRadiomics-mode extraction never needs it

__all__ = ["LAWS_KERNELS", "laws_filter"]

_S6, _S10, _S70, _S2 = np.sqrt(6.0), np.sqrt(10.0), np.sqrt(70.0), np.sqrt(2.0)
#: Normalised 1D Laws kernels, as convolution weights.
LAWS_KERNELS = {
    "L3": np.array([1.0, 2.0, 1.0]) / _S6,
    "E3": np.array([-1.0, 0.0, 1.0]) / _S2,
    "S3": np.array([-1.0, 2.0, -1.0]) / _S6,
    "L5": np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / _S70,
    "E5": np.array([-1.0, -2.0, 0.0, 2.0, 1.0]) / _S10,
    "S5": np.array([-1.0, 0.0, 2.0, 0.0, -1.0]) / _S6,
    "W5": np.array([-1.0, 2.0, 0.0, -2.0, 1.0]) / _S10,
    "R5": np.array([1.0, -4.0, 6.0, -4.0, 1.0]) / _S70,
}
_NAME = re.compile(r"(?:[LES]3|[LESWR]5)+")  # there is no W3 or R3


@document
def laws_filter(
    image,
    *,
    kernel: str,
    boundary: str = "mirror",
    rotation_invariant: bool = False,
    pooling: str = "max",
    energy_distance: int | None = None,
) -> np.ndarray:
    """Laws kernel response map, optionally rotation-invariant, optionally its energy map.

    Parameters
    ----------
    %(image)s
    kernel : str
        Two (2D, slice by slice) or three (3D) 1D kernel names from
        :data:`LAWS_KERNELS` in axis order x, y[, z], e.g. ``"L5E5E5"``, ``"L5S5"``.
    boundary : {"constant", "nearest", "periodic", "mirror"}, optional
        IBSI boundary condition ("constant" is zero padding), for the
        convolution and the energy map.
    rotation_invariant : bool, optional
        Pool the responses of the kernel's right-angle rotations.
    pooling : {"max", "average"}, optional
        Pooling of the rotated responses (used only when `rotation_invariant`).
    energy_distance : int or None, optional
        Chebyshev distance :math:`\\delta` in voxels of the energy map; None
        returns the response map itself.

    %(returns)s

    %(raises)s
    SettingsError
        An unknown kernel name, pooling or boundary; a negative distance.

    Examples
    --------
    The response to an impulse is the kernel itself, E5 along x:

    >>> impulse = np.zeros((5, 5, 5)); impulse[2, 2, 2] = 1.0
    >>> response = laws_filter(impulse, kernel="E5L5S5", boundary="constant")
    >>> expected = LAWS_KERNELS["E5"] * LAWS_KERNELS["L5"][1] * LAWS_KERNELS["S5"][2]
    >>> bool(np.allclose(response[2, 1, :], expected))
    True
    """
    values = check_volume(image)
    if not isinstance(kernel, str) or not _NAME.fullmatch(kernel) or len(kernel) not in (4, 6):
        raise SettingsError(
            f"kernel: {kernel!r} is not allowed; expected 2 or 3 of {', '.join(LAWS_KERNELS)} "
            "in axis order x, y[, z], e.g. 'L5E5E5'"
        )
    bank = [[LAWS_KERNELS[kernel[i : i + 2]] for i in range(0, len(kernel), 2)]]
    mode = ndimage_mode(check_boundary(boundary))
    if not isinstance(rotation_invariant, bool):
        raise SettingsError(
            f"rotation_invariant: {rotation_invariant!r} is not allowed; expected True or False"
        )
    pooling = choice(pooling, "pooling", ("max", "average"))
    response = pooled_response(values, bank, mode, pooling if rotation_invariant else None)
    if energy_distance is None:
        return response
    side = 2 * integer(energy_distance, "energy_distance", 0) + 1
    size = side if len(bank[0]) == 3 else (1, side, side)
    return ndimage.uniform_filter(np.abs(response), size=size, mode=mode)
