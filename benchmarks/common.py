"""The benchmark case: a ~70k-voxel tumour in a 100 x 512 x 512 int16 CT.

A body (soft tissue, ~40 HU with noise) in air (-1000 HU), holding an
ellipsoidal tumour (semi-axes 13 x 36 x 36 voxels at 2.5 x 0.8 x 0.8 mm,
about 70,000 voxels) of smoothed-noise texture (40 +/- 120 HU), off centre so
that the ROI box is not symmetric in the volume. Seeded: every call gives the
same voxels. Arrays are (z, y, x); SimpleITK spacing (x, y, z).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

SHAPE_ZYX = (100, 512, 512)
SPACING_ZYX = (2.5, 0.8, 0.8)
CENTRE_ZYX = (46, 230, 290)
RADII_ZYX = (13, 36, 36)


@dataclass(frozen=True)
class Case:
    """The benchmark volume and its ROI (label 1), both 100 x 512 x 512."""

    image: sitk.Image
    mask: sitk.Image

    @property
    def roi_voxels(self) -> int:
        return int(np.count_nonzero(sitk.GetArrayViewFromImage(self.mask)))


def tumour_case(seed: int = 0) -> Case:
    """Build the case (about a second)."""
    rng = np.random.default_rng(seed)
    _, y, x = np.ogrid[tuple(slice(0, n) for n in SHAPE_ZYX)]
    body = ((y - 256) / 230.0) ** 2 + ((x - 256) / 240.0) ** 2 <= 1.0
    image = np.full(SHAPE_ZYX, -1000, dtype=np.int16)
    image[:] = np.where(body, np.int16(40), np.int16(-1000))
    image += rng.integers(-20, 21, size=SHAPE_ZYX, dtype=np.int16)

    box = tuple(slice(c - r - 2, c + r + 3) for c, r in zip(CENTRE_ZYX, RADII_ZYX))
    zz, yy, xx = np.ogrid[box]
    inside = sum(((v - c) / r) ** 2 for v, c, r in zip((zz, yy, xx), CENTRE_ZYX, RADII_ZYX)) <= 1.0
    texture = ndimage.gaussian_filter(rng.normal(size=inside.shape), 1.5)
    tumour = np.round(40 + 120 * texture / texture.std()).astype(np.int16)
    image[box] = np.where(inside, tumour, image[box])
    mask = np.zeros(SHAPE_ZYX, dtype=np.uint8)
    mask[box] = inside

    sitk_image = sitk.GetImageFromArray(image)
    sitk_image.SetSpacing(SPACING_ZYX[::-1])
    sitk_image.SetOrigin((-204.8, -204.8, -120.0))
    sitk_mask = sitk.GetImageFromArray(mask)
    sitk_mask.CopyInformation(sitk_image)
    return Case(sitk_image, sitk_mask)


def cropped_case(seed: int = 0) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """The case cropped to its ROI's bounding box, as PyRadiomics' cropToTumorMask does.

    Returns the (z, y, x) int16 image, the uint8 mask and ``SPACING_ZYX`` (mm):
    the input of the per-family benchmarks.
    """
    case = tumour_case(seed)
    mask = sitk.GetArrayFromImage(case.mask)
    box = tuple(slice(int(a.min()), int(a.max()) + 1) for a in np.nonzero(mask))
    return sitk.GetArrayFromImage(case.image)[box].copy(), mask[box].copy(), SPACING_ZYX


def best_of(fn, repeat: int) -> float:
    """Shortest of ``repeat`` wall-clock times of ``fn()``, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)
