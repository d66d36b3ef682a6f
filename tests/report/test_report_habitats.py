"""Habitats in the report: QC fills inside the contour, fractions per patient, a reference.

Expected values are counted by hand on small arrays (which pixels a habitat fills, the bar
heights) or computed from the data by NumPy (correlations), never copied from the report.
"""

from __future__ import annotations

import re

import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pytest

from radflow.errors import SettingsError
from radflow.report import figures as F
from radflow.report.habitats import (
    HabitatReference,
    habitat_feature_columns,
    habitat_fractions,
    reference_agreement,
)


def _axes(fig, label):
    return next(ax for ax in fig.axes if ax.get_label() == label)


# -- figures ----------------------------------------------------------------


def _slice_with_habitats():
    image = np.zeros((1, 8, 8))
    mask = np.zeros((1, 8, 8), dtype=np.uint8)
    mask[0, 2:6, 2:6] = 1  # a 4 x 4 ROI
    habitats = np.zeros((1, 8, 8), dtype=np.uint8)
    habitats[0, 2:6, 2:4] = 1  # left half: habitat 1
    habitats[0, 2:6, 4:6] = 2  # right half: habitat 2
    return image, mask, habitats


def test_qc_slice_fills_each_habitat_in_its_colour_inside_the_contour():
    image, mask, habitats = _slice_with_habitats()
    fig = F.qc_slice(image, {"gtv": mask}, spacing_zyx=(1, 1, 1), habitats=habitats)
    ax = _axes(fig, "qc")
    fills = [im for im in ax.get_images() if im.get_label() == "habitats"]
    assert len(fills) == 1
    rgba = np.asarray(fills[0].get_array())
    colours = F.habitat_colours(2)
    for k, (rows, cols) in {1: (slice(2, 6), slice(2, 4)), 2: (slice(2, 6), slice(4, 6))}.items():
        block = rgba[rows, cols]
        assert np.allclose(block[..., :3], mcolors.to_rgb(colours[k - 1]))
        assert np.all(block[..., 3] > 0)
    outside = np.ones((8, 8), bool)
    outside[2:6, 2:6] = False
    assert np.all(rgba[outside][:, 3] == 0)  # transparent outside the ROI
    assert [line.get_label() for line in ax.lines if line.get_label() == "roi:gtv"]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["gtv", "habitat 1", "habitat 2"]


def test_qc_slice_names_only_the_habitats_on_the_slice_and_checks_the_map():
    image, mask, habitats = _slice_with_habitats()
    habitats[habitats == 2] = 1
    fig = F.qc_slice(image, {"gtv": mask}, spacing_zyx=(1, 1, 1), habitats=habitats, n_habitats=3)
    legend = [t.get_text() for t in _axes(fig, "qc").get_legend().get_texts()]
    assert legend == ["gtv", "habitat 1"]
    with pytest.raises(SettingsError, match="shape"):
        F.qc_slice(image, {"gtv": mask}, spacing_zyx=(1, 1, 1), habitats=habitats[:, :4])
    with pytest.raises(SettingsError, match="integers"):
        F.qc_slice(image, {"gtv": mask}, spacing_zyx=(1, 1, 1), habitats=habitats * 0.5)
    with pytest.raises(SettingsError, match="n_habitats"):
        F.qc_slice(image, mask, spacing_zyx=(1, 1, 1), habitats=habitats * 3, n_habitats=2)


def test_habitat_colours_darken_to_lighten_with_the_habitat_number():
    colours = F.habitat_colours(4)
    assert len(set(colours)) == 4
    lightness = [np.dot(mcolors.to_rgb(c), (0.299, 0.587, 0.114)) for c in colours]
    assert lightness == sorted(lightness)
    with pytest.raises(SettingsError):
        F.habitat_colours(0)


def test_habitat_fractions_plot_stacks_each_patients_fractions_largest_first():
    fractions = pd.DataFrame({1: [0.2, 0.6, 0.1], 2: [0.8, 0.4, 0.9]}, index=["Pa", "Pb", "Pc"])
    ax = _axes(F.habitat_fractions_plot(fractions), "habitat_fractions")
    bars = ax.patches
    assert len(bars) == 6
    # Ordered by habitat 1's fraction, largest first: Pb (0.6), Pa (0.2), Pc (0.1).
    first = sorted(bars[:3], key=lambda b: b.get_x())
    second = sorted(bars[3:], key=lambda b: b.get_x())
    assert [round(b.get_height(), 6) for b in first] == [0.6, 0.2, 0.1]
    assert [round(b.get_height(), 6) for b in second] == [0.4, 0.8, 0.9]
    assert [round(b.get_y(), 6) for b in second] == [0.6, 0.2, 0.1]  # stacked on habitat 1
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["habitat 1", "habitat 2"]
    with pytest.raises(SettingsError, match=r"\[0, 1\]"):
        F.habitat_fractions_plot(fractions * 2)


