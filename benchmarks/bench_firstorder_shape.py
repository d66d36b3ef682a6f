"""Time radflow's firstorder, shape and shape2D against PyRadiomics 3.0.1's classes.

The case: an ellipsoid ROI of ~70k voxels with textured int16 HU values in a
100x512x512 CT grid, cropped to its bounding box (as both pipelines do). Times
are the median of ``--repeat`` warm runs; the first call, which compiles the
numba kernels (``--cold``: into an empty cache) or loads them from the cache,
is reported apart.

    python benchmarks/bench_firstorder_shape.py [--repeat 5] [--cold]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time

from common import cropped_case  # benchmarks/common.py


def _median_time(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cold", action="store_true", help="compile into an empty numba cache")
    args = parser.parse_args(argv)
    if args.cold:
        os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="radflow-numba-")

    import numpy as np
    import SimpleITK as sitk
    from radiomics import firstorder as rfirstorder
    from radiomics import imageoperations
    from radiomics import shape as rshape
    from radiomics import shape2D as rshape2d

    from radflow.features import firstorder, shape, shape2d

    logging.getLogger("radiomics").setLevel(logging.ERROR)
    ct, mask, spacing = cropped_case()
    z_mid = int(np.argmax(mask.sum(axis=(1, 2))))
    plane = mask[z_mid : z_mid + 1]
    print(f"ROI: {int(mask.sum())} voxels, box {mask.shape}, spacing_zyx {spacing} mm; "
          f"shape2D on slice {z_mid} ({int(plane.sum())} pixels)")  # fmt: skip

    def sitk_pair(image, roi):
        img = sitk.GetImageFromArray(image)
        img.SetSpacing(spacing[::-1])
        msk = sitk.GetImageFromArray(roi)
        msk.CopyInformation(img)
        return img, msk

    img, msk = sitk_pair(ct, mask)
    img2, msk2 = sitk_pair(ct[z_mid : z_mid + 1], plane)
    binned, _ = imageoperations.binImage(ct, mask.astype(bool), binWidth=25)

    def py_class(cls, image, roi, **settings):
        def run():
            feature_class = cls(image, roi, label=1, **settings)
            for name in feature_class.featureNames:
                feature_class.enableFeatureByName(name)
            return feature_class.execute()

        return run

    runs = [
        ("firstorder",
         lambda: firstorder.compute(ct, mask, binned, spacing_zyx=spacing, voxel_array_shift=1000),
         py_class(rfirstorder.RadiomicsFirstOrder, img, msk, binWidth=25, voxelArrayShift=1000)),
        ("shape", lambda: shape.compute(mask, spacing_zyx=spacing),
         py_class(rshape.RadiomicsShape, img, msk)),
        ("shape2D", lambda: shape2d.compute(plane, spacing_zyx=spacing),
         py_class(rshape2d.RadiomicsShape2D, img2, msk2, force2D=True, force2Ddimension=0)),
    ]  # fmt: skip
    print(f"{'family':<11}{'first call':>12}{'radflow':>12}{'PyRadiomics':>14}{'ratio':>9}")
    total_ours = total_theirs = 0.0
    for name, ours, theirs in runs:
        start = time.perf_counter()
        ours()
        first = time.perf_counter() - start
        t_ours = _median_time(ours, args.repeat)
        t_theirs = _median_time(theirs, max(1, min(args.repeat, 3)))
        total_ours += t_ours
        total_theirs += t_theirs
        print(f"{name:<11}{first * 1e3:>10.1f}ms{t_ours * 1e3:>10.2f}ms{t_theirs * 1e3:>12.1f}ms"
              f"{t_theirs / t_ours:>8.0f}x")  # fmt: skip
    print(f"{'total':<11}{'':>12}{total_ours * 1e3:>10.2f}ms{total_theirs * 1e3:>12.1f}ms"
          f"{total_theirs / total_ours:>8.0f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
