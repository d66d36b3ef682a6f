"""Skeleton features (:func:`radflow.features.skeleton.compute`): time per ROI.

The ROIs are the GTVs of the synthetic demo cohort (:func:`radflow.demo.cohort.draw_cohort`,
seed 0, ``--patients`` of them), on their CT grid exactly as ``radflow demo-data`` writes it
(:func:`radflow.demo.imaging.simulate_ct`, the archive's CT before DICOM storage; nothing is
written to disk). Each mask is cropped to the GTV's box, as the extraction gives it, and timed
with its spacing on the default grid (the smallest spacing), best of ``--repeat`` calls, one
process, one core. The first call of a process also compiles skan's numba functions (those skan
does not cache): it is reported apart.

``--large`` adds the per-family benchmarks' ~70,000-voxel tumour (:func:`common.cropped_case`),
to show how the time grows with the ROI.

Run::

    python benchmarks/bench_skeleton.py [--patients 12] [--repeat 10] [--large]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

# After the sys.path line: benchmarks/ is not a package (see bench_extract.py).
import common  # noqa: E402

from radflow.demo.cohort import draw_cohort  # noqa: E402
from radflow.demo.imaging import simulate_ct  # noqa: E402
from radflow.features import skeleton  # noqa: E402


def cropped(roi: np.ndarray) -> np.ndarray:
    box = tuple(slice(int(a.min()), int(a.max()) + 1) for a in np.nonzero(roi))
    return roi[box]


def best_ms(roi: np.ndarray, spacing_zyx, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        skeleton.compute(roi, spacing_zyx=spacing_zyx)
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--large", action="store_true")
    args = parser.parse_args(argv)

    cases = []
    for patient in draw_cohort(args.patients, seed=0):
        ct = simulate_ct(patient)
        cases.append((f"patient {patient.index}", cropped(ct.labels == 1), ct.grid.spacing_zyx))
    start = time.perf_counter()
    skeleton.compute(cases[0][1], spacing_zyx=cases[0][2])
    first = time.perf_counter() - start
    print(f"first call of the process (skan's numba compilation included): {first:.2f} s")

    print(
        f"{'ROI':<12} {'voxels':>7} {'spacing mm':>15} {'length mm':>10} {'branches':>9} "
        f"{'thick mm':>9} {'ms':>8}"
    )
    rows = []
    for name, roi, spacing in cases:
        ms = best_ms(roi, spacing, args.repeat)
        out = skeleton.compute(roi, spacing_zyx=spacing)
        voxels = int(np.count_nonzero(roi))
        rows.append((voxels, ms))
        print(
            f"{name:<12} {voxels:>7} {'x'.join(f'{s:g}' for s in spacing):>15} "
            f"{out['TotalLength']:>10.1f} {int(out['BranchCount']):>9} "
            f"{out['MeanThickness']:>9.1f} {ms:>8.2f}"
        )
    voxels, ms = np.array(rows, dtype=np.float64).T
    print(
        f"demo GTVs: {len(rows)} ROIs, {int(voxels.min())}-{int(voxels.max())} voxels "
        f"(median {int(np.median(voxels))}): median {np.median(ms):.2f} ms per ROI, "
        f"mean {ms.mean():.2f} ms, max {ms.max():.2f} ms"
    )
    if args.large:
        _, mask, spacing = common.cropped_case()
        roi = mask.astype(bool)
        ms_large = best_ms(roi, spacing, max(3, args.repeat // 3))
        print(
            f"large tumour: {int(np.count_nonzero(roi))} voxels, box "
            f"{'x'.join(map(str, roi.shape))}, spacing {'x'.join(f'{s:g}' for s in spacing)} "
            f"mm: {ms_large:.2f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
