"""The data a study spec names, read into a design matrix and a target.

:func:`load_design` joins the feature table's image features (the ``image`` block), the
clinical and genomic CSV files (their blocks: one-hot or ordinal codes) and the outcome
(survival: ``outcomes``' time and event; binary: a clinical column) per pseudonymised
patient, through :func:`radflow.model.study.load_study`. The ``institution`` column it
adds is ComBat's batch (:data:`radflow.model.spec.BATCH_COLUMN`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from radflow._lazy import load
from radflow.errors import InputError
from radflow.model.spec import BATCH_COLUMN, ImageBlock, StudySpec, TableBlock
from radflow.model.study import encode_covariates, load_study

pd = load("pandas")

__all__ = ["Design", "load_design"]


@dataclass
class Design:
    """The data a spec names, ready for :func:`build_pipeline`'s pipeline.

    Attributes
    ----------
    X : pandas.DataFrame
        Index: pseudonymised patient ids. Image features, then clinical and
        genomic columns as numbers, then ``institution`` (text).
    y : ndarray
        Structured (event, time) array, or 0/1 for a binary endpoint.
    institution : ndarray of str
    image_columns, clinical_columns, genomic_columns : list of str
    missing : pandas.DataFrame
        The study's report of patients lacking a modality or a file row.
    feature_set : str
    """

    X: Any
    y: np.ndarray
    institution: np.ndarray
    image_columns: list
    clinical_columns: list
    genomic_columns: list
    missing: Any
    feature_set: str


def _block_frame(frame, block: TableBlock, name: str, source):
    if block.columns is None:
        columns = [c for c in frame.columns if c != BATCH_COLUMN]
    else:
        absent = [c for c in block.columns if c not in frame.columns]
        if absent:
            raise InputError(
                source,
                f"blocks.{name}.columns {absent} not in the file; columns: {list(frame.columns)}",
            )
        columns = list(block.columns)
    frame = frame[columns]
    ordinal = {}
    for column, levels in block.ordinal.items():
        if column not in frame.columns:
            raise InputError(source, f"blocks.{name}.ordinal: no column {column!r} in the block")
        values = frame[column].astype("string")
        unknown = sorted(set(values.dropna()) - set(levels))
        if unknown:
            raise InputError(
                source, f"column {column!r} holds {unknown}, not among the ordinal levels {levels}"
            )
        ordinal[column] = values.map({lv: float(k) for k, lv in enumerate(levels)}).astype(float)
    rest = encode_covariates(frame.drop(columns=list(ordinal)))
    out = pd.concat([pd.DataFrame(ordinal, index=frame.index), rest], axis=1)
    return out[[c for c in out.columns]].add_prefix(f"{name}.")


def load_design(spec: StudySpec, *, table=None, require_target: bool = True) -> Design:
    """Read the table and files a spec names into a design matrix and target.

    Parameters
    ----------
    spec : StudySpec
    table : path-like, optional
        Another feature table with the same feature set (scoring new
        patients); default ``spec.table``.
    require_target : bool
        False to read patients without an outcome (prediction); ``y`` is
        then None.

    Returns
    -------
    Design
    """
    image = spec.image or ImageBlock()
    survival = spec.endpoint.kind == "survival"
    study = load_study(
        spec.table if table is None else table,
        clinical=spec.clinical,
        genomic=spec.genomic,
        outcomes=spec.outcomes if survival and require_target else None,
        feature_set=image.feature_set,
        modalities=image.modalities,
        rois=image.rois,
        image_types=image.image_types,
        key_file=spec.key_file,
        event=spec.endpoint.event,
        time=spec.endpoint.time,
    )
    parts = [study.X] if spec.image is not None else []
    columns = {"image": list(study.X.columns) if spec.image is not None else []}
    for name, block, frame, source in (
        ("clinical", spec.clinical_block, study.clinical, spec.clinical),
        ("genomic", spec.genomic_block, study.genomic, spec.genomic),
    ):
        columns[name] = []
        if block is not None:
            if (
                spec.endpoint.kind == "binary"
                and frame is not None
                and spec.endpoint.column in frame
            ):
                frame = frame.drop(columns=spec.endpoint.column)  # the target is never a feature
            encoded = _block_frame(frame, block, name, source)
            parts.append(encoded)
            columns[name] = list(encoded.columns)
    X = pd.concat(parts, axis=1)
    X[BATCH_COLUMN] = study.institution.reindex(X.index).astype(str).to_numpy()
    y = study.y
    if not survival and require_target:
        y, X = _binary_target(spec, study, X)
    return Design(
        X,
        y,
        X[BATCH_COLUMN].to_numpy(),
        columns["image"],
        columns["clinical"],
        columns["genomic"],
        study.missing,
        study.feature_set,
    )


def _binary_target(spec: StudySpec, study, X):
    """The 0/1 target from the clinical file; patients without a value are left out."""
    column, positive = spec.endpoint.column, spec.endpoint.positive
    if study.clinical is None or column not in study.clinical:
        raise InputError(
            spec.clinical or spec.table,
            f"endpoint.column {column!r} is not a column of the clinical file",
        )
    values = study.clinical[column].reindex(X.index)
    keep = values.notna().to_numpy()
    labels = values[keep].astype(str) == str(positive)
    if labels.all() or not labels.any():
        raise InputError(
            spec.clinical,
            f"endpoint {column!r} == {positive!r} gives one class only "
            f"({int(labels.sum())} positive of {len(labels)})",
        )
    return labels.to_numpy(int), X.loc[keep]
