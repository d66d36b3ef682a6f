r"""Undecimated wavelet images, as PyRadiomics' ``getWaveletImage``.

PyRadiomics pads each odd-length axis with one voxel copied from the other
end (``numpy.pad(..., 'wrap')``), then applies PyWavelets' stationary
transform ``pywt.swtn(level=1)`` over the (z, y, x) axes (all three, or the
two in-plane ones with ``force2D``). Each further level applies the same
one-level transform, with the same (not dilated) filters, to the previous
level's approximation; the first ``start_level`` levels are computed and
discarded. Each kept level gives :math:`2^n - 1` detail images (``n`` the
number of filtered axes); the approximation of the last level comes last.

Names: ``wavelet-LHH`` for the first kept level, ``wavelet2-LHH`` for the
second and so on (numbered from the first *kept* level, as PyRadiomics
does), letters in PyWavelets' axis order (x, y, z): ``L`` low-pass, ``H``
high-pass. The approximation is ``wavelet-LLL`` (``wavelet<k>-LLL`` after
``k`` kept levels; ``LL`` in 2D).

Cropping. ``swtn`` is a circular convolution: one level's output at voxel
``i`` depends on the input within ``dec_len // 2`` voxels of ``i`` along each
filtered axis (``dec_len`` the wavelet's filter length), and on the voxels at
the other end of the axis near the edges. A crop that extends
:func:`wavelet_margin_voxels` beyond the ROI along each filtered axis gives
exactly the whole-image values inside the ROI; where that margin does not fit
inside the volume, the whole axis must be read, so that the wrap-around joins
the same two ends as PyRadiomics' (:func:`radflow.filters.image_types.read_box`
does both).

References
----------
Nason GP, Silverman BW. The stationary wavelet transform and some
statistical applications. Lecture Notes in Statistics 1995;103:281-299.
doi:10.1007/978-1-4612-2544-7_17

Lee GR et al. PyWavelets: A Python package for wavelet analysis. JOSS
2019;4(36):1237. doi:10.21105/joss.01237
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pywt
import SimpleITK as sitk

from radflow.filters._checks import check_image, discrete_wavelet, integer

__all__ = ["wavelet_axes", "wavelet_images", "wavelet_margin_voxels"]


def wavelet_axes(fixed_axis: int | None = None) -> tuple[int, ...]:
    """Filtered (z, y, x) array axes in PyRadiomics' order (x first), less `fixed_axis`."""
    if fixed_axis is not None:
        fixed_axis = integer(fixed_axis, "fixed_axis", 0, 2)
    return tuple(axis for axis in (2, 1, 0) if axis != fixed_axis)


def wavelet_images(
    image: sitk.Image,
    *,
    wavelet: str = "coif1",
    start_level: int = 0,
    level: int = 1,
    fixed_axis: int | None = None,
) -> Iterator[tuple[str, sitk.Image]]:
    """``(name, image)`` for every wavelet decomposition, lazily, in PyRadiomics' order.

    Parameters
    ----------
    image : SimpleITK.Image
        3D scalar image.
    wavelet : str
        PyWavelets discrete wavelet name (``"coif1"``, ``"haar"``, ``"db2"`` ...).
    start_level : int
        Levels computed and discarded before the first kept one, >= 0.
    level : int
        Number of kept levels, >= 1.
    fixed_axis : {0, 1, 2} or None
        (z, y, x) axis left unfiltered (PyRadiomics' ``force2Ddimension``
        when ``force2D`` is set); None filters all three.

    Yields
    ------
    name : str
        ``wavelet-HLL`` ... (see the module docstring).
    image : SimpleITK.Image
        float64 (float32 for a float32 `image`, as PyWavelets computes it),
        on the grid of `image`.
    """
    check_image(image)
    wavelet = discrete_wavelet(wavelet, "wavelet")
    start_level = integer(start_level, "start_level", 0)
    level = integer(level, "level", 1)
    return _wavelet_images(image, wavelet, start_level, level, wavelet_axes(fixed_axis))


def _wavelet_images(image, wavelet, start_level, level, axes):
    approx_key = "a" * len(axes)

    array = sitk.GetArrayFromImage(image)
    shape = array.shape
    data = np.pad(array, [(0, n % 2) for n in shape], mode="wrap")
    unpad = tuple(slice(0, n) for n in shape)
    filters = pywt.Wavelet(wavelet)

    def as_image(values: np.ndarray) -> sitk.Image:
        out = sitk.GetImageFromArray(values[unpad])
        out.CopyInformation(image)
        return out

    for _ in range(start_level):
        data = pywt.swtn(data, filters, level=1, start_level=0, axes=axes)[0][approx_key]
    for number in range(1, level + 1):
        bands = pywt.swtn(data, filters, level=1, start_level=0, axes=axes)[0]
        data = bands.pop(approx_key)
        prefix = "wavelet-" if number == 1 else f"wavelet{number}-"
        while bands:
            key = next(iter(bands))
            yield prefix + key.replace("a", "L").replace("d", "H"), as_image(bands.pop(key))
    prefix = "wavelet-" if level == 1 else f"wavelet{level}-"
    yield prefix + "L" * len(axes), as_image(data)


def wavelet_margin_voxels(
    wavelet: str = "coif1", start_level: int = 0, level: int = 1, fixed_axis: int | None = None
) -> tuple[int, int, int]:
    """Voxels (z, y, x) a crop needs beyond the ROI to give the whole-image values inside it.

    ``(start_level + level) * (dec_len // 2)`` along each filtered axis, 0
    along `fixed_axis`. See the module docstring for the volume's edges.
    """
    reach = (integer(start_level, "start_level", 0) + integer(level, "level", 1)) * (
        pywt.Wavelet(discrete_wavelet(wavelet, "wavelet")).dec_len // 2
    )
    axes = wavelet_axes(fixed_axis)
    return tuple(reach if axis in axes else 0 for axis in range(3))
