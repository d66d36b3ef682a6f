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
``selection``   feature selection transformers (ICC, variance, correlation, Cox, ...),
                one module each
``steps``       the selection steps a study spec names (``SELECTORS``)
``combat``      ComBat harmonisation
``habitat``     :class:`~radflow.model.habitat.HabitatModel`: intratumour habitats (sub-regions)
                learnt from co-registered channels
``habitat_step`` :class:`~radflow.model.habitat_step.HabitatFeatures`: habitat features in a
                pipeline, the habitat model fitted on the training rows only
``fusion``      early and late fusion of modality, clinical and genomic blocks
``survival``    survival and binary models
``metrics``     C-index, time-dependent AUC, Brier score, Kaplan-Meier, log-rank
``validation``  nested cross-validation and leave-one-institution-out
``spec``        study specifications (``radflow model fit SPEC.yaml``): parsing and
                validation
``design``      the data a spec names, as a design matrix and target
``builder``     a spec's pipeline as an unfitted scikit-learn pipeline
``artefacts``   the model folder ``radflow model fit -o`` writes, and
                ``StudyOutputs``, its one reader (``radflow model predict``, the report)

Submodules and the names below load on first use, through :func:`radflow._lazy.attach`,
so that ``import radflow.model`` stays fast (scikit-learn and scikit-survival load with
the modules that need them).
"""

from __future__ import annotations

from radflow._lazy import attach

#: Names exported here -> the submodule that defines them (loaded with it on first use).
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
_SUBMODULES = [
    "artefacts",
    "builder",
    "combat",
    "design",
    "fusion",
    "habitat",
    "habitat_step",
    "icc",
    "metrics",
    "selection",
    "spec",
    "stability",
    "stats",
    "steps",
    "study",
    "survival",
    "validation",
]

__getattr__, __dir__, _ = attach(__name__, _SUBMODULES, _EXPORTS)
__all__ = list(_EXPORTS)
