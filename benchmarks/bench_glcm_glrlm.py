"""GLCM and GLRLM: radflow against PyRadiomics 3.0.1 on a ~70k-voxel tumour.

The ROI is an ellipsoid (semi-axes 13 x 36 x 36 voxels, ~70k voxels) of
smoothed-noise soft tissue (int16 HU) in a 100 x 512 x 512 CT, cropped to its
bounding box as PyRadiomics' extractor does. Both sides use their defaults
(binWidth 25, distance 1, symmetric GLCM, 13 directions). PyRadiomics' time
is its feature class, ``__init__`` (binning) + ``execute`` (C matrix, NumPy
features); radflow's is ``compute`` on the binned box with numba compiled.
Times are the best of ``--repeat`` runs (the machine may be shared). The
first radflow call (numba compile, or load from numba's cache) is reported
apart.

Run: ``python benchmarks/bench_glcm_glrlm.py [--repeat N]``
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import SimpleITK as sitk
from common import best_of, cropped_case  # benchmarks/common.py


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)

    import radiomics
    from radiomics import glcm as py_glcm
    from radiomics import glrlm as py_glrlm
    from radiomics.imageoperations import binImage

    from radflow.features import glcm, glrlm

    radiomics.setVerbosity(logging.ERROR)
    image, mask, spacing_zyx = cropped_case()
    sitk_image = sitk.GetImageFromArray(image)
    sitk_image.SetSpacing(spacing_zyx[::-1])
    sitk_mask = sitk.GetImageFromArray(mask)
    sitk_mask.CopyInformation(sitk_image)
    binned, _ = binImage(image, mask.astype(bool), binWidth=25)
    n_levels = len(np.unique(binned[mask > 0]))
    print(f"ROI: {int(mask.sum())} voxels, box {image.shape}, {n_levels} grey levels (binWidth 25)")

    def pyradiomics(cls):
        def run():
            features = cls(sitk_image, sitk_mask, binWidth=25)
            features.enableAllFeatures()
            return features.execute()

        return run

    total_py = total_rf = 0.0
    for name, cls, module in (
        ("glcm", py_glcm.RadiomicsGLCM, glcm),
        ("glrlm", py_glrlm.RadiomicsGLRLM, glrlm),
    ):
        t0 = time.perf_counter()
        module.compute(binned, mask, spacing_zyx=spacing_zyx)
        first = time.perf_counter() - t0
        t_rf = best_of(
            lambda module=module: module.compute(binned, mask, spacing_zyx=spacing_zyx), args.repeat
        )
        t_py = best_of(pyradiomics(cls), args.repeat)
        total_py += t_py
        total_rf += t_rf
        print(
            f"{name:6s} PyRadiomics {t_py * 1e3:8.1f} ms   radflow {t_rf * 1e3:7.2f} ms   "
            f"x{t_py / t_rf:6.1f}   (radflow first call {first:.2f} s)"
        )
    print(
        f"both   PyRadiomics {total_py * 1e3:8.1f} ms   radflow {total_rf * 1e3:7.2f} ms   "
        f"x{total_py / total_rf:6.1f}"
    )


if __name__ == "__main__":
    main()
