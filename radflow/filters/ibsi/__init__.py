"""IBSI 2 convolutional filters on (z, y, x) arrays.

Plain functions returning float64 response maps of the input's shape, with
the IBSI boundary conditions ("constant" = zero padding, "nearest",
"periodic", "mirror"; :mod:`radflow.filters.ibsi.boundary`):

- :func:`mean_filter` (support in voxels);
- :func:`laplacian_of_gaussian` (sigma in mm, truncation in sigmas);
- :func:`laws_filter` (kernel combination, rotation invariance, pooling, energy map);
- :func:`gabor_filter` (in-plane, sigma/wavelength in mm, aspect ratio,
  orientations, pooling, modulus or real part, orthogonal planes);
- :func:`wavelet_filter` (undecimated separable wavelets from PyWavelets:
  decomposition, level, rotation invariance);
- :func:`simoncelli_filter` (non-separable isotropic wavelet, level).

Each is checked against the IBSI 2 phase-1 consensus response maps and the
phase-2 reference statistics (``tests/filters/ibsi``; ``docs/ibsi2_filters.md``).

References
----------
Depeursinge A, Andrearczyk V, Whybra P, et al. Standardised convolutional
filtering for radiomics. arXiv:2006.05470 (IBSI 2 reference manual).
"""

from radflow.filters.ibsi.boundary import BOUNDARIES
from radflow.filters.ibsi.gabor import gabor_filter
from radflow.filters.ibsi.laws import LAWS_KERNELS, laws_filter
from radflow.filters.ibsi.log import laplacian_of_gaussian
from radflow.filters.ibsi.mean import mean_filter
from radflow.filters.ibsi.simoncelli import simoncelli_filter
from radflow.filters.ibsi.wavelets import wavelet_filter

__all__ = [
    "BOUNDARIES",
    "LAWS_KERNELS",
    "gabor_filter",
    "laplacian_of_gaussian",
    "laws_filter",
    "mean_filter",
    "simoncelli_filter",
    "wavelet_filter",
]
