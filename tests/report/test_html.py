"""The HTML report: self-contained, every section and case anchor present, failures flagged.

The study is small and synthetic but real: a store written with
``write_series`` (an ellipsoid ROI per CT), a manifest with one failed input,
an errors table with one failed extraction, and a ComBat + Cox pipeline from
``radflow.model.spec`` fitted and validated by ``radflow.model.validation``.
:func:`study_report` is shared with the browser test.
"""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

N_PATIENTS = 60
INSTITUTIONS = ("INST_A", "INST_B", "INST_C")
STORE_CASES = {"Pa0001": "INST_A", "Pa0002": "INST_A", "Pb0001": "INST_B", "Pc0002": "INST_C"}
TWO_LABELS = "Pc0002"  # its CT's one label map holds GTV (1) and Parotid (2); the model reads gtv
FAILED_INGEST = "Pc0001"  # only a failed input: no series in the store
FAILED_EXTRACTION = "Pb0001"  # in the store, one failed extraction task


def _write_store(root: Path) -> None:
    import SimpleITK as sitk

    from radflow.io.records import LabelMap
    from radflow.pipeline.manifest import update_manifest
    from radflow.store.write import write_series

    rows = []
    zz, yy, xx = np.ogrid[:9, :40, :40]
    for k, (case, inst) in enumerate(STORE_CASES.items()):
        mask = ((zz - 4) / 3.0) ** 2 + ((yy - 18 - k) / 8.0) ** 2 + ((xx - 21) / 6.0) ** 2 <= 1
        names = {1: "GTV"}
        if case == TWO_LABELS:
            # A small tumour on slices 1-3 beside a larger organ on slices 1-8: the centre of
            # `label != 0` lies on the organ's slices, the tumour's own centre on slice 2.
            gtv = ((zz - 2) / 1.5) ** 2 + ((yy - 14) / 5.0) ** 2 + ((xx - 12) / 5.0) ** 2 <= 1
            organ = ((zz - 5) / 4.0) ** 2 + ((yy - 22) / 7.0) ** 2 + ((xx - 28) / 7.0) ** 2 <= 1
            mask = np.where(gtv, 1, np.where(organ, 2, 0))
            names = {1: "GTV", 2: "Parotid"}
        ct = np.where(mask > 0, 40, -800).astype(np.int16) + np.int16(k)
        image = sitk.GetImageFromArray(ct)
        image.SetSpacing((0.9, 0.9, 3.0))
        label = sitk.GetImageFromArray(mask.astype(np.uint8))
        label.CopyInformation(image)
        series = f"CT-S{k:04d}"
        write_series(
            root,
            case,
            series,
            image,
            [LabelMap("gtv" if len(names) == 1 else "structures", "labelmap", label, names)],
            attrs={"modality": "CT"},
            fingerprint=f"fp{k}",
        )
        rows.append(
            {
                "case_id": case,
                "institution": inst,
                "series_id": series,
                "modality": "CT",
                "item": "series",
                "roi": "",
                "source": "",
                "status": "ok",
                "action": "ingested",
                "error": "",
                "fingerprint": f"fp{k}",
            }
        )
    rows.append(
        {
            "case_id": FAILED_INGEST,
            "institution": "INST_C",
            "series_id": "",
            "modality": "",
            "item": "file",
            "roi": "",
            "source": "CT/0001.dcm",
            "status": "failed",
            "action": "failed",
            "error": "CT/0001.dcm: truncated pixel data",
            "fingerprint": "",
        }
    )
    update_manifest(root, rows)


def _write_errors(table: Path) -> None:
    from radflow.pipeline.table import TableWriter

    writer = TableWriter(table, "fs-test", ["original_firstorder_Mean"], {}, "run-1")
    error = {
        "case_id": FAILED_EXTRACTION,
        "series_id": "CT-S0002",
        "roi": "gtv",
        "label_key": "gtv",
        "label": 1,
        "image_type_group": "original",
        "task_key": "k",
        "error_type": "InputError",
        "message": "gtv: ROI has fewer than 2 voxels in one dimension",
        "traceback_digest": "",
        "input_fingerprint": "fp2",
        "params_hash": "h",
        "radflow_version": "0",
    }
    writer.commit("INST_B", "CT", FAILED_EXTRACTION, [], set(), [error])


