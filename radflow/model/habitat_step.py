"""Habitat features inside a model pipeline, with the habitat model fitted on training rows only.

Habitat features computed by ``radflow habitats fit/apply`` then ``radflow run`` come from a
habitat model fitted on the whole cohort: in a cross-validation, the habitats of a test patient
were then learnt with that patient's voxels. :class:`HabitatFeatures` is the leakage-free way:
a transformer placed first in the study pipeline that fits a
:class:`~radflow.model.habitat.HabitatModel` on the ROIs of the rows it is fitted on (the
training fold) and, in ``transform``, maps every row's ROI with that model and appends its
habitat features (:func:`radflow.features.habitat.habitat_features`) as columns. Inside
:func:`~radflow.model.validation.nested_cv` each outer and inner fit clones it, so every habitat
model sees training-fold ROIs only.

The ROI data stay outside the design matrix: ``rois`` maps each row id (the index of ``X``,
the pseudonymised patient) to the ROI's channels, mask and spacing, or is a function returning
them (None for a patient without that ROI). :class:`StoreROIs` is that function for a volume
store: it reads a case's channels as ``radflow habitats fit`` does
(:func:`radflow.pipeline.habitats.read_channels`: the ROI's box on the reference series, the
other channels resampled onto it), so ``HabitatFeatures(StoreROIs(store, "GTV", ["CT", "PT"]))``
validates habitat features of a store without fitting on the test patients.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.utils.validation import check_is_fitted

from radflow._lazy import load
from radflow.features.habitat import feature_names, habitat_features
from radflow.model.habitat import HabitatModel
from radflow.pipeline.habitats import plan_units, read_channels

pd = load("pandas")

__all__ = ["HabitatFeatures", "StoreROIs"]


class StoreROIs:
    """The ROIs of a volume store, one per case, as :class:`HabitatFeatures`' ``rois``.

    Parameters
    ----------
    store : str or path-like
        Volume store (``radflow ingest``); its case ids are the pseudonymised patient ids of
        the feature table, hence of the design matrix.
    roi : str
        ROI name (``GTV`` finds ``gtv``).
    channels : sequence of str
        Modalities; the first is the series carrying the ROI (the grid), as for
        ``radflow habitats fit --channels``.

    Calling it with a case id gives ``(channels, mask, spacing_zyx)`` inside the ROI's box, or
    None for a case the store does not have with the ROI and every channel
    (:func:`radflow.pipeline.habitats.plan_units` lists them). The store's cases are listed on
    the first call and remembered.
    """

    def __init__(self, store, roi, channels):
        self.store = store
        self.roi = roi
        self.channels = tuple(channels)
        self._units = None

    def __repr__(self) -> str:
        return f"StoreROIs({str(self.store)!r}, {self.roi!r}, {list(self.channels)!r})"

    def __call__(self, case):
        if self._units is None:
            units = {}
            for unit in plan_units(self.store, self.roi, self.channels)[0]:
                units.setdefault(unit.case, []).append(unit)
            self._units = units
        units = self._units.get(case, [])
        if len(units) > 1:
            series = ", ".join(u.series for u in units)
            raise ValueError(
                f"StoreROIs: case {case!r} has the ROI {self.roi!r} on several series "
                f"({series}); a design row takes one"
            )
        if not units:
            return None
        values, mask, spacing_zyx, _ = read_channels(units[0], self.channels)
        return values, mask, spacing_zyx


class HabitatFeatures(TransformerMixin, BaseEstimator):
    """Append the habitat features of each row's ROI; the habitat model is learnt in fit.

    Parameters
    ----------
    rois : mapping or callable
        Row id -> ``(channels, mask, spacing_zyx)`` as :meth:`HabitatModel.predict_roi` takes
        them (channels ``(n_channels, z, y, x)`` in the same order and units for every row,
        the mask, the spacing in mm). A mapping without the id, or a callable returning None,
        means the row has no ROI: its habitat features are NaN (impute them later in the
        pipeline). Clones share a callable; a mapping is copied by :func:`sklearn.clone`, so
        pass a function for a large cohort.
    model : HabitatModel, optional
        The unfitted habitat model (cloned in fit; its parameters can be tuned as
        ``<step>__model__n_habitats``). Default: ``HabitatModel(random_state=0)``.
    features : sequence of str, optional
        The habitat features to keep (names or stems, as
        :func:`radflow.features.habitat.feature_names` takes them); None keeps all.
    prefix : str, default="habitat.original_habitat_"
        Prefix of the added columns (``habitat.`` makes them a block of their own for late
        fusion; ``original_habitat_`` is the name the extraction gives them).

    Attributes
    ----------
    model_ : HabitatModel
        Fitted on the voxels of the ROIs of the rows of fit (each row one group).
    rows_ : ndarray
        The row ids whose ROIs the model was fitted on.
    columns_ : list of str
        The added columns.
    habitat_feature_names_ : tuple of str
        Their names without the prefix (keys of ``habitat_features``).
    feature_names_in_ : ndarray of str
    n_features_in_ : int
    """

    def __init__(self, rois=None, *, model=None, features=None, prefix="habitat.original_habitat_"):
        self.rois = rois
        self.model = model
        self.features = features
        self.prefix = prefix

    def _roi(self, row):
        if callable(self.rois):
            return self.rois(row)
        return self.rois.get(row)

    def _check_input(self, X):
        if not isinstance(X, pd.DataFrame):
            raise TypeError(
                "HabitatFeatures: X must be a pandas DataFrame whose index holds the row ids "
                f"of `rois`, got {type(X).__name__}"
            )
        if not (callable(self.rois) or isinstance(self.rois, Mapping)):
            raise ValueError(
                "HabitatFeatures: rois must be a mapping or a function from row id to "
                f"(channels, mask, spacing_zyx), got {type(self.rois).__name__}"
            )
        if X.index.has_duplicates:
            raise ValueError("HabitatFeatures: the index of X (row ids) has duplicates")

    def fit(self, X, y=None):
        """Fit the habitat model on the ROIs of the rows of `X`.

        Parameters
        ----------
        X : pandas.DataFrame
            Its index gives the row ids looked up in `rois`; its columns pass through.
        y : ignored

        Returns
        -------
        self
        """
        self._check_input(X)
        voxels, counts, rows = [], [], []
        for row in X.index:
            roi = self._roi(row)
            if roi is None:
                continue
            channels, mask, _ = roi
            mask = np.asarray(mask) != 0
            voxels.append(np.asarray(channels, dtype=np.float64)[:, mask].T)
            counts.append(int(mask.sum()))
            rows.append(row)
        if not rows:
            raise ValueError("HabitatFeatures: no row of X has a ROI in `rois`")
        self.rows_ = np.asarray(rows, dtype=object)
        model = HabitatModel(random_state=0) if self.model is None else self.model
        # groups: the row id of each voxel (two-stage makes each ROI's supervoxels apart)
        self.model_ = clone(model).fit(np.vstack(voxels), groups=np.repeat(self.rows_, counts))
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        names = feature_names(self.model_.n_habitats_, self.features)
        self.columns_ = [self.prefix + name for name in names]
        self.habitat_feature_names_ = names
        clash = sorted(set(self.columns_) & set(map(str, X.columns)))
        if clash:
            raise ValueError(f"HabitatFeatures: X already has the column {clash[0]!r}")
        return self

    def transform(self, X):
        """`X` with the habitat features of each row's ROI appended (NaN without a ROI).

        Returns
        -------
        pandas.DataFrame
            Columns :meth:`get_feature_names_out`, index of `X`.
        """
        check_is_fitted(self, "model_")
        self._check_input(X)
        if list(X.columns) != list(self.feature_names_in_):
            raise ValueError("HabitatFeatures: X has other columns than in fit")
        k = self.model_.n_habitats_
        values = np.full((len(X), len(self.habitat_feature_names_)), np.nan)
        for i, row in enumerate(X.index):
            roi = self._roi(row)
            if roi is None:
                continue
            channels, mask, spacing_zyx = roi
            habitats = self.model_.predict_roi(channels, mask, spacing_zyx)
            if not habitats.any():
                continue  # an empty mask: no ROI
            out = habitat_features(habitats, spacing_zyx, k)
            values[i] = [out[name] for name in self.habitat_feature_names_]
        added = pd.DataFrame(values, index=X.index, columns=self.columns_)
        return pd.concat([X, added], axis=1)

    def get_feature_names_out(self, input_features=None):
        """The input columns, then the habitat feature columns."""
        check_is_fitted(self, "columns_")
        return np.asarray([*self.feature_names_in_, *self.columns_], dtype=object)
