"""Small structured ROIs shared by the GLSZM, GLDM and NGTDM tests."""

from __future__ import annotations

from functools import cache

import numpy as np
from scipy import ndimage


@cache
def texture_volume(name: str, seed: int):
    """(image, mask, spacing_zyx) of a small structured test case.

    ``ct_ellipsoid``: int16 HU-like, negative values, anisotropic voxels;
    ``pet_parts``: float SUV-like, two parts with holes and voxels without
    neighbours; ``ct_slab``: a region one voxel thick along z. ``seed`` gives
    each family its own texture.
    """
    rng = np.random.default_rng(seed)
    noise = ndimage.gaussian_filter(rng.normal(size=(20, 24, 24)), 1.5)
    noise /= noise.std()
    zz, yy, xx = np.ogrid[:20, :24, :24]
    ellipsoid = ((zz - 10) / 7.5) ** 2 + ((yy - 12) / 9.5) ** 2 + ((xx - 11) / 8.5) ** 2 <= 1
    if name == "ct_ellipsoid":
        return (noise * 120 - 40).astype(np.int16), ellipsoid, (2.5, 0.8, 0.8)
    if name == "pet_parts":
        mask = ellipsoid & ~(
            ((zz - 10) / 3) ** 2 + ((yy - 12) / 3) ** 2 + ((xx - 11) / 3) ** 2 <= 1
        )
        mask[:, :, 11] = False
        mask[1:4, 1:4, 19:23] = True
        mask[2, 2, 20] = False
        mask[18, 22, 1] = True
        mask[18, 19, 5] = True
        return (np.exp(noise) * 2.5).astype(np.float32), mask, (2.0, 4.0, 4.0)
    if name == "ct_slab":
        mask = np.zeros(ellipsoid.shape, bool)
        mask[9] = ellipsoid[10]
        return (noise * 120 - 40).astype(np.int16), mask, (1.0, 1.0, 1.0)
    raise KeyError(name)
