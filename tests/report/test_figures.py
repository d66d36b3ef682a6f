"""The report's figures, checked for what they show (read back from the Axes), not only that
they exist."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from radflow.errors import SettingsError
from radflow.report import figures as F


def _axes(fig, label):
    found = [ax for ax in fig.axes if ax.get_label() == label]
    assert len(found) == 1, [ax.get_label() for ax in fig.axes]
    return found[0]


# -- Kaplan-Meier -------------------------------------------------------------

# A hand-made cohort: group a has deaths at 2, 4, 4 and censorings at 3, 7;
# group b deaths at 1, 5, 6, censoring at 8.
TIME = np.array([2, 3, 4, 4, 7, 1, 5, 6, 8], dtype=float)
EVENT = np.array([1, 0, 1, 1, 0, 1, 1, 1, 0], dtype=bool)
GROUP = np.array(["a"] * 5 + ["b"] * 4)


def test_km_curves_start_at_one_and_never_rise():
    fig = F.km_plot(TIME, EVENT, GROUP, at_risk_times=[0, 2, 4, 6, 8])
    ax = _axes(fig, "km")
    curves = {line.get_label(): line for line in ax.get_lines() if line.get_label() in ("a", "b")}
    assert set(curves) == {"a", "b"}
    for line in curves.values():
        x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
        assert (x[0], y[0]) == (0.0, 1.0)
        assert np.all(np.diff(y) <= 0) and np.all(np.diff(x) >= 0)
    # Group a by hand: S = 1 until 2; 4/5 after 2; censored at 3; 4/5 * 1/3 after the two
    # deaths at 4 (3 at risk); censored at 7.
    a = curves["a"]
    s = dict(zip(a.get_xdata(), a.get_ydata()))
    assert s[2.0] == pytest.approx(0.8)
    assert s[4.0] == pytest.approx(0.8 / 3)
    assert s[7.0] == pytest.approx(0.8 / 3)
    # Group b: 3/4 after 1, 1/2 after 5, 1/4 after 6.
    b = dict(zip(curves["b"].get_xdata(), curves["b"].get_ydata()))
    assert [b[1.0], b[5.0], b[6.0]] == pytest.approx([0.75, 0.5, 0.25])


def test_km_numbers_at_risk_match_a_hand_count():
    fig = F.km_plot(TIME, EVENT, GROUP, at_risk_times=[0, 2, 4, 6, 8])
    table = _axes(fig, "at_risk")
    cells = {
        (round(t.get_position()[0]), round(t.get_position()[1])): int(t.get_text())
        for t in table.texts
    }
    # Patients with time >= t.  a: 2,3,4,4,7   b: 1,5,6,8
    hand = {"a": [5, 5, 3, 1, 0], "b": [4, 3, 3, 2, 1]}
    for row, group in enumerate(("a", "b")):
        assert [cells[(t, row)] for t in (0, 2, 4, 6, 8)] == hand[group]
    assert [t.get_text() for t in table.get_yticklabels()] == ["a", "b"]


def test_km_logrank_p_printed():
    from lifelines.statistics import logrank_test

    fig = F.km_plot(TIME, EVENT, GROUP)
    ax = _axes(fig, "km")
    a, b = GROUP == "a", GROUP == "b"
    p = logrank_test(TIME[a], TIME[b], EVENT[a], EVENT[b]).p_value
    assert any(t.get_text() == f"log-rank p = {p:.3f}" for t in ax.texts)


def test_km_censor_marks_on_the_curve():
    fig = F.km_plot(TIME, EVENT, GROUP)
    ax = _axes(fig, "km")
    marks = [line for line in ax.get_lines() if line.get_label() == "_censored a"][0]
    assert sorted(marks.get_xdata()) == [3.0, 7.0]
    assert list(marks.get_ydata()) == pytest.approx([0.8, 0.8 / 3])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(time=[1, -2], event=[1, 0]), "time must be finite"),
        (dict(time=[1, 2], event=[1, 2]), "event must hold"),
        (dict(time=[1, 2], event=[1]), "event must be length 2"),
    ],
)
def test_km_input_errors(kwargs, match):
    with pytest.raises(SettingsError, match=match):
        F.km_plot(**kwargs)


# -- heat-maps ----------------------------------------------------------------


@pytest.fixture(scope="module")
def features():
    rng = np.random.default_rng(3)
    base = rng.normal(size=(30, 1))
    values = np.hstack([base + 0.1 * rng.normal(size=(30, 3)), rng.normal(size=(30, 4)) * 5 + 10])
    frame = pd.DataFrame(
        values, columns=[f"f{i}" for i in range(7)], index=[f"P{i:02d}" for i in range(30)]
    )
    frame.iloc[4, 5] = np.nan
    ann = pd.DataFrame(
        {
            "institution": np.array(["A", "B", "C"])[np.arange(30) % 3],
            "stage": np.array(["I", "II", "III", "IV", "II"])[np.arange(30) % 5],
            "event": np.arange(30) % 2,
        },
        index=frame.index,
    )
    return frame, ann


def test_heatmap_rows_are_features_columns_patients(features):
    frame, ann = features
    selected = frame[["f0", "f2", "f4", "f5", "f6"]]
    fig = F.feature_heatmap(selected, annotations=ann)
    ax = _axes(fig, "heatmap")
    data = ax.images[0].get_array()
    assert data.shape == (5, 30)  # features x patients
    rows = [t.get_text() for t in ax.get_yticklabels()]
    cols = [t.get_text() for t in ax.get_xticklabels()]
    assert sorted(rows) == sorted(selected.columns) and sorted(cols) == sorted(selected.index)
    # Each cell is the z-score of that feature for that patient (NaN kept, masked).
    z = (selected - selected.mean()) / selected.std(ddof=0)
    assert np.ma.getdata(data) == pytest.approx(z.loc[cols, rows].to_numpy().T, nan_ok=True)
    assert np.ma.getmaskarray(data).sum() == 1
    # One annotation bar per clinical column.
    assert {a.get_label() for a in fig.axes} >= {
        "annotation_institution",
        "annotation_stage",
        "annotation_event",
    }


def test_heatmap_clusters_correlated_features_together(features):
    frame, _ = features
    rows = [t.get_text() for t in _axes(F.feature_heatmap(frame), "heatmap").get_yticklabels()]
    positions = sorted(rows.index(f) for f in ("f0", "f1", "f2"))
    assert positions[-1] - positions[0] == 2  # the three near-copies are adjacent


def test_heatmap_annotation_patients_missing(features):
    frame, ann = features
    with pytest.raises(SettingsError, match="annotations lacks patients"):
        F.feature_heatmap(frame, annotations=ann.iloc[1:])


def test_correlation_heatmap_symmetric_unit_diagonal(features):
    frame, _ = features
    ax = _axes(F.correlation_heatmap(frame, method="spearman"), "correlation")
    r = np.asarray(ax.images[0].get_array())
    assert r.shape == (7, 7)
    assert np.allclose(r, r.T) and np.allclose(np.diag(r), 1.0)
    names = [t.get_text() for t in ax.get_xticklabels()]
    expected = frame.corr(method="spearman").loc[names, names].to_numpy()
    assert r == pytest.approx(expected)
    with pytest.raises(SettingsError, match="method"):
        F.correlation_heatmap(frame, method="kendall")


# -- other figures ------------------------------------------------------------


def test_icc_distribution_counts_and_threshold():
    icc = np.array([0.2, 0.5, 0.74, 0.76, 0.8, 0.95, np.nan])
    fig = F.icc_distribution(icc, threshold=0.75)
    ax = _axes(fig, "icc")
    heights = sum(p.get_height() for p in ax.patches)
    assert heights == 6
    stable = sum(p.get_height() for p in ax.patches if p.get_x() >= 0.75)
    assert stable == 3
    assert [line.get_xdata()[0] for line in ax.get_lines()] == [0.75]
    assert "3 of 6" in ax.get_title()
    assert ax.get_xlabel() == "intraclass correlation"
    # The legend sits above the bars: its box does not cross any bar.
    fig.canvas.draw()
    legend = ax.get_legend().get_window_extent()
    assert not any(legend.overlaps(p.get_window_extent()) for p in ax.patches if p.get_height() > 0)
    labelled = F.icc_distribution(icc, xlabel="lower 95% CI bound of ICC(1,1)")
    assert _axes(labelled, "icc").get_xlabel() == "lower 95% CI bound of ICC(1,1)"


def test_combat_before_after_shows_the_batch_effect(features):
    frame, ann = features
    batch = ann["institution"].to_numpy()
    before = frame.copy()
    before["f3"] += np.where(batch == "A", 40.0, 0.0)
    fig = F.combat_before_after(before, frame, batch, max_features=2)
    labels = [a.get_label() for a in fig.axes]
    assert "before:f3" in labels[:2]  # the strongest batch effect comes first
    assert float(_axes(fig, "before:f3").get_title().split("= ")[1]) < 1e-3
    assert len(_axes(fig, "after:f3").patches) == 3  # one box per institution


def test_embedding_one_series_per_group(features):
    frame, ann = features
    fig = F.embedding_plot(
        {"before": frame.fillna(0), "after": frame.fillna(0) * 2}, ann["institution"].to_numpy()
    )
    ax = _axes(fig, "embedding:before")
    assert [c.get_label() for c in ax.collections] == ["A", "B", "C"]
    assert sum(len(c.get_offsets()) for c in ax.collections) == 30
    markers = {c.get_paths()[0].vertices.shape for c in ax.collections}
    assert len(markers) == 3  # distinct marker shapes, not only colours


def test_selected_features_bars():
    weights = pd.Series({"a": 0.5, "b": -1.5, "c": 0.1})
    ax = _axes(F.selected_features_plot(weights), "weights")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["b", "a", "c"]
    assert [p.get_width() for p in ax.patches] == [-1.5, 0.5, 0.1]
    assert [bool(p.get_hatch()) for p in ax.patches] == [True, False, False]
    assert ax.get_title() == "Selected features (3)"
    # A title never counts bars that are not drawn.
    top = _axes(F.selected_features_plot(weights, max_features=2), "weights")
    assert top.get_title() == "Selected features: the 2 largest of 3"


def test_cindex_forest_intervals():
    results = pd.DataFrame(
        {
            "label": ["fold-1", "INST_A", "pooled"],
            "estimate": [0.7, 0.6, 0.68],
            "low": [0.6, np.nan, 0.62],
            "high": [0.8, np.nan, 0.74],
            "group": ["fold", "institution", "pooled"],
        }
    )
    ax = _axes(F.cindex_forest(results), "forest")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["fold-1", "INST_A", "pooled"]
    spans = [seg for c in ax.collections for seg in c.get_segments()]
    xs = sorted((round(s[0][0], 3), round(s[1][0], 3)) for s in spans)
    assert (0.6, 0.8) in xs and (0.62, 0.74) in xs
    with pytest.raises(SettingsError, match="contain its estimate"):
        F.cindex_forest(results.assign(low=[0.75, np.nan, 0.6]))


def test_td_auc_line():
    ax = _axes(F.td_auc_plot([6, 12, 24], [0.7, 0.72, 0.65], mean_auc=0.69), "td_auc")
    line = ax.get_lines()[0]
    assert list(line.get_xdata()) == [6, 12, 24] and list(line.get_ydata()) == [0.7, 0.72, 0.65]
    with pytest.raises(SettingsError, match="strictly increasing"):
        F.td_auc_plot([6, 6], [0.5, 0.5])


# -- QC overlay ---------------------------------------------------------------


def test_qc_contour_lies_on_the_roi_boundary():
    zz, yy, xx = np.ogrid[:7, :40, :48]
    mask = ((zz - 3) / 2.5) ** 2 + ((yy - 20) / 9.0) ** 2 + ((xx - 25) / 14.0) ** 2 <= 1
    mask[3, 18:22, 22:26] = False  # a hole: an inner contour too
    image = np.where(mask, 60.0, -700.0)
    fig = F.qc_slice(image, mask, spacing_zyx=(3.0, 0.8, 0.8), crop_margin_mm=5.0)
    assert F.central_slice(mask) == 3
    ax = _axes(fig, "qc")
    lines = [line for line in ax.get_lines() if line.get_label() == "roi"]
    assert len(lines) == 2
    roi = mask[3]
    for line in lines:
        for x, y in zip(line.get_xdata(), line.get_ydata()):
            # Each vertex sits half-way between an ROI pixel and a background pixel.
            if float(x).is_integer():
                a, b = roi[int(np.floor(y)), int(x)], roi[int(np.ceil(y)), int(x)]
            else:
                a, b = roi[int(y), int(np.floor(x))], roi[int(y), int(np.ceil(x))]
            assert a != b, (x, y)
    # Every boundary edge of the ROI is crossed by a contour vertex.
    vertices = {
        (round(float(x), 1), round(float(y), 1))
        for line in lines
        for x, y in zip(line.get_xdata(), line.get_ydata())
    }
    for r, c in zip(*np.nonzero(roi[:, :-1] != roi[:, 1:])):
        assert (c + 0.5, float(r)) in vertices
    # The image is the slice itself, cropped to the ROI plus 5 mm (7 pixels).
    shown = np.asarray(ax.images[0].get_array())
    rows, cols = np.nonzero(roi)
    assert shown.shape == (np.ptp(rows) + 1 + 2 * 7, np.ptp(cols) + 1 + 2 * 7)


def test_qc_input_errors():
    with pytest.raises(SettingsError, match="ROI is empty"):
        F.qc_slice(np.zeros((2, 4, 4)), np.zeros((2, 4, 4)), spacing_zyx=(1, 1, 1))
    with pytest.raises(SettingsError, match="differs from image shape"):
        F.qc_slice(np.zeros((2, 4, 4)), np.ones((2, 4, 5)), spacing_zyx=(1, 1, 1))
    with pytest.raises(SettingsError, match="spacing_zyx"):
        F.qc_slice(np.zeros((2, 4, 4)), np.ones((2, 4, 4)), spacing_zyx=(1, 1))


def _two_labels():
    zz, yy, xx = np.ogrid[:7, :40, :48]
    gtv = ((zz - 3) / 2.0) ** 2 + ((yy - 14) / 5.0) ** 2 + ((xx - 14) / 6.0) ** 2 <= 1
    organ = ((zz - 3) / 3.0) ** 2 + ((yy - 24) / 8.0) ** 2 + ((xx - 32) / 9.0) ** 2 <= 1
    return np.where(gtv, 1, np.where(organ, 2, 0)).astype(np.uint8)


def test_qc_draws_each_label_value_in_its_own_colour_named():
    mask = _two_labels()
    image = np.where(mask > 0, 60.0, -700.0)
    fig = F.qc_slice(image, mask, spacing_zyx=(3.0, 0.8, 0.8), labels={1: "GTV", 2: "Organ"})
    ax = _axes(fig, "qc")
    lines = {}
    for line in ax.get_lines():
        if line.get_label().startswith("roi:"):
            lines.setdefault(line.get_label(), []).append(line)
    assert set(lines) == {"roi:GTV", "roi:Organ"}
    style = {k: (v[0].get_color(), str(v[0].get_linestyle())) for k, v in lines.items()}
    assert style["roi:GTV"][0] != style["roi:Organ"][0]  # own colour
    assert style["roi:GTV"][1] != style["roi:Organ"][1]  # and own line style (greyscale)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["GTV", "Organ"]
    # Only the named values are drawn: label 2 alone is not outlined with label 1.
    only = F.qc_slice(image, mask, spacing_zyx=(3.0, 0.8, 0.8), labels={1: "GTV"})
    names = {line.get_label() for line in _axes(only, "qc").get_lines()}
    assert "roi:GTV" in names and "roi:Organ" not in names and "roi" not in names
    with pytest.raises(SettingsError, match="non-zero integer label values"):
        F.qc_slice(image, mask, spacing_zyx=(3.0, 0.8, 0.8), labels={0: "background"})
    with pytest.raises(SettingsError, match="ROI is empty"):
        F.qc_slice(image, mask, spacing_zyx=(3.0, 0.8, 0.8), labels={3: "absent"})


def test_qc_masks_by_name_may_overlap():
    mask = _two_labels()
    inner = mask == 1
    outer = (mask == 1) | (mask == 2)
    fig = F.qc_slice(
        np.zeros(mask.shape), {"GTV": inner, "Body": outer}, spacing_zyx=(3.0, 0.8, 0.8)
    )
    ax = _axes(fig, "qc")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["GTV", "Body"]
    assert F.central_slice(inner) == 3 and ax.get_xlabel().startswith("z = 3")


def test_qc_scale_bar_and_window_on_the_figure():
    mask = _two_labels()
    image = np.where(mask > 0, 60.0, -700.0)
    fig = F.qc_slice(
        image,
        mask,
        spacing_zyx=(3.0, 0.8, 0.5),
        window=(-1000, 400),
        window_name="CT wide",
        unit="HU",
        slice_label="slice 4 of 7",
    )
    ax = _axes(fig, "qc")
    assert ax.get_xlabel() == "slice 4 of 7\nwindow CT wide: -1000 to 400 HU"
    (bar,) = [line for line in ax.get_lines() if line.get_label() == "scale_bar"]
    (text,) = [t for t in ax.texts if t.get_gid() == "scale_bar_text"]
    length_mm = float(text.get_text().removesuffix(" mm"))
    x = bar.get_xdata()
    assert (x[1] - x[0]) * 0.5 == pytest.approx(length_mm)  # columns x column spacing (mm)
    assert length_mm in (1, 2, 5, 10, 20, 50, 100)
    # Without a window: the percentiles, named as such.
    plain = _axes(F.qc_slice(image, mask, spacing_zyx=(3.0, 0.8, 0.5)), "qc")
    assert "window 0.5-99.5th percentile: -700 to 60" in plain.get_xlabel()


def test_heatmap_patient_labels_only_when_readable(features):
    frame, ann = features
    few = F.feature_heatmap(frame.iloc[:12], annotations=ann)
    ax = _axes(few, "heatmap")
    labels = ax.get_xticklabels()
    assert len(labels) == 12 and min(t.get_fontsize() for t in labels) >= 7
    big = pd.concat([frame, frame.set_axis([f"Q{i:02d}" for i in range(30)])])  # 60 patients
    big_ann = pd.concat([ann, ann.set_axis(big.index[30:])])
    ax = _axes(F.feature_heatmap(big, annotations=big_ann), "heatmap")
    assert len(ax.get_xticklabels()) == 0 and "ids not shown above 40" in ax.get_xlabel()
    # The legend: one column per annotation bar.
    assert few.legends[0]._ncols == 3


def test_combat_panel_names_are_whole():
    rng = np.random.default_rng(0)
    name = "CT.gtv_primary_tumour.wavelet-LLH_glszm_SmallAreaHighGrayLevelEmphasis"
    batch = np.repeat(["A", "B"], 10)
    before = pd.DataFrame(
        {name: rng.normal(size=20) + (batch == "A") * 5, "f": rng.normal(size=20)}
    )
    fig = F.combat_before_after(before, before - (batch == "A")[:, None] * 5, batch)
    fig.canvas.draw()
    head = _axes(fig, f"name:{name}")
    (text,) = head.texts
    assert text.get_text().replace("\n", "") == name
    box = text.get_window_extent()
    figure = fig.bbox
    assert figure.x0 <= box.x0 and box.x1 <= figure.x1  # not cut at the figure's edge
    assert all(len(ax.get_ylabel()) < 10 for ax in fig.axes)  # no truncated name as y-label


# -- export -------------------------------------------------------------------


def test_png_and_svg_export(tmp_path):
    import xml.etree.ElementTree as ET

    from PIL import Image

    fig = F.km_plot(TIME, EVENT, GROUP)
    F.save_figure(fig, tmp_path / "km.png", dpi=80)
    F.save_figure(fig, tmp_path / "km.svg")
    with Image.open(tmp_path / "km.png") as image:
        image.load()
        assert image.format == "PNG"
        assert image.size == (round(6.4 * 80), round(4.8 * 80))
    root = ET.parse(tmp_path / "km.svg").getroot()
    assert root.tag.endswith("svg") and len(list(root.iter())) > 50
    # Same figure, same bytes: no date in the metadata.
    F.save_figure(fig, tmp_path / "again.svg")
    assert (tmp_path / "km.svg").read_bytes() == (tmp_path / "again.svg").read_bytes()
    with pytest.raises(SettingsError, match="unknown figure format"):
        F.save_figure(fig, tmp_path / "km.jpeg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.svg", "km.png", "km.svg"]
