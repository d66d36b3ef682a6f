"""Small synthetic volumes shared by the extractor tests: CT, PET and MR-like.

Each function returns ``(image, mask)`` as SimpleITK images with a
non-trivial geometry (anisotropic spacing, an origin, for MR a flipped
direction), seeded so every run gives the same voxels. Arrays are built in
(z, y, x) order. The ROIs have what trips up feature code: holes, a
disconnected part, a one-voxel-thick arm, and for MR a second label.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

SHAPE_ZYX = (20, 28, 28)


def _grid(shape_zyx, spacing_zyx):
    axes = [np.arange(n) * s for n, s in zip(shape_zyx, spacing_zyx)]
    return np.meshgrid(*axes, indexing="ij")


def _ellipsoid(shape_zyx, spacing_zyx, centre_mm, radii_mm) -> np.ndarray:
    z, y, x = _grid(shape_zyx, spacing_zyx)
    return sum(((c - m) / r) ** 2 for c, m, r in zip((z, y, x), centre_mm, radii_mm)) <= 1.0


def _texture(rng, shape_zyx, sigma=1.2) -> np.ndarray:
    """Smoothed white noise scaled to unit standard deviation."""
    noise = ndimage.gaussian_filter(rng.normal(size=shape_zyx), sigma)
    return noise / noise.std()


def _image(array, spacing_zyx, origin_xyz, direction=None) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(tuple(float(s) for s in spacing_zyx[::-1]))
    image.SetOrigin(origin_xyz)
    if direction is not None:
        image.SetDirection(direction)
    return image


def _like(array, reference: sitk.Image) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(reference)
    return image


def ct(shape_zyx=SHAPE_ZYX) -> tuple[sitk.Image, sitk.Image]:
    """int16 CT in HU: lung-like background (-850), soft tissue, a textured tumour (~40 HU).

    The ROI is an ellipsoid with a cavity (air, -900 HU), plus a separate
    small nodule and a one-voxel-thick strand joining nothing.
    """
    rng = np.random.default_rng(1)
    spacing = (2.0, 0.8, 0.8)
    extent = [n * s for n, s in zip(shape_zyx, spacing)]
    centre = [e / 2 for e in extent]
    hu = -850 + 60 * _texture(rng, shape_zyx)
    body = _ellipsoid(shape_zyx, spacing, centre, [e * 0.48 for e in extent])
    tumour = _ellipsoid(shape_zyx, spacing, centre, [e * 0.3 for e in extent])
    hu[body & ~tumour] = 30 + 25 * _texture(rng, shape_zyx)[body & ~tumour]
    hu[tumour] = 40 + 120 * _texture(rng, shape_zyx, 0.8)[tumour]
    cavity = _ellipsoid(shape_zyx, spacing, [c + 1.5 for c in centre], [3.5, 2.0, 2.0])
    hu[cavity] = -900 + 20 * rng.normal(size=np.count_nonzero(cavity))
    image = _image(np.round(hu).astype(np.int16), spacing, (-11.5, 20.25, -300.0))

    roi = tumour.copy()
    roi[cavity] = False
    nodule = _ellipsoid(
        shape_zyx, spacing, [extent[0] * 0.2, extent[1] * 0.2, extent[2] * 0.75], [2.5, 1.8, 1.8]
    )
    roi |= nodule
    z = shape_zyx[0] // 2
    roi[z, 3, 4 : shape_zyx[2] // 2] = True  # one voxel thick, touching the tumour only at its end
    return image, _like(roi.astype(np.uint8), image)


def pet(shape_zyx=SHAPE_ZYX) -> tuple[sitk.Image, sitk.Image]:
    """float32 PET in SUV: background ~1, a heterogeneous hot lesion up to ~12, a ring-shaped
    ROI.
    """
    rng = np.random.default_rng(2)
    spacing = (3.27, 2.73, 2.73)
    extent = [n * s for n, s in zip(shape_zyx, spacing)]
    centre = [e * 0.5 for e in extent]
    z, y, x = _grid(shape_zyx, spacing)
    distance2 = sum((c - m) ** 2 for c, m in zip((z, y, x), centre))
    suv = 1.0 + 0.15 * _texture(rng, shape_zyx) + 10.0 * np.exp(-distance2 / (2 * 9.0**2))
    suv *= 1 + 0.1 * _texture(rng, shape_zyx, 0.7)
    suv = np.clip(suv, 0.05, None).astype(np.float32)
    image = _image(suv, spacing, (100.0, -50.0, 12.5))
    roi = (suv > 3.0) & _ellipsoid(shape_zyx, spacing, centre, [e * 0.4 for e in extent])
    roi &= ~_ellipsoid(
        shape_zyx, spacing, centre, [4.0, 3.0, 3.0]
    )  # necrotic core excluded: a hole
    return image, _like(roi.astype(np.uint8), image)


def mr(shape_zyx=(12, 32, 30)) -> tuple[sitk.Image, sitk.Image]:
    """float32 MR (arbitrary units), thick slices (5 mm), flipped y axis; labels 1 and 2.

    Label 2 (the one tested) has two disconnected parts and a hole; label 1
    surrounds part of it.
    """
    rng = np.random.default_rng(3)
    spacing = (5.0, 0.94, 1.1)
    extent = [n * s for n, s in zip(shape_zyx, spacing)]
    signal = 400 + 80 * _texture(rng, shape_zyx) + 30 * _texture(rng, shape_zyx, 0.6)
    labels = np.zeros(shape_zyx, np.uint8)
    left = _ellipsoid(
        shape_zyx, spacing, [extent[0] / 2, extent[1] * 0.35, extent[2] * 0.35], [18, 8, 7]
    )
    right = _ellipsoid(
        shape_zyx, spacing, [extent[0] / 2, extent[1] * 0.7, extent[2] * 0.65], [12, 5, 6]
    )
    around = _ellipsoid(
        shape_zyx, spacing, [extent[0] / 2, extent[1] * 0.35, extent[2] * 0.35], [22, 11, 10]
    )
    labels[around] = 1
    labels[left | right] = 2
    hole = _ellipsoid(
        shape_zyx, spacing, [extent[0] / 2, extent[1] * 0.35, extent[2] * 0.35], [5, 2, 2]
    )
    labels[hole] = 0
    signal[labels == 2] += 250 + 60 * _texture(rng, shape_zyx, 0.9)[labels == 2]
    direction = (1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)
    image = _image(signal.astype(np.float32), spacing, (-16.0, 15.0, -30.0), direction)
    return image, _like(labels, image)


def embedded(image: sitk.Image, mask: sitk.Image, pad_zyx, fill) -> tuple[sitk.Image, sitk.Image]:
    """`image` and `mask` inside a larger volume (`pad_zyx` voxels added on each side, `fill`
    outside).

    The ROI keeps its physical position; the volume gains room around it,
    so that radflow reads only a box of it.
    """
    pad = [(int(p), int(p)) for p in pad_zyx]
    array = np.pad(sitk.GetArrayFromImage(image), pad, constant_values=fill)
    labels = np.pad(sitk.GetArrayFromImage(mask), pad)
    out = sitk.GetImageFromArray(array)
    out.SetSpacing(image.GetSpacing())
    out.SetDirection(image.GetDirection())
    out.SetOrigin(image.TransformIndexToPhysicalPoint([-int(p) for p in pad_zyx[::-1]]))
    return out, _like(labels, out)
