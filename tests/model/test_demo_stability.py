"""The demo's stability step (``radflow.demo.scenario.stability_step``) and the ICC
filter it feeds into the demo's study spec.

A store of five CT series, each a textured ellipsoid GTV of its own size, plus
an organ at risk the step must leave out. The smallest GTV erodes below the
demo's minimum ROI size (50 voxels): that extraction fails, is printed, and
the GTV is left out of the ICC. The ICC(1,1) of the voxel volume is
recomputed here from the other masks alone (scipy's erosion and dilation by
the 6-neighbour cross; noise leaves the mask as it is) with the one-way
ANOVA formula of Shrout & Fleiss (1979).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

SPACING_ZYX = (2.0, 1.0, 1.0)
RADII = (4.0, 5.0, 6.0, 7.5, 9.0)  # in-plane semi-axes (voxels) of the five GTVs


def _masks():
    zz, yy, xx = np.ogrid[:16, :40, :40]
    for k, r in enumerate(RADII):
        gtv = ((zz - 8) / (r / 2)) ** 2 + ((yy - 20) / r) ** 2 + ((xx - 20) / (0.8 * r)) ** 2 <= 1
        organ = ((zz - 8) / 3.0) ** 2 + ((yy - 20) / 4.0) ** 2 + ((xx - 4) / 2.5) ** 2 <= 1
        yield k, gtv, organ


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    import SimpleITK as sitk

    from radflow.io.records import LabelMap
    from radflow.store.write import write_series

    root = tmp_path_factory.mktemp("stability") / "store"
    rng = np.random.default_rng(0)
    for k, gtv, organ in _masks():
        ct = rng.normal(-50.0, 30.0, gtv.shape) + np.where(gtv, 80.0 + 15 * k, 0.0)
        image = sitk.GetImageFromArray(ct.astype(np.int16))
        image.SetSpacing(SPACING_ZYX[::-1])
        labels = sitk.GetImageFromArray((gtv + 2 * organ).astype(np.uint8))
        labels.CopyInformation(image)
        write_series(
            root,
            f"P{k:04d}",
            f"CT{k}",
            image,
            [LabelMap("rs", "labelmap", labels, {1: "GTV", 2: "Parotid_L"})],
            attrs={"modality": "CT"},
            fingerprint=f"fp{k}",
        )
    return root


def _icc_1_1(table: np.ndarray) -> float:
    """ICC(1,1) of a subjects x raters table: (MSR - MSW) / (MSR + (k - 1) MSW)."""
    n, k = table.shape
    msr = k * np.sum((table.mean(axis=1) - table.mean()) ** 2) / (n - 1)
    msw = np.sum((table - table.mean(axis=1, keepdims=True)) ** 2) / (n * (k - 1))
    return (msr - msw) / (msr + (k - 1) * msw)


def test_stability_step_writes_the_icc_table(store, tmp_path, capsys):
    from scipy import ndimage

    from radflow.demo.scenario import STABILITY_PERTURBATIONS, stability_step

    out = stability_step(store, tmp_path / "stability_icc.parquet")
    printed = capsys.readouterr().out
    assert out == tmp_path / "stability_icc.parquet"
    assert [p.name for p in tmp_path.iterdir()] == ["stability_icc.parquet"]  # no temporary left
    assert f"{len(RADII)} CT GTVs x {len(STABILITY_PERTURBATIONS)} perturbations" in printed
    assert "failed: P0000 erode1:" in printed and "ICC over 4 GTVs" in printed
    icc = pd.read_parquet(out)
    assert set(icc["roi"]) == {"gtv"} and set(icc["modality"]) == {"CT"}  # no organ at risk
    assert (icc["n_subjects"] == len(RADII) - 1).all()
    assert icc["feature"].str.startswith("CT.gtv.original_").all()

    cross = ndimage.generate_binary_structure(3, 1)
    voxel_mm3 = float(np.prod(SPACING_ZYX))
    volumes = (
        np.array(
            [
                [
                    gtv.sum(),
                    ndimage.binary_erosion(gtv, cross).sum(),
                    ndimage.binary_dilation(gtv, cross).sum(),
                    gtv.sum(),
                ]
                for _, gtv, _ in _masks()
            ]
        )
        * voxel_mm3
    )
    assert volumes[0, 1] < 50 * voxel_mm3 <= volumes[1:, 1].min()  # why P0000 fails
    volumes = volumes[1:]
    row = icc[(icc["feature"] == "CT.gtv.original_shape_VoxelVolume") & (icc["form"] == "ICC(1,1)")]
    assert row["icc"].item() == pytest.approx(_icc_1_1(volumes), rel=1e-9)


def test_demo_spec_filters_by_the_stability_table(store, tmp_path):
    from radflow.demo.scenario import stability_step
    from radflow.demo.study import ICC_RULE, default_spec
    from radflow.model.spec import parse_spec

    icc = stability_step(store, tmp_path / "stability_icc.parquet")
    (tmp_path / "features").mkdir()
    mapping = default_spec(tmp_path / "features", tmp_path, icc_table=icc)
    assert mapping["pipeline"]["select"][0] == {"method": "icc", "table": str(icc), **ICC_RULE}
    assert ICC_RULE == {"threshold": 0.75, "form": "ICC(1,1)", "statistic": "ci_low"}
    step = parse_spec(mapping).pipeline.select[0]
    assert step.method == "icc" and step.params["table"] == str(icc)
    no_icc = default_spec(tmp_path / "features", tmp_path)
    assert [s["method"] for s in no_icc["pipeline"]["select"]] == ["nzv"]
