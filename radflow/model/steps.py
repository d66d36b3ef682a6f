"""The estimators a study spec's ``select`` steps name.

:data:`SELECTORS` maps a step's ``method`` to its class in :mod:`radflow.model.selection`;
:func:`make_selector` builds the unfitted transformer from a :class:`~radflow.model.spec.Step`
(the spec's keyword arguments; ``icc`` reads its Parquet ICC table here). The outcome models
of the ``model`` step are named in :mod:`radflow.model.survival` (:func:`make_model`).
"""

from __future__ import annotations

from radflow._lazy import load
from radflow.errors import InputError, SettingsError
from radflow.model import selection

pd = load("pandas")

__all__ = ["SELECTORS", "make_selector"]

#: Spec name -> transformer class of :mod:`radflow.model.selection`.
SELECTORS = {
    "nzv": selection.NearZeroVariance,
    "icc": selection.ICCFilter,
    "correlation": selection.CorrelationFilter,
    "univariate_cox": selection.UnivariateCoxSelector,
    "coxnet": selection.CoxnetSelector,
    "l1_logistic": selection.L1LogisticSelector,
    "pca": selection.FeaturePCA,
    "forest": selection.ForestImportanceSelector,
    "mrmr": selection.MRMRSelector,
}


def make_selector(step):
    """The unfitted transformer of a ``select`` step.

    Parameters
    ----------
    step : radflow.model.spec.Step
        ``method`` (a key of :data:`SELECTORS`) and ``params``, the class's keyword
        arguments. ``icc`` takes ``table`` instead of ``icc``: the Parquet ICC table of a
        stability study (``radflow model stats``); columns it does not name (clinical,
        genomic, other modalities) are kept unless ``missing`` says otherwise.

    Raises
    ------
    SettingsError
        ``icc`` without a table.
    InputError
        The ICC table is missing or not Parquet.
    TypeError, ValueError
        A keyword the class does not take (its own error).
    """
    cls = SELECTORS[step.method]
    params = dict(step.params)
    if step.method == "icc":
        table = params.pop("table", None)
        if table is None:
            raise SettingsError("icc: needs table (the Parquet ICC table of a stability study)")
        try:
            params["icc"] = pd.read_parquet(table)
        except FileNotFoundError:
            raise InputError(
                table,
                "ICC table does not exist (a stability study writes it: "
                "radflow model stats --store)",
            ) from None
        except (OSError, ValueError) as exc:
            raise InputError(table, f"not a readable ICC Parquet table ({exc})") from None
        params.setdefault("missing", "keep")
    return cls(**params)
