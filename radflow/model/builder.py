"""The pipeline builder: a study spec's ``pipeline`` part as an unfitted scikit-learn pipeline.

:func:`build_pipeline` chains impute -> harmonise (ComBat) or drop the batch column ->
scale -> the ``select`` steps (:func:`radflow.model.steps.make_selector`) -> the model
(:func:`radflow.model.survival.make_model`, or with ``fusion: late`` a
:class:`~radflow.model.fusion.LateFusionSurvival` of per-block models);
:func:`pipeline_grid` is the grid its inner search tunes.
"""

from __future__ import annotations

import re

from radflow._lazy import load
from radflow.errors import SettingsError
from radflow.model.combat import ComBat
from radflow.model.fusion import LateFusionSurvival
from radflow.model.spec import BATCH_COLUMN, StudySpec
from radflow.model.steps import make_selector
from radflow.model.survival import make_model, model_grid

compose = load("sklearn.compose")
impute = load("sklearn.impute")
sklearn_pipeline = load("sklearn.pipeline")
preprocessing = load("sklearn.preprocessing")

__all__ = ["build_pipeline", "pipeline_grid"]


def build_pipeline(spec: StudySpec, *, image_columns=(), harmonise: bool = True):
    """The unfitted pipeline of a spec: impute, harmonise, scale, select, model.

    Parameters
    ----------
    spec : StudySpec
    image_columns : sequence of str
        Image feature columns of the design (what ComBat harmonises); the
        clinical and genomic columns pass through it unchanged.
    harmonise : bool
        False leaves the spec's harmonisation out (leave-one-institution-out:
        ComBat cannot harmonise an institution it did not see in fit).

    Returns
    -------
    sklearn.pipeline.Pipeline
        Pandas output throughout, so column names (and patient ids) flow
        through every step. The input is :func:`load_design`'s ``X``: its
        ``institution`` column is ComBat's batch, or dropped without
        harmonisation. Its last step ``model`` is the spec's model, or with
        ``fusion: late`` a :class:`~radflow.model.fusion.LateFusionSurvival`
        whose block models are the spec's model (tuned by
        :func:`pipeline_grid`).

    Raises
    ------
    SettingsError
        Late fusion with fewer than two blocks.
    """
    p = spec.pipeline
    steps = [
        (
            "impute",
            compose.ColumnTransformer(
                [
                    (
                        "impute",
                        impute.SimpleImputer(strategy=p.impute, keep_empty_features=True),
                        compose.make_column_selector(dtype_include="number"),
                    )
                ],
                remainder="passthrough",
                verbose_feature_names_out=False,
            ),
        )
    ]
    if p.harmonise is not None and harmonise:
        steps.append(
            (
                "harmonise",
                ComBat(batch=BATCH_COLUMN, features=list(image_columns), **p.harmonise.params),
            )
        )
    else:
        steps.append(
            (
                "drop_batch",
                compose.ColumnTransformer(
                    [("batch", "drop", [BATCH_COLUMN])],
                    remainder="passthrough",
                    verbose_feature_names_out=False,
                ),
            )
        )
    scaler = {
        "standard": preprocessing.StandardScaler,
        "robust": preprocessing.RobustScaler,
        "yeo-johnson": preprocessing.PowerTransformer,
    }.get(p.scale)
    if scaler is not None:
        steps.append(("scale", scaler()))
    for step in p.select:
        steps.append((f"select_{step.method}", make_selector(step)))
    model = make_model(p.model.method, seed=spec.seed, **p.model.params)
    if p.fusion == "late":
        blocks = _late_fusion_blocks(spec, image_columns)
        model = LateFusionSurvival(
            blocks, default=model, cv=spec.validation.inner_folds, random_state=spec.seed
        )
    steps.append(("model", model))
    return sklearn_pipeline.Pipeline(steps).set_output(transform="pandas")


def _late_fusion_blocks(spec: StudySpec, image_columns) -> dict[str, str]:
    """Block name -> column-name prefix (a regular expression): each image
    modality of ``image_columns``, then clinical and genomic."""
    blocks = {}
    for column in image_columns:
        modality = str(column).split(".", 1)[0]
        blocks.setdefault(modality, re.escape(modality) + r"\.")
    for name, block in (("clinical", spec.clinical_block), ("genomic", spec.genomic_block)):
        if block is not None:
            blocks[name] = re.escape(name) + r"\."
    if len(blocks) < 2:
        where = spec.source or "study spec"
        raise SettingsError(
            f"{where}: pipeline.fusion: late fusion needs at least two blocks "
            f"(image modalities, clinical, genomic), the study has {list(blocks)}"
        )
    return blocks


def pipeline_grid(spec: StudySpec) -> dict:
    """The spec's ``grid`` as the ``GridSearchCV`` grid of :func:`build_pipeline`'s pipeline.

    With ``fusion: late`` the grid tunes the block models (parameters
    ``model__default__...``); empty when the spec has no grid.
    """
    step = "model__default" if spec.pipeline.fusion == "late" else "model"
    return model_grid(spec.pipeline.model.method, spec.pipeline.grid, step=step)