def synthetic_fit(tmp: Path):
    """A fitted and validated study (ComBat, scaling, Coxnet) on 60 synthetic patients."""
    from sksurv.util import Surv

    from radflow.model.builder import build_pipeline
    from radflow.model.design import Design
    from radflow.model.spec import parse_spec
    from radflow.model.validation import leave_one_institution_out, nested_cv
    from radflow.report.build import FitOutputs

    rng = np.random.default_rng(7)
    n = N_PATIENTS
    inst = np.array(INSTITUTIONS)[np.arange(n) % 3]
    names = [f"CT.gtv.original_firstorder_F{i}" for i in range(8)]
    signal = rng.normal(size=(n, 8))
    shift = {"INST_A": 0.0, "INST_B": 1.5, "INST_C": -1.0}
    X = pd.DataFrame(
        signal + np.array([shift[i] for i in inst])[:, None],
        columns=names,
        index=[f"P{i:04d}" for i in range(n)],
    )
    X["stage"] = rng.integers(0, 4, n).astype(float)
    X["institution"] = inst
    hazard = np.exp(1.0 * signal[:, 0] - 0.8 * signal[:, 1])
    time = rng.exponential(30.0 / hazard)
    censor = rng.uniform(10, 90, n)
    y = Surv.from_arrays(event=time <= censor, time=np.minimum(time, censor))
    (tmp / "table").mkdir(exist_ok=True)
    (tmp / "outcomes.csv").write_text("patient,os_months,os_event\n")

    def spec(harmonise):
        return parse_spec(
            {
                "table": "table",
                "outcomes": "outcomes.csv",
                "bootstrap": 30,
                "pipeline": {
                    "harmonise": {"method": "combat", "batch": "institution"}
                    if harmonise
                    else None,
                    "scale": "standard",
                    "model": {"kind": "coxnet", "alpha": 0.05},
                },
                "validation": {"schemes": ["nested_cv", "loio"], "outer_folds": 3},
            },
            base_dir=tmp,
        )

    design = Design(X, y, inst, names, ["stage"], [], pd.DataFrame(), "fs-test")
    pipeline = build_pipeline(spec(True), image_columns=names)
    boot = dict(n_boot=30, seed=0)
    cv = nested_cv(pipeline, X, y, outer_folds=3, **boot)
    # ComBat has no estimates for an institution it never saw: LOIO validates without it.
    loio = leave_one_institution_out(
        build_pipeline(spec(False), image_columns=names), X, y, inst, **boot
    )
    fitted = pipeline.fit(X, y)
    return FitOutputs(
        spec(True),
        design,
        fitted,
        {"nested_cv": cv.as_dict(), "loio": loio.as_dict()},
        {"nested_cv": cv.predictions, "loio": loio.predictions},
        command="radflow model fit spec.yaml -o model",
    )


_REPORTS: dict = {}


def study_report(tmp_path_factory) -> Path:
    """The report of the synthetic study, with its store and errors table.

    Built once per session (the browser test reads the same file).
    """
    from radflow.report.build import build_content
    from radflow.report.html import write_html

    if "path" not in _REPORTS:
        tmp = tmp_path_factory.mktemp("report")
        _write_store(tmp / "store")
        _write_errors(tmp / "table")
        fit = synthetic_fit(tmp)
        content = build_content(fit, store=tmp / "store", table=tmp / "table", progress=False)
        _REPORTS["path"] = write_html(content, tmp / "report.html")
        _REPORTS.update(content=content, store=tmp / "store", fit=fit)
    return _REPORTS["path"]


class _Page(HTMLParser):
    """Collects ids, every src/href, and the data URIs of <img> tags."""

    def __init__(self):
        super().__init__()
        self.ids, self.links, self.images, self.tags = set(), [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        for key in ("src", "href"):
            if key in attrs:
                self.links.append(attrs[key])
        if tag == "img":
            self.images.append(attrs.get("src", ""))


def _read_table(fragment: str) -> pd.DataFrame:
    """The first <table> of an HTML fragment (pandas' read_html needs lxml)."""
    rows = []
    for tr in re.findall(r"<tr.*?</tr>", fragment.split("</table>", 1)[0], re.S):
        rows.append(
            [re.sub(r"<.*?>", "", c).strip() for c in re.findall(r"<t[hd].*?</t[hd]>", tr, re.S)]
        )
    header = [r for r in rows if r and r[0] == ""][0][1:]
    body = [r for r in rows if len(r) == len(header) + 1 and r[0]]
    frame = pd.DataFrame([r[1:] for r in body], index=[r[0] for r in body], columns=header)
    return frame.apply(pd.to_numeric, errors="coerce")


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, str, _Page]:
    path = study_report(tmp_path_factory)
    text = path.read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    return path, text, page


def test_self_contained(report):
    _, text, page = report
    for link in page.links:
        assert link.startswith(("data:image/png;base64,", "#")), link[:60]
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", text, re.I)
    assert not re.search(r"url\(|@import", text)
    assert "default-src 'none'" in text  # the browser itself refuses any other load


