"""Artefacts of a fitted study: what ``radflow model fit -o OUT`` writes, and the one reader.

:func:`save_study` writes three files into the model folder, each by one rename:

``model.joblib`` (:data:`MODEL_FILE`)
    The artefact (format :data:`ARTIFACT_FORMAT`): a dict with the validated
    :class:`~radflow.model.spec.StudySpec` (``spec``), the final fitted pipeline
    (``pipeline``), its input ``columns``, the ``feature_set`` and the training
    ``median_risk`` that splits new patients into risk groups.
``metrics.json`` (:data:`METRICS_FILE`)
    Versions, the spec's endpoint, model, seed and bootstrap, and the
    validation of each scheme (``validation``: scheme -> ``ValidationResult.as_dict()``).
``predictions.parquet`` (:data:`PREDICTIONS_FILE`)
    The out-of-fold predictions, below.

:class:`StudyOutputs` reads such a folder (each part on first use) and is what both
``radflow model predict`` and the report use; :func:`load_model` and
:func:`read_predictions` read one file each.

Out-of-fold predictions
-----------------------
:func:`save_study` writes ``predictions.parquet`` next to ``model.joblib``
and ``metrics.json``: one row per (validation scheme, patient), the risk
each patient got from the model of the fold that did not train on it.
Columns (:data:`PREDICTION_COLUMNS`):

=============  ==============================================================
``patient``    pseudonymised patient id (str)
``institution``  the patient's institution (str)
``scheme``     ``nested_cv`` or ``loio`` (str)
``fold``       ``fold-1`` ..., or the institution held out (str)
``risk``       out-of-fold risk, higher = worse (float)
``time``       survival endpoints: follow-up time, the spec's ``endpoint.time``
               unit (float)
``event``      survival endpoints: True if the follow-up ended with the event
``label``      binary endpoints, instead of ``time``/``event``: 0 or 1
=============  ==============================================================

:func:`read_predictions` reads and checks it (the report's Kaplan-Meier and
time-dependent AUC sections are drawn from it).
"""

from __future__ import annotations

import dataclasses
import json
from functools import cached_property
from pathlib import Path

import numpy as np

from radflow._atomic import atomic_file
from radflow._lazy import load
from radflow._version import __version__
from radflow.errors import InputError
from radflow.model.design import Design, load_design
from radflow.model.spec import StudySpec
from radflow.model.survival import predict_risk

joblib = load("joblib")
pd = load("pandas")

__all__ = [
    "ARTIFACT_FORMAT",
    "METRICS_FILE",
    "MODEL_FILE",
    "PREDICTIONS_FILE",
    "PREDICTION_COLUMNS",
    "StudyOutputs",
    "load_model",
    "predict_patients",
    "predictions_table",
    "read_predictions",
    "save_study",
]

MODEL_FILE = "model.joblib"
METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.parquet"

ARTIFACT_FORMAT = "radflow-model-1"

#: Columns of ``predictions.parquet`` (see the module docstring), then
#: ``time, event`` (survival) or ``label`` (binary).
PREDICTION_COLUMNS = ("patient", "institution", "scheme", "fold", "risk")
_OUTCOME_COLUMNS = {"survival": ("time", "event"), "binary": ("label",)}


def predictions_table(validations, design: Design):
    """The out-of-fold predictions of every validation scheme, in the layout of
    ``predictions.parquet`` (module docstring).

    Parameters
    ----------
    validations : dict of str to radflow.model.validation.ValidationResult
        ``StudyResult.validations``.
    design : Design
        The data validated (institutions and outcomes of the patients).

    Returns
    -------
    pandas.DataFrame
        One row per (scheme, patient), schemes in ``validations``' order,
        patients in the design's order.
    """
    y = np.asarray(design.y)
    survival = y.dtype.names is not None
    frames = []
    for scheme, result in validations.items():
        pred = result.predictions
        at = design.X.index.get_indexer(pred.index)
        if (at < 0).any():
            raise ValueError(f"predictions of {scheme!r} name patients absent from the design")
        frame = pd.DataFrame(
            {
                "patient": pred.index.astype(str),
                "institution": np.asarray(design.institution)[at].astype(str),
                "scheme": scheme,
                "fold": pred["fold"].astype(str).to_numpy(),
                "risk": pred["risk"].to_numpy(float),
            }
        )
        if survival:
            frame["time"] = y[y.dtype.names[1]][at].astype(float)
            frame["event"] = y[y.dtype.names[0]][at].astype(bool)
        else:
            frame["label"] = y[at].astype(int)
        frames.append(frame)
    columns = [*PREDICTION_COLUMNS, *_OUTCOME_COLUMNS["survival" if survival else "binary"]]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def read_predictions(path):
    """Read ``predictions.parquet`` (written by :func:`save_study`) and check its layout.

    Returns
    -------
    pandas.DataFrame
        The columns of the module docstring's table.

    Raises
    ------
    InputError
        Unreadable file, a missing column, or a (scheme, patient) given twice.
    """
    path = Path(path)
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise InputError(path, f"not a readable Parquet file ({exc})") from None
    kinds = [k for k, cols in _OUTCOME_COLUMNS.items() if set(cols) <= set(frame.columns)]
    absent = [c for c in PREDICTION_COLUMNS if c not in frame.columns]
    if absent or not kinds:
        raise InputError(
            path,
            f"not out-of-fold predictions: needs columns "
            f"{', '.join(PREDICTION_COLUMNS)} and time, event (survival) or "
            f"label (binary); has {', '.join(map(str, frame.columns))}",
        )
    if frame.duplicated(["scheme", "patient"]).any():
        raise InputError(path, "a patient appears twice in one validation scheme")
    return frame


