"""ICCFilter: keep the features whose stability (ICC) reaches a threshold."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from sklearn.utils.validation import validate_data

from radflow._config import Rule
from radflow._lazy import load
from radflow.model.selection._base import _Selector, check_params

pd = load("pandas")

__all__ = ["ICCFilter"]


class ICCFilter(_Selector):
    """Keep features whose stability (ICC) reaches a threshold.

    Parameters
    ----------
    icc : mapping, pandas.Series or pandas.DataFrame
        ICC per feature: ``{column: value}``, a Series indexed by column, or
        the long table of :func:`radflow.model.icc.icc` (columns
        ``feature, form, icc, ci_low, ...``), from which ``form`` and
        ``statistic`` pick the value. Feature names must equal the column
        names of ``X``.
    threshold : float, default=0.75
        Minimum ICC kept (0.75: "good" reliability, Koo & Li 2016).
    form : str, default="ICC(1,1)"
        Form used from a long table. ICC(1,1) is the usual choice for
        perturbation studies, where the perturbations are random draws
        (Zwanenburg et al. 2019).
    statistic : {"icc", "ci_low"}, default="icc"
        Compare the point estimate, or the lower 95% confidence bound (the
        stricter rule of Koo & Li), with the threshold.
    missing : {"error", "keep", "drop"}, default="error"
        What to do with a column that has no ICC (e.g. a clinical variable).

    Attributes
    ----------
    icc_ : ndarray, shape (n_features_in_,)
        The value compared for each input column (NaN where missing).
    support_ : ndarray of bool

    References
    ----------
    Koo TK, Li MY. A guideline of selecting and reporting intraclass
    correlation coefficients for reliability research. J Chiropr Med
    2016;15(2):155-163. doi:10.1016/j.jcm.2016.02.012

    Zwanenburg A, Leger S, Agolli L, et al. Assessing robustness of radiomic
    features by image perturbation. Sci Rep 2019;9:614.
    doi:10.1038/s41598-018-36938-4
    """

    _parameter_rules = {
        "statistic": Rule("str", choices=("icc", "ci_low")),
        "missing": Rule("str", choices=("error", "keep", "drop")),
        "threshold": Rule("float", low=-1.0, high=1.0),
    }

    def __init__(
        self, icc=None, *, threshold=0.75, form="ICC(1,1)", statistic="icc", missing="error"
    ):
        self.icc = icc
        self.threshold = threshold
        self.form = form
        self.statistic = statistic
        self.missing = missing

    def fit(self, X, y=None):
        """Look up the ICC of each column of ``X`` and mark those kept."""
        check_params(self)
        X = validate_data(self, X, ensure_all_finite="allow-nan")
        values = self._lookup()
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            raise ValueError(
                "ICCFilter: X must be a DataFrame whose column names match the ICC table's features"
            )
        self.icc_ = np.array([values.get(c, np.nan) for c in names], dtype=float)
        absent = np.isnan(self.icc_)
        if absent.any() and self.missing == "error":
            raise ValueError(
                f"ICCFilter: no ICC for column {names[absent][0]!r} "
                f"({absent.sum()} such); pass missing='keep' or 'drop'"
            )
        self.support_ = np.where(absent, self.missing == "keep", self.icc_ >= self.threshold)
        return self

    def _lookup(self) -> dict:
        table = self.icc
        if isinstance(table, pd.DataFrame):
            need = {"feature", "form", self.statistic}
            if not need <= set(table.columns):
                raise ValueError(
                    f"ICCFilter: the ICC table needs columns {sorted(need)}, "
                    f"has {list(table.columns)}"
                )
            rows = table[table["form"] == self.form]
            if rows.empty:
                raise ValueError(
                    f"ICCFilter: no rows of form {self.form!r} in the ICC table "
                    f"(forms: {sorted(table['form'].unique())})"
                )
            if rows["feature"].duplicated().any():
                raise ValueError(
                    "ICCFilter: the ICC table has two rows for feature "
                    f"{rows['feature'][rows['feature'].duplicated()].iloc[0]!r}"
                )
            return dict(zip(rows["feature"], rows[self.statistic].astype(float)))
        if isinstance(table, (pd.Series, Mapping)):
            if self.statistic != "icc":
                raise ValueError("ICCFilter: statistic='ci_low' needs the long ICC table")
            return {k: float(v) for k, v in dict(table).items()}
        raise ValueError(
            "ICCFilter: icc must be a mapping, Series or long DataFrame of ICCs, "
            f"got {type(table).__name__}"
        )