def test_reference_scatter_titles_the_correlations_of_the_data():
    # x = 1, 2, 3 and y = 1, 3, 2: covariance 1, variances 2 and 2 -> r = 0.5; ranks equal
    # the values, so Spearman's rho is 0.5 too.
    fig = F.reference_scatter([1, 2, 3, np.nan], [1, 3, 2, 5], xlabel="truth", ylabel="habitat")
    ax = _axes(fig, "agreement")
    assert ax.get_title() == "Pearson r 0.50, Spearman rho 0.50 (n = 3)"
    assert len(ax.collections[0].get_offsets()) == 3
    with pytest.raises(SettingsError, match="3 patients"):
        F.reference_scatter([1, 2], [1, 2], xlabel="x", ylabel="y")


# -- design columns and the reference -----------------------------------------


def _design(n=12, seed=0):
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0.0, 0.35, n)
    fraction = np.clip(truth + rng.normal(0, 0.05, n), 0, 1)
    index = [f"P{i:03d}" for i in range(n)]
    X = pd.DataFrame(
        {
            "CT.gtv.original_firstorder_Mean": rng.normal(size=n),
            "CT.gtv.original_habitat_Fraction_1": fraction,
            "CT.gtv.original_habitat_Fraction_2": 1 - fraction,
            "CT.gtv.original_habitat_ITHScore": rng.uniform(size=n),
            "stage": rng.integers(0, 4, n).astype(float),
        },
        index=index,
    )
    return X, pd.Series(truth, index=index)


def test_habitat_fractions_are_read_from_the_design_columns():
    X, _ = _design()
    found = habitat_fractions(X)
    assert list(found) == ["CT.gtv"]
    assert list(found["CT.gtv"].columns) == [1, 2]
    assert np.array_equal(found["CT.gtv"][1], X["CT.gtv.original_habitat_Fraction_1"])
    assert habitat_fractions(X.drop(columns=[c for c in X if "habitat" in c])) == {}
    assert habitat_feature_columns(X.columns) == [
        "CT.gtv.original_habitat_Fraction_1",
        "CT.gtv.original_habitat_Fraction_2",
        "CT.gtv.original_habitat_ITHScore",
    ]


def test_reference_agreement_is_computed_from_the_patients_with_both_values():
    X, truth = _design()
    truth.iloc[0] = np.nan  # a patient without the reference
    truth["Pother"] = 0.5  # a patient outside the design
    agreement = reference_agreement(X, HabitatReference(truth, 1, "necrosis"))
    keep = truth.reindex(X.index).notna()
    x = X["CT.gtv.original_habitat_Fraction_1"][keep].to_numpy()
    y = truth.reindex(X.index)[keep].to_numpy()
    assert agreement.n == len(X) - 1
    assert agreement.column == "CT.gtv.original_habitat_Fraction_1"
    assert agreement.pearson == pytest.approx(np.corrcoef(x, y)[0, 1])
    ranks = [pd.Series(v).rank().to_numpy() for v in (x, y)]
    assert agreement.spearman == pytest.approx(np.corrcoef(*ranks)[0, 1])
    # Habitat 2 is 1 - habitat 1: the opposite correlation, from the same data.
    other = reference_agreement(X, HabitatReference(truth, 2, "necrosis"))
    assert other.pearson == pytest.approx(-agreement.pearson)
    assert "Pearson r" in agreement.text(HabitatReference(truth, 1, "necrosis"))
    assert reference_agreement(X, HabitatReference(truth, 3, "necrosis")) is None
    assert reference_agreement(X, HabitatReference(truth, 1, "n", where="PT.gtv_pet")) is None


# -- the report ---------------------------------------------------------------


