"""The study report: figures (PNG/SVG, matplotlib) and one self-contained HTML page.

>>> import radflow.report as report
>>> fig = report.km_plot(time, event, group)          # doctest: +SKIP
>>> report.save_figure(fig, "km.svg")                 # doctest: +SKIP
>>> report.build_report("model_out", "report.html", store="store")  # doctest: +SKIP

Names load on first use, so that importing :mod:`radflow` stays fast.
"""

from __future__ import annotations

_FIGURES = ("OKABE_ITO", "central_slice", "cindex_forest", "combat_before_after",
            "correlation_heatmap", "embedding_plot", "feature_heatmap", "icc_distribution",
            "km_plot", "qc_slice", "save_figure", "selected_features_plot", "td_auc_plot")
_BUILD = ("build_report", "load_fit_outputs", "write_demo_report")

__all__ = [*_FIGURES, *_BUILD]


def __getattr__(name):
    if name in _FIGURES:
        from radflow.report import figures

        return getattr(figures, name)
    if name in _BUILD:
        from radflow.report import build

        return getattr(build, name)
    raise AttributeError(f"module 'radflow.report' has no attribute {name!r}")
