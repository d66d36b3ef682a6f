"""The modelling layer: from feature tables to validated outcome models.

Modules
-------
``study``       :func:`load_study`: one row per pseudonymised patient, joined with
                clinical, genomic and outcome data
``stats``       :func:`correlations` with Benjamini-Hochberg q-values;
                ``radflow model stats``
``icc``         ``icc.icc`` and :func:`icc_long`: the six Shrout & Fleiss / McGraw &
                Wong ICC forms (the function is not exported here: the module
                ``radflow.model.icc`` holds that name)
``stability``   :func:`stability_study`: per-feature ICC under image perturbations
``selection``   feature selection transformers (ICC, variance, correlation, Cox, ...)
``combat``      ComBat harmonisation
``fusion``      early and late fusion of modality, clinical and genomic blocks
``survival``    survival and binary models
``metrics``     C-index, time-dependent AUC, Brier score, Kaplan-Meier, log-rank
``validation``  nested cross-validation and leave-one-institution-out
``spec``        study specifications (``radflow model fit SPEC.yaml``)

Names are loaded on first use, so that ``import radflow.model`` stays fast
(scikit-learn and scikit-survival are imported only by the modules that need them).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Study": "study",
    "encode_covariates": "study",
    "feature_sets": "study",
    "load_study": "study",
    "benjamini_hochberg": "stats",
    "correlations": "stats",
    "stats_command": "stats",
    "icc_long": "icc",
    "Perturbation": "stability",
    "perturb": "stability",
    "perturbed_features": "stability",
    "stability_study": "stability",
}

__all__ = [  # noqa: RUF022 - grouped by module, as _EXPORTS
    "Study", "encode_covariates", "feature_sets", "load_study",
    "benjamini_hochberg", "correlations", "stats_command",
    "icc_long",
    "Perturbation", "perturb", "perturbed_features", "stability_study",
]


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'radflow.model' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"radflow.model.{module}"), name)
    globals()[name] = value
    return value
