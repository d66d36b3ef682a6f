"""Habitats in the report: each patient's habitat fractions, and how a habitat follows a reference.

The habitat features of a ROI (``featureClass: {habitat: }``, :mod:`radflow.features.habitat`)
reach a study's design as columns ``<modality>.<roi>.<imageType>_habitat_<Name>``; the report
reads the fractions ``..._habitat_Fraction_<k>`` from the design (the features as extracted,
before harmonisation and scaling), so it needs neither the store nor the habitat model.

A :class:`HabitatReference` names a per-patient quantity one habitat's fraction should follow:
the demo passes the generator's hidden necrosis fraction and the necrotic habitat (the one of
lowest CT and PET); :func:`reference_agreement` correlates the two from the data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from scipy import stats

from radflow._lazy import load

pd = load("pandas")

__all__ = [
    "HabitatReference",
    "ReferenceAgreement",
    "habitat_feature_columns",
    "habitat_fractions",
    "reference_agreement",
]

_FRACTION = re.compile(
    r"^(?P<where>[^.]+\.[^.]+)\.(?P<image_type>[^.]+?)_habitat_Fraction_(?P<k>\d+)$"
)


@dataclass(frozen=True)
class HabitatReference:
    """A per-patient quantity that the fraction of one habitat should follow.

    Attributes
    ----------
    values : pandas.Series
        Patient id (as the design's index: pseudonymised) -> value.
    habitat : int
        The habitat k whose ``Fraction_k`` is compared.
    name : str
        What ``values`` are, for captions (e.g. ``"hidden necrosis fraction"``).
    habitat_name : str
        What the habitat is (e.g. ``"necrotic habitat (lowest CT and PET)"``).
    where : str, optional
        ``<modality>.<roi>`` of the habitat map (default: the design's only one).
    """

    values: object
    habitat: int
    name: str
    habitat_name: str = ""
    where: str | None = None


@dataclass(frozen=True)
class ReferenceAgreement:
    """The fraction of a habitat against a reference, patient by patient.

    Attributes
    ----------
    column : str
        The design column of the habitat's fraction.
    fraction, reference : pandas.Series
        The patients with both values.
    pearson, spearman : float
        Correlations (NaN when either is constant).
    pearson_p, spearman_p : float
        Their two-sided p-values.
    """

    column: str
    fraction: object
    reference: object
    pearson: float
    spearman: float
    pearson_p: float
    spearman_p: float

    @property
    def n(self) -> int:
        return len(self.fraction)

    def text(self, reference: HabitatReference) -> str:
        """One line: ``<habitat> fraction vs <reference>: Pearson r ..., Spearman rho ...``."""
        what = reference.habitat_name or f"habitat {reference.habitat}"
        return (
            f"{what} fraction vs {reference.name}: Pearson r {self.pearson:.2f} "
            f"(p {self.pearson_p:.2g}), Spearman rho {self.spearman:.2f} "
            f"(p {self.spearman_p:.2g}), n = {self.n}; mean fraction "
            f"{float(self.fraction.mean()):.3f} vs {float(self.reference.mean()):.3f}"
        )


def habitat_fractions(X) -> dict[str, object]:
    """``<modality>.<roi>`` -> each patient's habitat fractions, from the design's columns.

    Parameters
    ----------
    X : pandas.DataFrame
        A design matrix (rows: patients), columns ``<modality>.<roi>.<imageType>_<feature>``.

    Returns
    -------
    dict of str to pandas.DataFrame
        Columns the habitat numbers 1..K (ints, increasing), rows ``X``'s; empty when the
        design has no habitat fraction.
    """
    found: dict[str, dict[int, str]] = {}
    for column in map(str, X.columns):
        match = _FRACTION.match(column)
        if match:
            found.setdefault(match["where"], {})[int(match["k"])] = column
    out = {}
    for where, columns in sorted(found.items()):
        frame = X[[columns[k] for k in sorted(columns)]].apply(pd.to_numeric, errors="coerce")
        frame.columns = sorted(columns)
        out[where] = frame
    return out


def habitat_feature_columns(names) -> list[str]:
    """The names among ``names`` that are habitat features (``..._habitat_<Name>``)."""
    return [str(n) for n in names if "_habitat_" in str(n)]


def reference_agreement(X, reference: HabitatReference) -> ReferenceAgreement | None:
    """Correlate the reference's habitat fraction with its values over the patients of ``X``.

    Returns None when the design has no fraction of that habitat (no habitat features, or
    another ``where``) or fewer than 3 patients have both values.
    """
    fractions = habitat_fractions(X)
    if reference.where is not None:
        fractions = {k: v for k, v in fractions.items() if k == reference.where}
    if len(fractions) != 1:
        return None
    where, frame = next(iter(fractions.items()))
    if reference.habitat not in frame.columns:
        return None
    values = pd.Series(reference.values, dtype=float)
    both = pd.concat([frame[reference.habitat], values.reindex(frame.index)], axis=1).dropna()
    if len(both) < 3:
        return None
    x, y = both.iloc[:, 0], both.iloc[:, 1]
    constant = np.ptp(x.to_numpy()) == 0 or np.ptp(y.to_numpy()) == 0
    pearson = (np.nan, np.nan) if constant else stats.pearsonr(x, y)
    spearman = (np.nan, np.nan) if constant else stats.spearmanr(x, y)
    column = next(
        c
        for c in map(str, X.columns)
        if (m := _FRACTION.match(c)) and m["where"] == where and int(m["k"]) == reference.habitat
    )
    return ReferenceAgreement(
        column=column,
        fraction=x,
        reference=y,
        pearson=float(pearson[0]),
        spearman=float(spearman[0]),
        pearson_p=float(pearson[1]),
        spearman_p=float(spearman[1]),
    )