def test_every_image_decodes(report):
    from PIL import Image

    _, _, page = report
    assert len(page.images) >= 10
    for src in page.images:
        image = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        image.load()
        assert image.format == "PNG" and min(image.size) > 50


def test_sections_and_case_anchors(report):
    from radflow.report.html import SECTIONS, case_anchor

    _, text, page = report
    assert set(SECTIONS) <= page.ids
    assert "provenance" in page.ids
    for case in [*STORE_CASES, FAILED_INGEST]:
        assert case_anchor(case) in page.ids
    # The study's sections all have a figure here; none reports itself missing.
    for key in ("heatmap", "correlation", "combat", "selected", "km", "validation", "td_auc"):
        section = text.split(f'<section id="{key}">', 1)[1].split("</section>", 1)[0]
        assert "<img" in section, key
    assert "no ICC stability filter" in text  # the pipeline has none: said, not hidden


def test_failed_cases_flagged(report):
    from radflow.report.html import case_anchor

    _, text, _ = report

    def block(case):
        return text.split(f'id="{case_anchor(case)}"', 1)[1].split('<div class="case', 1)[0]

    assert "FAILED" in block(FAILED_INGEST) and "truncated pixel data" in block(FAILED_INGEST)
    assert "FAILED" in block(FAILED_EXTRACTION) and "fewer than 2 voxels" in block(
        FAILED_EXTRACTION
    )
    assert "FAILED" not in block("Pa0001")
    # Three QC thumbnails: one per stored CT, none for the case without series.
    assert text.count('class="qc"') == len(STORE_CASES)


def test_cohort_table_counts(report):
    _, text, _ = report
    cohort = _read_table(text.split('<section id="cohort">', 1)[1].split("</section>", 1)[0])
    assert cohort.loc["INST_A", "patients (store)"] == 2
    assert cohort.loc["INST_A", "CT series"] == 2
    assert cohort.loc["INST_C", "failed inputs"] == 1
    assert cohort.loc["all", "patients (model)"] == N_PATIENTS
    assert cohort.loc["INST_B", "patients (model)"] == N_PATIENTS // 3


def test_footer_provenance(report):
    import radflow

    _, text, _ = report
    footer = text.split('<footer id="provenance">', 1)[1]
    assert radflow.__version__ in footer
    assert "fs-test" in footer
    assert "radflow model fit spec.yaml -o model" in footer


def test_no_partial_file_on_error(tmp_path):
    from radflow.report.html import ReportContent, write_html

    out = tmp_path / "r.html"
    with pytest.raises(ValueError, match="unknown report sections"):
        write_html(ReportContent(notes={"nonsense": "x"}), out)
    assert list(tmp_path.iterdir()) == []


def test_build_report_input_errors(tmp_path):
    from radflow.errors import InputError
    from radflow.report.build import build_report, load_fit_outputs

    with pytest.raises(InputError, match="no such study spec or model folder"):
        build_report(tmp_path / "absent.yaml", tmp_path / "r.html", progress=False)
    with pytest.raises(InputError, match="no metrics JSON"):
        load_fit_outputs(tmp_path)
    assert not (tmp_path / "r.html").exists()


def test_cli_arguments(tmp_path, capsys):
    """Wrong arguments: exit 2 and one line on standard error naming the problem (through
    ``radflow.cli.main``, which turns the command's radflow errors into that line)."""
    from radflow.cli import main

    def run(*argv):
        status = main(["report", *argv])
        err = capsys.readouterr().err.strip()
        assert status == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
        return err

    assert "either SPEC.yaml or --model" in run("-o", str(tmp_path / "r.html"))
    assert "either SPEC.yaml or --model" in run("s.yaml", "--model", "m", "-o", "r.html")
    err = run("--model", str(tmp_path / "absent"), "-o", str(tmp_path / "r.html"), "-q")
    assert "no such study spec or model folder" in err
    assert not (tmp_path / "r.html").exists()


def _vertices_on_boundary(lines, roi) -> bool:
    """Every contour vertex sits half-way between a pixel inside ``roi`` and one outside."""
    for line in lines:
        for x, y in zip(line.get_xdata(), line.get_ydata()):
            if float(x).is_integer():
                a, b = roi[int(np.floor(y)), int(x)], roi[int(np.ceil(y)), int(x)]
            else:
                a, b = roi[int(y), int(np.floor(x))], roi[int(y), int(np.ceil(x))]
            if a == b:
                return False
    return True


