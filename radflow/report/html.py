"""One self-contained HTML file from the report's figures and tables.

The page needs no network: figures are embedded as base64 PNG, the style
sheet and the one script are inline, and a Content-Security-Policy forbids
the browser to load anything else. Every section is always present with a
fixed ``id`` (see :data:`SECTIONS`) and a one-line caption (:data:`CAPTIONS`); one
without data says why. Each QC case
has its own anchor, ``id="case-<case>"``.

The page's script marks ``<body data-images="...">`` once the page has
loaded: ``"ok <n>"`` when all n images decoded, ``"broken <k>/<n>"``
otherwise, so that a headless browser can check it (``--dump-dom``).
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from radflow._atomic import atomic_file

__all__ = [
    "CAPTIONS",
    "SECTIONS",
    "QcCase",
    "QcImage",
    "ReportContent",
    "case_anchor",
    "render_html",
    "write_html",
]

#: Section id -> heading, in page order.
SECTIONS = {
    "cohort": "Cohort",
    "qc": "Segmentation quality control",
    "heatmap": "Feature heat-map",
    "habitats": "Tumour habitats",
    "correlation": "Feature correlation",
    "icc": "Feature stability (ICC)",
    "combat": "Harmonisation (ComBat)",
    "selected": "Selected features",
    "km": "Kaplan-Meier curves of predicted risk groups",
    "validation": "Discrimination per fold and institution",
    "td_auc": "Time-dependent AUC",
}

#: Section id -> its one-line caption: what the section shows, whatever the study.
CAPTIONS = {
    "cohort": "Who is in the study: patients, series and outcomes per institution.",
    "qc": "Each series' ROIs outlined on their central slice, to check the segmentations by eye.",
    "heatmap": "The model's input features for every patient, z-scored and clustered.",
    "habitats": "How each patient's ROI divides into habitats, and what a habitat measures.",
    "correlation": "How the model's input features correlate with each other, clustered.",
    "icc": "How reproducible each feature is when the image and ROI are perturbed.",
    "combat": "Institution effects on the image features before and after ComBat harmonisation.",
    "selected": "The features the final model uses and their weights.",
    "km": "Survival of the patients the validation scored as low or high risk, out of fold.",
    "validation": "Discrimination of the model in each fold and held-out institution, with CIs.",
    "td_auc": "How well the out-of-fold risk separates patients by time since baseline.",
}


@dataclass
class QcImage:
    """One thumbnail of the QC gallery: a figure, or the reason there is none."""

    caption: str
    figure: Figure | None = None
    problem: str = ""
    column: str = ""
    """The gallery column it belongs to (the series' modality), named in the header row."""


@dataclass
class QcCase:
    """A case of the QC gallery.

    Attributes
    ----------
    case : str
        Pseudonymised patient id (the anchor is :func:`case_anchor` of it).
    institution : str
    images : list of QcImage
    failures : list of str
        What the pipeline recorded as failed for this case (manifest,
        errors table); a non-empty list flags the case.
    """

    case: str
    institution: str = ""
    images: list[QcImage] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


@dataclass
class ReportContent:
    """Everything the page shows, already computed.

    Attributes
    ----------
    title : str
    figures : dict of str to list of Figure
        Section id -> figures shown in it, in order.
    tables : dict of str to pandas.DataFrame
        Section id -> a table shown below its figures.
    notes : dict of str to str
        Section id -> a sentence shown under the heading (what the figure
        shows, or why the section is empty).
    qc : list of QcCase
    provenance : dict of str to str
        Footer lines (``radflow version``, ``feature set``, ``command`` ...).
    """

    title: str = "radflow study report"
    figures: dict[str, list[Figure]] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    qc: list[QcCase] = field(default_factory=list)
    provenance: dict[str, str] = field(default_factory=dict)


_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#111;
background:#fff}
header,main,footer{max-width:1180px;margin:0 auto;padding:0 20px}
header h1{margin:18px 0 4px}
nav{font-size:14px;margin-bottom:10px}nav a{margin-right:12px}
section{border-top:1px solid #ccc;padding:6px 0 14px}
h2{margin:10px 0 6px}
.caption{font-weight:600;margin:2px 0 4px}
.note{color:#333;margin:4px 0 10px;max-width:900px}
.empty{color:#666;font-style:italic}
img.fig{max-width:100%;height:auto;display:block;margin:6px 0}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #bbb;padding:3px 8px;text-align:right}
th{background:#eee}
.gallery{display:grid;gap:6px;overflow-x:auto;justify-items:start}
.case,.grid-head{display:grid;gap:6px;align-items:start;
grid-template-columns:170px repeat(var(--columns),minmax(140px,240px))}
.grid-head{font-weight:600;font-size:13px;text-align:center;padding:0 8px}
.case{border:2px solid #999;border-radius:4px;padding:6px}
.case.failed{border:3px dashed #D55E00;background:#fff4ec}
.case h3{font-size:13px;margin:0 0 4px;font-family:monospace;overflow-wrap:anywhere}
.badge{background:#D55E00;color:#fff;font-weight:bold;padding:1px 6px;border-radius:3px;
font-size:12px}
.case ul{margin:4px 0;padding-left:18px;font-size:12px;overflow-wrap:anywhere}
.case figure{margin:0;font-size:12px;text-align:center}
.case img{width:100%;max-width:240px;height:auto}
.case .empty{padding:40px 4px}
.case .who:only-child{grid-column:1/-1}
footer{border-top:2px solid #333;margin-top:20px;padding:8px 20px 30px;font-size:13px;color:#333}
footer code{white-space:pre-wrap;word-break:break-all}
"""

# Marks the body once every image has loaded (or failed to), for headless checks.
_SCRIPT = """
window.addEventListener("load", function () {
  var imgs = document.images, bad = 0;
  for (var i = 0; i < imgs.length; i++) {
    if (!(imgs[i].complete && imgs[i].naturalWidth > 0)) { bad++; }
  }
  document.body.setAttribute("data-images",
    bad ? "broken " + bad + "/" + imgs.length : "ok " + imgs.length);
});
"""

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"


def case_anchor(case: str) -> str:
    """The HTML id of a case in the QC gallery: ``case-<case>`` with unsafe characters as ``_``."""
    return "case-" + re.sub(r"[^0-9A-Za-z_-]", "_", str(case))


def _png(fig: Figure, dpi: int) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(fig: Figure, alt: str, *, dpi: int = 110, cls: str = "fig") -> str:
    return (
        f'<img class="{cls}" alt="{html.escape(alt)}" src="data:image/png;base64,{_png(fig, dpi)}">'
    )


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(escape=True, border=0, na_rep="-", float_format=lambda v: f"{v:.3g}")


def _qc_case(case: QcCase) -> str:
    """One row of the gallery: the case (and what failed) in the first cell, then its images."""
    failed = bool(case.failures)
    head = f"{html.escape(case.case)}"
    if case.institution:
        head += f"<br>{html.escape(case.institution)}"
    if failed:
        head += ' <span class="badge">FAILED</span>'
    parts = [
        f'<div class="case{" failed" if failed else ""}" id="{case_anchor(case.case)}">',
        f'<div class="who"><h3>{head}</h3>',
    ]
    if failed:
        items = "".join(f"<li>{html.escape(f)}</li>" for f in case.failures)
        parts.append(f"<ul>{items}</ul>")
    parts.append("</div>")
    for image in case.images:
        caption = html.escape(image.caption)
        if image.figure is not None:
            parts.append(
                f"<figure>{_img(image.figure, f'{case.case} {image.caption}', dpi=100, cls='qc')}"
                f"<figcaption>{caption}</figcaption></figure>"
            )
        else:
            parts.append(
                f'<figure><div class="empty">{html.escape(image.problem)}</div>'
                f"<figcaption>{caption}</figcaption></figure>"
            )
    parts.append("</div>")
    return "".join(parts)


def _gallery(cases: list[QcCase]) -> str:
    """The QC gallery as a grid: one row per case, one column per modality, aligned."""
    widest = max(cases, key=lambda c: len(c.images))
    n = max(len(widest.images), 1)
    columns = "".join(
        f"<div>{html.escape(image.column or image.caption)}</div>" for image in widest.images
    )
    return (
        f'<div class="gallery" style="--columns:{n}">'
        f'<div class="grid-head"><div>case</div>{columns}</div>'
        + "".join(_qc_case(c) for c in cases)
        + "</div>"
    )


def _section(key: str, content: ReportContent) -> str:
    parts = [
        f'<section id="{key}"><h2>{html.escape(SECTIONS[key])}</h2>'
        f'<p class="caption">{html.escape(CAPTIONS[key])}</p>'
    ]
    figures = content.figures.get(key) or []
    table = content.tables.get(key)
    note = content.notes.get(key, "")
    empty = not figures and table is None and not (key == "qc" and content.qc)
    if note:
        parts.append(f'<p class="{"note empty" if empty else "note"}">{html.escape(note)}</p>')
    elif empty:
        parts.append('<p class="note empty">Not available for this study.</p>')
    for k, fig in enumerate(figures):
        parts.append(_img(fig, f"{SECTIONS[key]} ({k + 1})"))
    if table is not None:
        parts.append(_table(table))
    if key == "qc" and content.qc:
        flagged = [c for c in content.qc if c.failures]
        if flagged:
            links = ", ".join(
                f'<a href="#{case_anchor(c.case)}">{html.escape(c.case)}</a>' for c in flagged
            )
            parts.append(
                f'<p class="note"><span class="badge">FAILED</span> {len(flagged)} '
                f"case(s): {links}</p>"
            )
        # Every case has the same modality columns (build fills gaps), so the cells align.
        parts.append(_gallery(content.qc))
    parts.append("</section>")
    return "".join(parts)


def render_html(content: ReportContent) -> str:
    """The report page as one string (UTF-8 HTML5, no external resource)."""
    unknown = (set(content.figures) | set(content.tables) | set(content.notes)) - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown report sections {sorted(unknown)}; known: {list(SECTIONS)}")
    nav = "".join(f'<a href="#{key}">{html.escape(title)}</a>' for key, title in SECTIONS.items())
    body = "".join(_section(key, content) for key in SECTIONS)
    provenance = dict(content.provenance)
    provenance.setdefault("written", _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"))
    footer = "<br>".join(
        f"{html.escape(k)}: <code>{html.escape(str(v))}</code>" for k, v in provenance.items()
    )
    title = html.escape(content.title)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{_STYLE}</style></head>\n"
        f"<body><header><h1>{title}</h1><nav>{nav}</nav></header>\n<main>{body}</main>\n"
        f'<footer id="provenance">{footer}</footer>\n<script>{_SCRIPT}</script></body></html>\n'
    )


def write_html(content: ReportContent, out_html: str | os.PathLike) -> Path:
    """Write the page to ``out_html`` (under a temporary name, then renamed); return its path."""
    out = Path(out_html)
    text = render_html(content)
    with atomic_file(out) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return out
