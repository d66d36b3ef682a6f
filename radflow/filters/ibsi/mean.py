"""IBSI 2 mean filter."""

from __future__ import annotations

import numpy as np

from radflow._lazy import load
from radflow.errors import SettingsError
from radflow.filters._checks import integer
from radflow.filters.ibsi.boundary import (
    check_boundary,
    check_dimensions,
    check_volume,
    document,
    ndimage_mode,
)

ndimage = load("scipy.ndimage")  # on first use: PyRadiomics-mode extraction never needs it

__all__ = ["mean_filter"]


@document
def mean_filter(
    image, *, support_voxels: int, boundary: str = "mirror", dimensions: int = 3
) -> np.ndarray:
    r"""Mean of each voxel's :math:`M^d` neighbourhood (IBSI 2, mean filter).

    .. math::

        h(\mathbf{k}) = \frac{1}{M^d}
        \sum_{\|\mathbf{j}\|_\infty \le (M-1)/2} f(\mathbf{k} + \mathbf{j})

    Parameters
    ----------
    %(image)s
    support_voxels : int
        Odd support size :math:`M` in voxels along each filtered axis.
    %(boundary)s
    dimensions : {3, 2}, optional
        3: cubic neighbourhood; 2: square neighbourhood in each (y, x) slice.

    %(returns)s

    %(raises)s
    SettingsError
        An even or non-positive support, an unknown boundary or dimension.

    Examples
    --------
    >>> image = np.zeros((1, 3, 3)); image[0, 1, 1] = 9.0
    >>> mean_filter(image, support_voxels=3, boundary="constant", dimensions=2)[0]
    array([[1., 1., 1.],
           [1., 1., 1.],
           [1., 1., 1.]])
    """
    values = check_volume(image)
    support = integer(support_voxels, "support_voxels", 1)
    if support % 2 == 0:
        raise SettingsError(
            f"support_voxels: {support} is not allowed; expected an odd number of voxels"
        )
    mode = ndimage_mode(check_boundary(boundary))
    size = support if check_dimensions(dimensions) == 3 else (1, support, support)
    return ndimage.uniform_filter(values, size=size, mode=mode)
