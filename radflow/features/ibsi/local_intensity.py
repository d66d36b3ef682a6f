r"""IBSI local intensity features (``loc_*``, IBSI 1 family 9ST6).

The *peak* at a voxel is the mean intensity of the voxels whose centres lie
within :math:`r = (3 / (4\pi))^{1/3}` cm :math:`\approx 6.2` mm of its centre
(a 1 cm^3 sphere, in world coordinates). Only voxels of the ROI intensity mask
are centres, but the neighbourhood takes every voxel of the image, in the ROI
or not; voxels beyond the image border are left out of the mean (this is what
reproduces the IBSI digital phantom, where the sphere is larger than the
image).

- ``loc_peak_loc`` (VJGA): the peak at the voxel of highest intensity in the
  ROI; with several such voxels, the highest of their peaks.
- ``loc_peak_glob`` (0F91): the highest peak over all ROI voxels.

References
----------
Zwanenburg A et al. The Image Biomarker Standardisation Initiative: reference
manual, section "Local intensity features". arXiv:1612.07003.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from radflow.features._checks import check_spacing
from radflow.features.ibsi.registry import features
from radflow.features.ibsi.statistics import checked_mask

__all__ = ["FEATURES", "PEAK_RADIUS_MM", "compute"]

FAMILY = "loc"
FEATURES = features(FAMILY)

#: Radius (mm) of the sphere of volume 1 cm^3.
PEAK_RADIUS_MM = 10.0 * (3.0 / (4.0 * np.pi)) ** (1.0 / 3.0)


def compute(image, *, intensity_mask, spacing_zyx) -> dict[str, float]:
    """Local and global intensity peak of the ROI.

    Parameters
    ----------
    image : (z, y, x) array of real
        The whole (interpolated) image, not cropped to the ROI: the spheres
        reach ~6.2 mm beyond it.
    intensity_mask : (z, y, x) array of bool or int
        The ROI intensity mask, same shape as ``image`` (non-zero inside).
    spacing_zyx : sequence of 3 float
        Voxel size in mm, (z, y, x) order.

    Returns
    -------
    dict of str to float
        ``{"loc_peak_loc": ..., "loc_peak_glob": ...}`` in the image's unit.

    Raises
    ------
    ValueError, TypeError
        Arrays that are not 3D or differ in shape, an empty ROI, a bad
        spacing, non-finite intensities within reach of the ROI.

    Examples
    --------
    >>> image = np.zeros((1, 1, 3)); image[0, 0, 1] = 3.0
    >>> compute(image, intensity_mask=image > 0, spacing_zyx=(2.0, 2.0, 2.0))
    {'loc_peak_loc': 1.0, 'loc_peak_glob': 1.0}
    """
    array = np.asarray(image)
    if array.ndim != 3:
        raise ValueError(f"image must be a 3D (z, y, x) array, got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise TypeError(f"image must hold real numbers, got dtype {array.dtype}")
    roi = checked_mask(intensity_mask, array.shape, "intensity_mask")
    spacing = check_spacing(spacing_zyx)
    if not roi.any():
        raise ValueError("intensity_mask is empty: no voxel to compute features from")

    sphere = _sphere(spacing)
    reach = np.array(sphere.shape) // 2
    # The ROI's bounding box grown by the sphere's reach (clipped to the image):
    # every neighbour of every ROI voxel lies inside it.
    hits = np.nonzero(roi)
    box = tuple(
        slice(max(int(h.min()) - r, 0), min(int(h.max()) + r + 1, n))
        for h, r, n in zip(hits, reach, array.shape)
    )
    crop = array[box].astype(np.float64)
    if not np.all(np.isfinite(crop)):
        raise ValueError("image has non-finite values (NaN or inf) within reach of intensity_mask")
    # Zero padding beyond the crop adds nothing to the sums. Where the box
    # was clipped by the image border, spheres there hold fewer voxels: count
    # the image voxels of each sphere (same padding) for the divisor.
    total = ndimage.correlate(crop, sphere, mode="constant", cval=0.0)
    clipped = any(
        b.start > h.min() - r or b.stop < h.max() + r + 1 for b, h, r in zip(box, hits, reach)
    )
    if clipped:
        count = ndimage.correlate(np.ones_like(crop), sphere, mode="constant", cval=0.0)
    else:
        count = np.full(crop.shape, sphere.sum())
    inside = roi[box]
    peaks = total[inside] / count[inside]
    intensities = crop[inside]
    return {
        "loc_peak_loc": float(peaks[intensities == intensities.max()].max()),
        "loc_peak_glob": float(peaks.max()),
    }


def _sphere(spacing: np.ndarray) -> np.ndarray:
    """float64 (z, y, x) kernel: 1 where a voxel centre is within the peak radius."""
    reach = np.floor(PEAK_RADIUS_MM / spacing).astype(int)
    axes = [np.arange(-r, r + 1) * s for r, s in zip(reach, spacing)]
    dz, dy, dx = np.meshgrid(*axes, indexing="ij")
    return (dz * dz + dy * dy + dx * dx <= PEAK_RADIUS_MM**2).astype(np.float64)
