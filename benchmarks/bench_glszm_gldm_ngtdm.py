"""GLSZM, GLDM and NGTDM: radflow against PyRadiomics 3.0.1 on a ~70k-voxel tumour.

The ROI is an ellipsoid (semi-axes 13 x 36 x 36 voxels, ~70k voxels) of
smoothed-noise soft tissue (int16 HU) in a 100 x 512 x 512 CT, cropped to its
bounding box as PyRadiomics' extractor does. Both sides use their defaults
(binWidth 25, distance 1, gldm_a 0, 3D). PyRadiomics' time is its feature
class (binning, matrix and features); radflow's is ``compute`` on the binned
box with numba compiled (binning, another module's job, timed apart). The
first radflow call is reported apart: numba compilation into an empty cache
directory, unless ``--keep-cache`` (then it may be a cache load).

Run: ``python benchmarks/bench_glszm_gldm_ngtdm.py [--repeat N] [--keep-cache]``
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time

import numpy as np
from common import best_of, cropped_case  # benchmarks/common.py


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep-cache", action="store_true", help="use numba's usual on-disk cache")
    args = parser.parse_args(argv)
    if not args.keep_cache:
        if "numba" in sys.modules:
            raise RuntimeError("numba already imported: cannot point it at an empty cache")
        os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="radflow-bench-numba-")

    import radiomics
    import SimpleITK as sitk
    from radiomics import gldm as py_gldm
    from radiomics import glszm as py_glszm
    from radiomics import ngtdm as py_ngtdm
    from radiomics.imageoperations import binImage

    from radflow.features import gldm, glszm, ngtdm

    radiomics.setVerbosity(logging.ERROR)
    image, mask, spacing_zyx = cropped_case()
    sitk_image = sitk.GetImageFromArray(image)
    sitk_image.SetSpacing(spacing_zyx[::-1])
    sitk_mask = sitk.GetImageFromArray(mask)
    sitk_mask.CopyInformation(sitk_image)
    roi = mask.astype(bool)
    t_bin = best_of(lambda: binImage(image, roi, binWidth=25), args.repeat)
    binned, _ = binImage(image, roi, binWidth=25)
    n_levels = len(np.unique(binned[roi]))
    print(f"ROI: {int(mask.sum())} voxels, box {image.shape}, {n_levels} grey levels (binWidth 25)")
    print(f"PyRadiomics binImage (not in radflow's times): {t_bin * 1e3:.2f} ms")

    def pyradiomics(cls):
        def run():
            features = cls(sitk_image, sitk_mask, binWidth=25)
            features.enableAllFeatures()
            return features.execute()

        return run

    total_py = total_rf = 0.0
    families = (
        ("glszm", py_glszm.RadiomicsGLSZM, glszm),
        ("gldm", py_gldm.RadiomicsGLDM, gldm),
        ("ngtdm", py_ngtdm.RadiomicsNGTDM, ngtdm),
    )
    for name, cls, module in families:
        t0 = time.perf_counter()
        ours = module.compute(binned, mask)
        first = time.perf_counter() - t0
        t_rf = best_of(lambda module=module: module.compute(binned, mask), args.repeat)
        t_py = best_of(pyradiomics(cls), args.repeat)
        theirs = pyradiomics(cls)()
        worst = max(abs(ours[k] - float(v)) / max(abs(float(v)), 1e-300) for k, v in theirs.items())
        total_py += t_py
        total_rf += t_rf
        print(
            f"{name:6s} PyRadiomics {t_py * 1e3:8.1f} ms   radflow {t_rf * 1e3:7.2f} ms   "
            f"x{t_py / t_rf:6.1f}   (first call {first:.2f} s; max rel. diff {worst:.1e})"
        )
    print(
        f"all    PyRadiomics {total_py * 1e3:8.1f} ms   radflow {total_rf * 1e3:7.2f} ms   "
        f"x{total_py / total_rf:6.1f}"
    )


if __name__ == "__main__":
    main()