def save_study(result, spec: StudySpec, out_dir, *, design: Design) -> dict:
    """Write ``model.joblib`` (the final pipeline and what prediction needs),
    ``metrics.json`` (validation with CIs) and ``predictions.parquet`` (the
    out-of-fold risks of each validation scheme, see the module docstring)
    into ``out_dir``, each by one rename.

    Parameters
    ----------
    result : radflow.model.validation.StudyResult
    spec : StudySpec
    out_dir : path-like
        Created if missing.
    design : Design
        The data the model was fitted on (its columns and risks).

    Returns
    -------
    dict
        ``{"model": path, "metrics": path, "predictions": path}``.
    """
    out = Path(out_dir)
    risk = predict_risk(result.model, design.X)
    artifact = {
        "format": ARTIFACT_FORMAT,
        "radflow_version": __version__,
        "spec": spec,
        "pipeline": result.model,
        "columns": result.columns,
        "feature_set": design.feature_set,
        # Risk groups of new patients use the training median, fixed before seeing them.
        "median_risk": float(np.median(risk)),
    }
    paths = {
        "model": out / MODEL_FILE,
        "metrics": out / METRICS_FILE,
        "predictions": out / PREDICTIONS_FILE,
    }
    with atomic_file(paths["model"]) as tmp:
        joblib.dump(artifact, tmp)
    with atomic_file(paths["predictions"]) as tmp:
        predictions_table(result.validations, design).to_parquet(tmp, index=False)
    summary = {
        "radflow_version": __version__,
        "feature_set": design.feature_set,
        "endpoint": spec.endpoint.kind,
        "model": spec.pipeline.model.method,
        "seed": spec.seed,
        "bootstrap": spec.bootstrap,
        **result.as_dict(),
    }
    with atomic_file(paths["metrics"]) as tmp:
        tmp.write_text(json.dumps(summary, indent=1, allow_nan=True) + "\n")
    return paths