def test_qc_contour_of_a_two_label_map_follows_the_label_the_model_uses(report):
    """Tumour 1 and organ 2 in one label map, a model of the tumour (CT.gtv): the QC image
    outlines label 1 on label 1's central slice, and draws nothing of label 2."""
    from radflow.report.figures import central_slice
    from radflow.store.read import open_label

    case = next(c for c in _REPORTS["content"].qc if c.case == TWO_LABELS)
    (image,) = case.images
    assert image.figure is not None and image.caption == "CT: GTV"
    label = np.asarray(open_label(_REPORTS["store"], TWO_LABELS, "CT-S0003", "structures"))
    z = central_slice(label == 1)
    assert z != central_slice(label != 0)  # where the old `label != 0` contour was drawn
    ax = next(a for a in image.figure.axes if a.get_label() == "qc")
    assert ax.get_xlabel().startswith(f"slice {z + 1} of 9")
    lines = [line for line in ax.get_lines() if line.get_label().startswith("roi")]
    assert {line.get_label() for line in lines} == {"roi:GTV"}
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["GTV"]
    gtv, organ = label[z] == 1, label[z] == 2
    assert organ.any()  # the organ is on the shown slice, and is not outlined
    assert _vertices_on_boundary(lines, gtv)
    assert not any(_vertices_on_boundary([line], organ) for line in lines)
    vertices = {
        (round(float(x), 1), round(float(y), 1))
        for line in lines
        for x, y in zip(line.get_xdata(), line.get_ydata())
    }
    for r, c in zip(*np.nonzero(gtv[:, :-1] != gtv[:, 1:])):
        assert (c + 0.5, float(r)) in vertices  # label 1's whole outline is drawn


def test_qc_without_a_model_draws_every_label_in_its_own_colour(report):
    from radflow.report.build import qc_gallery

    cases = {c.case: c for c in qc_gallery(_REPORTS["store"])}
    (image,) = cases[TWO_LABELS].images
    ax = next(a for a in image.figure.axes if a.get_label() == "qc")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["GTV", "Parotid"]
    colours = {
        line.get_label(): line.get_color()
        for line in ax.get_lines()
        if line.get_label().startswith("roi:")
    }
    assert set(colours) == {"roi:GTV", "roi:Parotid"}
    assert colours["roi:GTV"] != colours["roi:Parotid"]


def test_qc_gallery_is_a_grid_of_aligned_cells(report):
    _, text, _ = report
    qc = text.split('<section id="qc">', 1)[1].split("</section>", 1)[0]
    # One grid: a header row naming the modality columns, then one row per case whose cells
    # share the header's column template, so that each modality sits in one column.
    assert '<div class="gallery" style="--columns:1"><div class="grid-head"><div>case</div>' in qc
    assert "<div>CT</div>" in qc.split('<div class="case', 1)[0]
    assert ".gallery{display:grid" in text
    assert re.search(
        r"\.case,\.grid-head\{display:grid;[^}]*grid-template-columns:170px "
        r"repeat\(var\(--columns\)",
        text,
    )
    counts = {len(c.images) for c in _REPORTS["content"].qc if c.images}
    assert counts == {1}
    assert {i.column for c in _REPORTS["content"].qc for i in c.images} == {"CT"}
    # Each thumbnail names the window and carries a scale bar.
    for case in _REPORTS["content"].qc:
        for image in case.images:
            ax = next(a for a in image.figure.axes if a.get_label() == "qc")
            assert "window CT wide: -1000 to 400 HU" in ax.get_xlabel()
            assert any(line.get_label() == "scale_bar" for line in ax.get_lines())


def test_cohort_median_follow_up_in_months(report):
    _, text, _ = report
    cohort = _read_table(text.split('<section id="cohort">', 1)[1].split("</section>", 1)[0])
    assert "median follow-up (months)" in cohort.columns
    assert "median follow-up" not in cohort.columns
    fit = _REPORTS["fit"]
    assert cohort.loc["all", "median follow-up (months)"] == pytest.approx(
        np.median(fit.design.y["time"]), abs=0.05
    )


def test_every_section_has_a_one_line_caption(report):
    from radflow.report.html import SECTIONS

    _, text, _ = report
    for key in SECTIONS:
        section = text.split(f'<section id="{key}">', 1)[1].split("</section>", 1)[0]
        captions = re.findall(r'<p class="caption">(.*?)</p>', section, re.S)
        assert len(captions) == 1, key
        assert "\n" not in captions[0] and 20 < len(captions[0]) <= 100, (key, captions)


def test_time_unit_from_the_endpoint_column():
    from types import SimpleNamespace

    from radflow.report.build import time_unit

    def fit(column):
        return SimpleNamespace(spec=SimpleNamespace(endpoint=SimpleNamespace(time=column)))

    assert time_unit(fit("os_months")) == "months"
    assert time_unit(fit("PFS_DAYS")) == "days"
    assert time_unit(fit("follow_up")) == "follow_up units"
