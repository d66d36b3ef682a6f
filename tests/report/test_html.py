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
STORE_CASES = {"Pa0001": "INST_A", "Pa0002": "INST_A", "Pb0001": "INST_B"}
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
        ct = np.where(mask, 40, -800).astype(np.int16) + np.int16(k)
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
            [LabelMap("gtv", "labelmap", label, {1: "GTV"})],
            attrs={"modality": "CT"},
            fingerprint=f"fp{k}",
        )
        rows.append(
            {
                "case": case,
                "institution": inst,
                "series": series,
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
            "case": FAILED_INGEST,
            "institution": "INST_C",
            "series": "",
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
        "case": FAILED_EXTRACTION,
        "series": "CT-S0002",
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
    import argparse

    from radflow.cli.report import add_commands
    from radflow.errors import InputError

    parser = argparse.ArgumentParser(prog="radflow")
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["report", "-o", str(tmp_path / "r.html")])
    assert args.func(args) == 2 and "either SPEC.yaml or --model" in capsys.readouterr().err
    args = parser.parse_args(["report", "s.yaml", "--model", "m", "-o", "r.html"])
    assert args.func(args) == 2
    args = parser.parse_args(
        ["report", "--model", str(tmp_path / "absent"), "-o", str(tmp_path / "r.html"), "-q"]
    )
    with pytest.raises(InputError, match="no such study spec or model folder"):
        args.func(args)
