"""The study report: figures (PNG/SVG, matplotlib) and one self-contained HTML page.

>>> from radflow import report
>>> fig = report.km_plot(time, event, group)          # doctest: +SKIP
>>> report.save_figure(fig, "km.svg")                 # doctest: +SKIP
>>> report.build_report("model_out", "report.html", store="store")  # doctest: +SKIP

Modules: ``figures`` (each figure from plain arrays), ``html`` (the page), ``build``
(gathers a study's results: :func:`~radflow.report.build.build_report`), ``habitats`` (habitat
fractions from a design, and one habitat against a reference). They and the
names below load on first use, through :func:`radflow._lazy.attach`, so that importing
:mod:`radflow` (and ``from radflow import report`` in the command line) stays fast.
"""

from __future__ import annotations

from radflow._lazy import attach

#: Names exported here -> the submodule that defines them (loaded with it on first use).
_EXPORTS = {
    **dict.fromkeys(
        (
            "OKABE_ITO",
            "central_slice",
            "cindex_forest",
            "combat_before_after",
            "correlation_heatmap",
            "embedding_plot",
            "feature_heatmap",
            "habitat_colours",
            "habitat_fractions_plot",
            "icc_distribution",
            "km_plot",
            "qc_slice",
            "reference_scatter",
            "save_figure",
            "selected_features_plot",
            "td_auc_plot",
        ),
        "figures",
    ),
    **dict.fromkeys(("build_report", "load_fit_outputs", "write_demo_report"), "build"),
    **dict.fromkeys(("HabitatReference", "reference_agreement"), "habitats"),
}
_SUBMODULES = ["build", "figures", "habitats", "html"]

__getattr__, __dir__, _ = attach(__name__, _SUBMODULES, _EXPORTS)
__all__ = list(_EXPORTS)
