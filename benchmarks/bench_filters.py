"""PyRadiomics' image type generators on the whole CT vs radflow's on the ROI's crop.

The case is a synthetic 100 x 512 x 512 int16 CT (0.7 x 0.7 x 2.0 mm: air,
a soft-tissue body, two lungs, a spine) with a ~70k-voxel textured
ellipsoidal tumour. Image types: LoG (sigma 1 and 3 mm), Wavelet (coif1, the
8 decompositions), Square, SquareRoot, Logarithm, Exponential, Gradient.

PyRadiomics filters the whole image (its default, ``preCrop`` false).
radflow reads, per image type, the ROI box grown by that type's margin
(:func:`radflow.filters.image_types.read_box`) and filters that crop; the
time includes the crop. The largest deviation from PyRadiomics inside the
ROI is printed per image, relative to the largest absolute value of that
image in the ROI. Run: ``python benchmarks/bench_filters.py``.
"""

from __future__ import annotations

import time

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from radflow.filters import intensity
from radflow.filters.image_types import image_types, read_box

SPACING_XYZ = (0.7, 0.7, 2.0)
ENABLED = {
    "LoG": {"sigma": [1.0, 3.0]},
    "Wavelet": {},
    "Square": {},
    "SquareRoot": {},
    "Logarithm": {},
    "Exponential": {},
    "Gradient": {},
}


def phantom_ct(shape=(100, 512, 512), seed=0) -> tuple[np.ndarray, np.ndarray]:
    """(int16 CT in HU, uint8 mask of a ~70k-voxel tumour), both (z, y, x)."""
    rng = np.random.default_rng(seed)
    z, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    ct = np.full(shape, -1000.0, dtype=np.float32)
    body = ((y - 256) / 170.0) ** 2 + ((x - 256) / 230.0) ** 2 <= 1
    ct[np.broadcast_to(body, shape)] = 40.0
    for cx in (170, 342):  # lungs
        lung = ((y - 240) / 110.0) ** 2 + ((x - cx) / 70.0) ** 2 + ((z - 50) / 60.0) ** 2 <= 1
        ct[lung] = -850.0
    spine = ((y - 380) / 25.0) ** 2 + ((x - 256) / 25.0) ** 2 <= 1
    ct[np.broadcast_to(spine, shape)] = 700.0
    noise = ndimage.gaussian_filter(rng.normal(0.0, 1.0, shape).astype(np.float32), (0.7, 1.5, 1.5))
    ct += 60.0 * noise / noise.std()
    tumour = ((z - 50) / 10.0) ** 2 + ((y - 230) / 35.0) ** 2 + ((x - 160) / 48.0) ** 2 <= 1
    ct[tumour] = 30.0 + 400.0 * noise[tumour]
    return np.clip(ct, -1024, 3071).astype(np.int16), tumour.astype(np.uint8)


def _image(array: np.ndarray, origin=(0.0, 0.0, 0.0)) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(SPACING_XYZ)
    image.SetOrigin(origin)
    return image


def pyradiomics_run(image, mask) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Seconds per image type for PyRadiomics' generators on the whole image, and each image's
    ROI values.
    """
    from radiomics import imageoperations

    roi = sitk.GetArrayViewFromImage(mask).astype(bool)
    values, seconds = {}, {}
    for image_type, custom in ENABLED.items():
        start = time.perf_counter()
        for filtered, name, _ in getattr(imageoperations, f"get{image_type}Image")(
            image, mask, **custom
        ):
            values[name] = sitk.GetArrayViewFromImage(filtered)[roi].astype(np.float64)
        seconds[image_type] = time.perf_counter() - start
    return seconds, values


def radflow_run(
    ct: np.ndarray, mask: np.ndarray, union: bool
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Seconds per crop for radflow on per-type crops (or one crop for all types), and the ROI
    values.

    The volume's max |HU| is a statistic the store keeps; it is computed
    before the clock starts.
    """
    bbox = ndimage.find_objects(mask)[0]
    max_abs = float(np.abs(ct).max())
    groups = [ENABLED] if union else [{t: c} for t, c in ENABLED.items()]
    values, seconds = {}, {}
    for enabled in groups:
        start = time.perf_counter()
        box = read_box(enabled, {}, bbox, ct.shape, SPACING_XYZ[::-1])
        origin = tuple(float(s.start) * d for s, d in zip(box[::-1], SPACING_XYZ))
        image, crop_mask = _image(ct[box], origin), _image(mask[box], origin)
        roi = mask[box].astype(bool)
        for name, filtered, _ in image_types(
            image, crop_mask, enabled, {}, source_shape_zyx=ct.shape, source_max_abs=max_abs
        ):
            values[name] = sitk.GetArrayViewFromImage(filtered)[roi].astype(np.float64)
        seconds["+".join(enabled)] = time.perf_counter() - start
    return seconds, values


def main() -> None:
    ct, mask = phantom_ct()
    print(
        f"CT {ct.shape} int16, ROI {int(mask.sum())} voxels, bbox {ndimage.find_objects(mask)[0]}"
    )
    radflow_run(ct[:40, :64, :64], mask[:40, :64, :64] | 1, union=False)  # warm imports
    t_ours, ours = radflow_run(ct, mask, union=False)
    t_union, _ = radflow_run(ct, mask, union=True)
    image, sitk_mask = _image(ct), _image(mask)
    t_theirs, theirs = pyradiomics_run(image, sitk_mask)
    assert list(ours) == list(theirs), (list(ours), list(theirs))
    print(f"{'image':24s} {'max |dev| / max |value| in ROI':>32s}")
    for name in theirs:
        scale = np.abs(theirs[name]).max()
        print(f"{name:24s} {np.abs(ours[name] - theirs[name]).max() / scale:32.2e}")
    print(f"{'image type':12s} {'PyRadiomics s':>14s} {'radflow s':>10s} {'ratio':>7s}")
    for image_type in ENABLED:
        print(
            f"{image_type:12s} {t_theirs[image_type]:14.3f} {t_ours[image_type]:10.3f} "
            f"{t_theirs[image_type] / t_ours[image_type]:7.1f}"
        )
    total_theirs, total_ours, total_union = (sum(t.values()) for t in (t_theirs, t_ours, t_union))
    print(f"PyRadiomics (whole image): {total_theirs:7.2f} s")
    print(f"radflow (crop per type):   {total_ours:7.2f} s   x{total_theirs / total_ours:.1f}")
    print(f"radflow (one union crop):  {total_union:7.2f} s   x{total_theirs / total_union:.1f}")
    print(f"(max |HU| of the volume, which the store should keep: {intensity.max_abs(image):.0f})")


if __name__ == "__main__":
    main()
