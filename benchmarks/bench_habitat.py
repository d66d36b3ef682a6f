"""Habitat features (:func:`radflow.features.habitat.habitat_features`): time per ROI.

The ROIs are the GTVs of the synthetic demo cohort (:func:`radflow.demo.cohort.draw_cohort`,
seed 0, ``--patients`` of them), on their CT exactly as ``radflow demo-data`` writes it
(:func:`radflow.demo.imaging.simulate_ct`, the archive's CT before DICOM storage; nothing is
written to disk). The habitat maps are a stand-in until ``radflow habitats apply`` lands: the
CT inside the GTV, smoothed by a Gaussian of ``--smooth`` voxels, cut at its tertiles into 3
classes (1 = lowest HU, 3 = highest). Each map is cropped to the GTV's box, as the extraction
gives it, and timed with its spacing (best of ``--repeat`` calls, one process, one core).

``--large`` adds the per-family benchmarks' ~70,000-voxel tumour (:func:`common.cropped_case`)
cut the same way, to show how the time grows with the ROI.

Run::

    python benchmarks/bench_habitat.py [--patients 12] [--repeat 20] [--smooth 1.0] [--large]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

# After the sys.path line: benchmarks/ is not a package (see bench_extract.py).
import common  # noqa: E402

from radflow.demo.cohort import draw_cohort  # noqa: E402
from radflow.demo.imaging import simulate_ct  # noqa: E402
from radflow.features.habitat import habitat_features  # noqa: E402

N_HABITATS = 3


def tertile_habitats(values: np.ndarray, roi: np.ndarray, smooth: float) -> np.ndarray:
    """Stand-in habitat map (uint8, cropped to the ROI's box): smoothed values cut at tertiles."""
    box = tuple(slice(int(a.min()), int(a.max()) + 1) for a in np.nonzero(roi))
    values, roi = values[box].astype(np.float64), roi[box]
    if smooth > 0:
        values = ndimage.gaussian_filter(values, smooth)
    cuts = np.quantile(values[roi], [1 / 3, 2 / 3])
    habitats = np.zeros(roi.shape, dtype=np.uint8)
    habitats[roi] = 1 + np.searchsorted(cuts, values[roi], side="right")
    return habitats


def best_ms(habitats: np.ndarray, spacing_zyx, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        habitat_features(habitats, spacing_zyx, N_HABITATS)
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--smooth", type=float, default=1.0, help="Gaussian sigma, voxels")
    parser.add_argument("--large", action="store_true")
    args = parser.parse_args(argv)

    cases = []
    for patient in draw_cohort(args.patients, seed=0):
        ct = simulate_ct(patient)
        roi = ct.labels == 1
        cases.append(
            (f"patient {patient.index}", tertile_habitats(ct.values, roi, args.smooth), ct.grid)
        )
    habitat_features(cases[0][1], cases[0][2].spacing_zyx, N_HABITATS)  # warm caches

    print(f"{'ROI':<14} {'voxels':>8} {'box':>16} {'components':>11} {'ITH':>6} {'ms':>8}")
    rows = []
    for name, habitats, grid in cases:
        ms = best_ms(habitats, grid.spacing_zyx, args.repeat)
        out = habitat_features(habitats, grid.spacing_zyx, N_HABITATS)
        n_components = sum(int(out[f"Components_{k}"]) for k in range(1, N_HABITATS + 1))
        voxels = int(np.count_nonzero(habitats))
        rows.append((voxels, ms))
        box = "x".join(map(str, habitats.shape))
        print(
            f"{name:<14} {voxels:>8} {box:>16} {n_components:>11} "
            f"{out['ITHScore']:>6.3f} {ms:>8.3f}"
        )
    voxels, ms = np.array(rows, dtype=np.float64).T
    print(
        f"demo GTVs: {len(rows)} ROIs, {int(voxels.min())}-{int(voxels.max())} voxels "
        f"(median {int(np.median(voxels))}): median {np.median(ms):.3f} ms per ROI, "
        f"mean {ms.mean():.3f} ms, max {ms.max():.3f} ms"
    )
    if args.large:
        image, mask, spacing = common.cropped_case()
        habitats = tertile_habitats(image, mask.astype(bool), args.smooth)
        ms_large = best_ms(habitats, spacing, max(3, args.repeat // 4))
        print(
            f"large tumour: {int(np.count_nonzero(habitats))} voxels, box "
            f"{'x'.join(map(str, habitats.shape))}: {ms_large:.3f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