def _fit(X, truth):
    """A fitted scaling + Cox pipeline on X (the habitat fraction drives the hazard)."""
    from sksurv.util import Surv

    from radflow.model.builder import build_pipeline
    from radflow.model.design import Design
    from radflow.model.spec import parse_spec
    from radflow.report.build import FitOutputs

    rng = np.random.default_rng(1)
    n = len(X)
    hazard = np.exp(6.0 * truth.reindex(X.index).fillna(0.1).to_numpy())
    time = rng.exponential(30.0 / hazard)
    y = Surv.from_arrays(event=np.ones(n, bool), time=time)
    spec = parse_spec(
        {
            "table": "table",
            "outcomes": "outcomes.csv",
            "pipeline": {"scale": "standard", "model": {"kind": "coxnet", "alpha": 0.05}},
            "validation": {"schemes": ["nested_cv"], "outer_folds": 3},
        }
    )
    image = [c for c in X.columns if c not in ("stage", "institution")]
    institution = np.array(["A", "B"] * (n // 2))
    X = X.assign(institution=institution)
    design = Design(X, y, institution, image, ["stage"], [], pd.DataFrame(), "fs-test")
    pipeline = build_pipeline(spec, image_columns=image).fit(X, y)
    return FitOutputs(spec, design, pipeline, {}, {}, command="test")


def test_report_section_shows_fractions_and_the_reference_correlation_from_the_data():
    from radflow.report.build import build_content

    X, truth = _design(n=40, seed=3)
    fit = _fit(X, truth)
    content = build_content(
        fit,
        progress=False,
        habitat_reference=HabitatReference(truth, 1, "hidden necrosis", "necrotic habitat"),
    )
    figures = content.figures["habitats"]
    assert [ax.get_label() for fig in figures for ax in fig.axes][:1] == ["habitat_fractions"]
    assert any(ax.get_label() == "agreement" for fig in figures for ax in fig.axes)
    expected = np.corrcoef(X["CT.gtv.original_habitat_Fraction_1"], truth)[0, 1]
    note = content.notes["habitats"]
    assert f"Pearson r {expected:.2f}" in note
    assert "necrotic habitat fraction vs hidden necrosis" in note
    table = content.tables["habitats"]
    assert table.loc[("CT.gtv", 1), "mean fraction"] == pytest.approx(
        X["CT.gtv.original_habitat_Fraction_1"].mean()
    )
    # The selected-features note says whether habitat features are among the model's.
    selected = content.notes["selected"]
    match = re.search(r"Habitat features among them: (\d+) of the (\d+) habitat inputs", selected)
    assert match and int(match[2]) == 3
    # Another reference gives another correlation: nothing is fixed in the report.
    shuffled = pd.Series(truth.to_numpy()[::-1], index=truth.index)
    other = build_content(
        fit, progress=False, habitat_reference=HabitatReference(shuffled, 1, "hidden necrosis")
    )
    expected = np.corrcoef(X["CT.gtv.original_habitat_Fraction_1"], shuffled)[0, 1]
    assert f"Pearson r {expected:.2f}" in other.notes["habitats"]


def test_report_without_habitat_features_says_so():
    from radflow.report.build import build_content

    X, truth = _design(n=40, seed=3)
    X = X.drop(columns=[c for c in X if "habitat" in c])
    content = build_content(_fit(X, truth), progress=False)
    assert "habitats" not in content.figures
    assert content.notes["habitats"].startswith("Not available")
    assert "Habitat features" not in content.notes["selected"]


# -- QC gallery from a store with a habitat map -------------------------------


@pytest.fixture(scope="module")
def habitat_store(tmp_path_factory):
    import SimpleITK as sitk

    from radflow.io.records import LabelMap
    from radflow.store.habitats import habitat_attrs, habitat_key, habitat_rois
    from radflow.store.write import add_label, write_series

    root = tmp_path_factory.mktemp("habitat_store") / "store"
    zz, yy, xx = np.ogrid[:7, :30, :30]
    gtv = ((zz - 3) / 2.5) ** 2 + ((yy - 15) / 8.0) ** 2 + ((xx - 15) / 8.0) ** 2 <= 1
    core = gtv & (((yy - 15) / 4.0) ** 2 + ((xx - 15) / 4.0) ** 2 <= 1)
    ct = np.where(gtv, np.where(core, 10, 60), -800).astype(np.int16)
    image = sitk.GetImageFromArray(ct)
    image.SetSpacing((1.0, 1.0, 2.0))
    label = sitk.GetImageFromArray(gtv.astype(np.uint8))
    label.CopyInformation(image)
    write_series(
        root,
        "Pa01",
        "CT-S1",
        image,
        [LabelMap("gtv", "rtstruct", label, {1: "GTV"})],
        attrs={"modality": "CT"},
        fingerprint="fp1",
    )
    habitats = np.where(core, 1, np.where(gtv, 2, 0)).astype(np.uint8)
    map_image = sitk.GetImageFromArray(habitats)
    map_image.CopyInformation(image)
    add_label(
        root,
        "Pa01",
        "CT-S1",
        LabelMap(habitat_key("gtv"), "habitats", map_image, habitat_rois("gtv", 2)),
        attrs=habitat_attrs("gtv", 2, ["CT", "PT"], "f" * 32, "k", "test", ["CT-S1", "PT-S1"]),
    )
    return root, habitats


@pytest.mark.parametrize("rois", [None, {("CT", "gtv")}])
def test_qc_gallery_fills_the_gtv_with_its_habitats_and_draws_no_habitat_contours(
    habitat_store, rois
):
    from radflow.report.build import qc_gallery

    root, habitats = habitat_store
    (case,) = qc_gallery(root, rois=rois)
    (image,) = case.images
    assert image.caption == "CT: GTV; habitats of GTV"
    ax = _axes(image.figure, "qc")
    # Only the GTV's contour: the habitat map's own ROIs are not outlined.
    assert {line.get_label() for line in ax.lines if line.get_label().startswith("roi")} == {
        "roi:GTV"
    }
    (fill,) = [im for im in ax.get_images() if im.get_label() == "habitats"]
    rgba = np.asarray(fill.get_array())
    shown = habitats[3]  # the GTV's central slice; the 40 mm crop margin keeps the whole slice
    assert rgba.shape[:2] == shown.shape
    assert np.array_equal(rgba[..., 3] > 0, shown > 0)
    for k, colour in enumerate(F.habitat_colours(2), start=1):
        painted = np.all(np.isclose(rgba[..., :3], mcolors.to_rgb(colour)), axis=-1)
        assert np.array_equal(painted & (rgba[..., 3] > 0), shown == k)
