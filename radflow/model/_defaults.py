"""Defaults of the modelling layer that the command line needs without loading it."""

#: Correlation methods of :func:`radflow.model.stats.correlations`.
METHODS = ("pearson", "spearman")
#: Perturbations of :func:`radflow.model.stability.stability_study` when none are given.
DEFAULT_PERTURBATIONS = (
    "original",
    "erode:1",
    "dilate:1",
    "rotate:-5",
    "rotate:5",
    "translate:0,0.5,0.5",
)
