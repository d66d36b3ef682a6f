"""Feature selection transformers for radiomics pipelines, one estimator per module.

Every selector follows scikit-learn's conventions: ``__init__`` stores its
keyword arguments and does nothing else; ``fit`` checks them against the
class's declared ``_parameter_rules`` (:func:`~radflow.model.selection._base.check_params`),
validates the data and learns (on the training fold only, inside a
cross-validation); learned state ends in ``_``, ``transform`` keeps the chosen
columns, ``get_feature_names_out`` names them, and
``set_output(transform="pandas")`` keeps DataFrames (with their column names)
through a :class:`~sklearn.pipeline.Pipeline`.

Survival targets are scikit-survival structured arrays (event indicator,
time), as made by :func:`sksurv.util.Surv.from_arrays`; binary endpoints are
0/1 (or two-class) arrays.

=================================  ===========================  =================================
selector                           module                       keeps
=================================  ===========================  =================================
:class:`ICCFilter`                 ``_icc``                     features whose stability ICC >=
                                                                threshold
:class:`NearZeroVariance`          ``_variance``                features that are not (near)
                                                                constant
:class:`CorrelationFilter`         ``_correlation``             one feature per cluster of
                                                                |r| >= threshold
:class:`UnivariateCoxSelector`     ``_univariate_cox``          features whose Cox score test
                                                                p <= alpha (or top k)
:class:`CoxnetSelector`            ``_coxnet``                  non-zero coefficients of a
                                                                LASSO/elastic-net Cox
:class:`L1LogisticSelector`        ``_l1_logistic``             non-zero coefficients of an L1
                                                                logistic model
:class:`ForestImportanceSelector`  ``_forest``                  the most important features of a
                                                                random (survival) forest
:class:`MRMRSelector`              ``_mrmr``                    max-relevance min-redundancy
                                                                ranking, first k
:class:`FeaturePCA`                ``_pca``                     (a projection, not a selection)
                                                                named components
=================================  ===========================  =================================

:func:`cox_score_test` (``_scores``) is the univariate Cox score test the
survival selectors rank by. A new selector goes in a module of its own,
subclasses ``_base._Selector`` (``_SupervisedSelector`` when ``fit`` needs
``y``), declares its parameters in ``_parameter_rules`` and is re-exported
here (and named in :data:`radflow.model.builder.SELECTORS` for study specs).
"""

from __future__ import annotations

from radflow.model.selection._correlation import CorrelationFilter
from radflow.model.selection._coxnet import CoxnetSelector
from radflow.model.selection._forest import ForestImportanceSelector
from radflow.model.selection._icc import ICCFilter
from radflow.model.selection._l1_logistic import L1LogisticSelector
from radflow.model.selection._mrmr import MRMRSelector
from radflow.model.selection._pca import FeaturePCA
from radflow.model.selection._scores import cox_score_test
from radflow.model.selection._univariate_cox import UnivariateCoxSelector
from radflow.model.selection._variance import NearZeroVariance

__all__ = [
    "CorrelationFilter",
    "CoxnetSelector",
    "FeaturePCA",
    "ForestImportanceSelector",
    "ICCFilter",
    "L1LogisticSelector",
    "MRMRSelector",
    "NearZeroVariance",
    "UnivariateCoxSelector",
    "cox_score_test",
]