def load_model(path) -> dict:
    """Read a model artifact written by :func:`save_study`.

    Raises
    ------
    InputError
        Missing file, or not a radflow model artifact.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "model file does not exist (radflow model fit writes model.joblib)")
    try:
        artifact = joblib.load(path)
    except Exception as exc:  # joblib/pickle raise many types for a foreign file
        raise InputError(path, f"not a readable model artifact ({type(exc).__name__})") from None
    if not isinstance(artifact, dict) or artifact.get("format") != ARTIFACT_FORMAT:
        raise InputError(path, f"not a radflow model artifact (format {ARTIFACT_FORMAT})")
    return artifact


def predict_patients(artifact: dict, table, *, clinical=None, genomic=None, key_file=None):
    """Score the patients of a feature table with a fitted model artifact.

    Parameters
    ----------
    artifact : dict
        From :func:`load_model`.
    table : path-like
        Feature table holding the model's feature set.
    clinical, genomic : path-like, optional
        CSV files of the new patients (default: the spec's, when the model
        uses those blocks).
    key_file : path-like, optional
        Pseudonymisation key (default: the spec's, else as at ingest).

    Returns
    -------
    pandas.DataFrame
        Index ``patient`` (pseudonymised), columns ``institution``, ``risk``
        and ``risk_group`` (``"high"`` above the training median risk).
    """
    spec = artifact["spec"]
    spec = dataclasses.replace(
        spec,
        clinical=Path(clinical) if clinical else spec.clinical,
        genomic=Path(genomic) if genomic else spec.genomic,
        key_file=Path(key_file) if key_file else spec.key_file,
        image=dataclasses.replace(spec.image, feature_set=artifact["feature_set"])
        if spec.image
        else None,
    )
    design = load_design(spec, table=table, require_target=False)
    absent = [c for c in artifact["columns"] if c not in design.X.columns]
    if len(absent) == len(artifact["columns"]) - 1:
        raise InputError(table, "no column of the model in the table (another feature set?)")
    # A column the new table lacks is missing for everyone: the pipeline imputes it.
    X = design.X.reindex(columns=artifact["columns"])
    try:
        risk = predict_risk(artifact["pipeline"], X)
    except ValueError as exc:
        if "not seen in fit" in str(exc):  # ComBat has no estimates for a new institution
            raise InputError(table, f"{exc}") from None
        raise
    return pd.DataFrame(
        {
            "institution": design.institution,
            "risk": risk,
            "risk_group": np.where(risk > artifact["median_risk"], "high", "low"),
        },
        index=X.index.rename("patient"),
    )


class StudyOutputs:
    """A model folder written by ``radflow model fit -o OUT`` (:func:`save_study`), read.

    Each part is read, and checked, when first used, so that scoring new patients needs
    only the artefact and a report only what it shows.

    Parameters
    ----------
    folder : path-like
        The model folder.
    model_file : path-like, optional
        The artefact, when it is not ``folder / MODEL_FILE``.

    Attributes
    ----------
    folder, model_file, metrics_file, predictions_file : pathlib.Path

    Examples
    --------
    >>> outputs = StudyOutputs.open("model_out")                  # doctest: +SKIP
    >>> outputs.spec.endpoint.kind, outputs.pipeline[-1]          # doctest: +SKIP
    >>> outputs.predict("new_features")                           # doctest: +SKIP
    """

    def __init__(self, folder, *, model_file=None):
        self.folder = Path(folder)
        self.model_file = Path(model_file) if model_file is not None else self.folder / MODEL_FILE
        self.metrics_file = self.folder / METRICS_FILE
        self.predictions_file = self.folder / PREDICTIONS_FILE

    @classmethod
    def open(cls, path) -> StudyOutputs:
        """The outputs of a model folder, given the folder or its ``model.joblib``.

        Raises
        ------
        InputError
            ``path`` is neither a folder nor a file (nor names a ``.joblib`` file).
        """
        path = Path(path)
        if path.is_dir():
            return cls(path)
        if path.is_file() or path.suffix == ".joblib":
            return cls(path.parent, model_file=path)
        raise InputError(path, "no such model folder (written by `radflow model fit -o OUTDIR`)")

    def __repr__(self) -> str:
        return f"StudyOutputs({str(self.folder)!r})"

    @cached_property
    def artefact(self) -> dict:
        """The artefact of :func:`load_model` (``spec``, ``pipeline``, ``columns``, ...)."""
        return load_model(self.model_file)

    @property
    def spec(self) -> StudySpec:
        """The validated study spec the model was fitted from."""
        return self.artefact["spec"]

    @property
    def pipeline(self):
        """The final pipeline, fitted on every patient."""
        return self.artefact["pipeline"]

    @cached_property
    def metrics(self) -> dict:
        """``metrics.json``.

        Raises
        ------
        InputError
            No such file, or not JSON.
        """
        if not self.metrics_file.is_file():
            raise InputError(
                self.folder, "no metrics JSON in the model folder (run `radflow model fit` first)"
            )
        try:
            return json.loads(self.metrics_file.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(self.metrics_file, f"not a readable metrics JSON ({exc})") from None

    @property
    def validation(self) -> dict[str, dict]:
        """Scheme (``"nested_cv"``, ``"loio"``) -> its ``ValidationResult.as_dict()``."""
        schemes = self.metrics.get("validation") or {}
        return {k: v for k, v in schemes.items() if isinstance(v, dict) and "folds" in v}

    @property
    def command(self) -> str:
        """The command that fitted the model, as far as the folder tells it."""
        command = self.metrics.get("command")
        if isinstance(command, list):
            command = " ".join(command)
        return command or f"radflow model fit {self.spec.source or ''} -o {self.folder}"

    @cached_property
    def predictions(self):
        """``predictions.parquet`` (:func:`read_predictions`), or None when the folder has none.

        Only this file: ``radflow model predict -o`` may leave a CSV of new patients'
        in-sample risks in the folder, which must never pass for out-of-fold ones.
        """
        return read_predictions(self.predictions_file) if self.predictions_file.is_file() else None

    def design(self, **kwargs) -> Design:
        """The data of the spec, read again (:func:`~radflow.model.design.load_design`)."""
        return load_design(self.spec, **kwargs)

    def predict(self, table, *, clinical=None, genomic=None, key_file=None):
        """Score the patients of a feature table (:func:`predict_patients`)."""
        return predict_patients(
            self.artefact, table, clinical=clinical, genomic=genomic, key_file=key_file
        )
