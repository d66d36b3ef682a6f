"""Habitat model: intratumour sub-regions from co-registered channels, as a scikit-learn clusterer.

A *habitat* is a sub-region of a ROI whose voxels look alike in every channel (CT HU, PET SUV,
voxel feature maps resampled onto one grid): a necrotic core of low attenuation and low uptake,
a viable rim of high uptake. :class:`HabitatModel` learns the habitats of a cohort from the ROI
voxels of its training cases and assigns the voxels of any ROI to them:

``method="two-stage"`` (Wu et al. 2016)
    Each ROI is first over-segmented by k-means into ``n_supervoxels`` clusters of its own
    voxels (supervoxels); the supervoxel means of the whole cohort are then clustered into K
    habitats by k-means. Each supervoxel weighs its share of its ROI's voxels, so that every
    ROI weighs the same in the cohort clustering (as its fixed number of supervoxels does in
    the paper) and, inside a ROI, a compartment weighs its volume rather than its spread of
    values. A voxel's habitat is the nearest cohort centre.
``method="kmeans"`` / ``method="gmm"``
    The voxels of every ROI pooled and clustered by k-means or a Gaussian mixture
    (``covariance_type``). Above :data:`MAX_FIT_VOXELS` pooled voxels, the clustering is
    fitted on a seeded random subsample of that many voxels (every voxel is still labelled).

Channels are standardised with the mean and standard deviation of the training voxels (learnt
in :meth:`HabitatModel.fit`, ``channel_mean_``/``channel_scale_``), so that HU and SUV weigh
alike. K is given (``n_habitats``) or chosen over ``k_range`` by the mean silhouette (higher is
better; computed on the clustered samples: the supervoxel means for two-stage, a seeded
subsample of at most :data:`SILHOUETTE_SAMPLES` voxels for the pooled methods) or by the BIC of
the Gaussian mixture (lower is better; ``method="gmm"`` only). Habitats are numbered 1..K by
increasing mean of the first channel (ties by the next channels), so that habitat 1 means the
same thing in every patient and every run.

:meth:`HabitatModel.predict_roi` labels a ROI on its grid and reassigns the connected components
smaller than ``min_size_mm3`` to the neighbouring habitat by majority
(:func:`reassign_small_components`).

References
----------
Wu J, Gong G, Cui Y, Li R. Intratumor partitioning and texture analysis of dynamic
contrast-enhanced (DCE)-MRI identifies relevant tumor subregions to predict pathological
response of breast cancer to neoadjuvant chemotherapy. J Magn Reson Imaging
2016;44(5):1107-1115. doi:10.1002/jmri.25279

Wu J, Cao G, Sun X, et al. Intratumoral spatial heterogeneity at perfusion MR imaging predicts
recurrence-free survival in locally advanced breast cancer treated with neoadjuvant
chemotherapy. Radiology 2018;288(1):26-35. doi:10.1148/radiol.2018172462
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from radflow._config import Rule
from radflow._lazy import load
from radflow.model.selection._base import check_params

cluster = load("sklearn.cluster")
mixture = load("sklearn.mixture")
sklearn_metrics = load("sklearn.metrics")

__all__ = ["MAX_FIT_VOXELS", "SILHOUETTE_SAMPLES", "HabitatModel", "reassign_small_components"]

#: Pooled voxels (or voxels of one ROI, for the supervoxels of two-stage) above which a
#: clustering is fitted on a seeded random subsample of this many voxels.
MAX_FIT_VOXELS = 100_000
#: Samples the silhouette of a candidate K is computed on (a seeded subsample above it).
SILHOUETTE_SAMPLES = 5_000
#: k-means restarts (best inertia kept) of the cohort-level / pooled clusterings.
_N_INIT = 10
_METHODS = ("two-stage", "kmeans", "gmm")


def _int_pair(value):
    low, high = value
    if high < low:
        raise ValueError(value)
    return (low, high)


class HabitatModel(ClusterMixin, BaseEstimator):
    """Habitats (intratumour sub-regions) of a cohort, learnt from the voxels of its ROIs.

    Parameters
    ----------
    n_habitats : int, optional
        K, the number of habitats (1 to 255); None chooses it over `k_range` by `criterion`.
    method : {"two-stage", "kmeans", "gmm"}, default="two-stage"
        Per-ROI supervoxels then cohort clustering (Wu et al. 2016), or the pooled voxels
        clustered by k-means or a Gaussian mixture.
    k_range : (int, int), default=(2, 6)
        Smallest and largest K tried when `n_habitats` is None (both included, >= 2).
    criterion : {"silhouette", "bic"}, default="silhouette"
        How K is chosen: highest mean silhouette, or lowest BIC (``method="gmm"`` only).
    n_supervoxels : int, default=50
        Supervoxels per ROI (two-stage); a ROI with fewer distinct voxel values gets that many.
    covariance_type : {"full", "tied", "diag", "spherical"}, default="full"
        Covariance of the Gaussian mixture (``method="gmm"``).
    min_size_mm3 : float, default=0.0
        :meth:`predict_roi` reassigns connected components smaller than this (mm^3) to the
        neighbouring habitat by majority; 0 keeps every component.
    random_state : int, RandomState instance or None
        Seeds the k-means initialisations, the mixture and the subsamples: a given seed gives
        the same habitats on the same data.

    Attributes
    ----------
    n_habitats_ : int
        K, given or chosen.
    scores_ : dict of int to float
        The criterion of each K tried (empty when `n_habitats` is given).
    channel_mean_, channel_scale_ : ndarray, shape (n_features_in_,)
        Standardisation learnt from the training voxels (a constant channel has scale 1).
    habitat_means_ : ndarray, shape (n_habitats_, n_features_in_)
        Mean of each habitat (row k-1 is habitat k) in channel units: the k-means centres, or
        the mixture means; increasing in the first column.
    estimator_ : sklearn.cluster.KMeans or sklearn.mixture.GaussianMixture
        The fitted cohort-level clustering (on standardised channels).
    order_ : ndarray of int, shape (n_habitats_,)
        Habitat number (1..K) of each cluster of `estimator_`.
    n_supervoxels_ : int
        Supervoxels clustered at cohort level (two-stage; else 0).
    labels_ : ndarray of int, shape (n_voxels,)
        Habitat (1..K) of each training voxel.
    n_features_in_ : int
        Channels.

    Notes
    -----
    ``fit(X, groups=...)`` takes the ROI of each voxel as `groups` (two-stage makes the
    supervoxels of each ROI apart; the pooled methods ignore it). Unlike scikit-learn's
    clusterers, labels start at 1: 0 is outside the ROI in a habitat map.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal([10.0, 1.0], 1.0, (200, 2)),
    ...                rng.normal([40.0, 8.0], 1.0, (200, 2))])
    >>> model = HabitatModel(method="kmeans", random_state=0).fit(X)
    >>> model.n_habitats_, np.unique(model.labels_[:200]), np.unique(model.labels_[200:])
    (2, array([1]), array([2]))
    """

    _parameter_rules = {
        "n_habitats": Rule("int", low=1, high=255, nullable=True),
        "method": Rule("str", choices=_METHODS),
        "k_range": Rule(
            "int",
            sequence=True,
            lengths=(2,),
            low=2,
            high=255,
            convert=_int_pair,
            expected="two integers low <= high, each >= 2",
        ),
        "criterion": Rule("str", choices=("silhouette", "bic")),
        "n_supervoxels": Rule("int", low=1),
        "covariance_type": Rule("str", choices=("full", "tied", "diag", "spherical")),
        "min_size_mm3": Rule("float", low=0.0),
    }

    def __init__(
        self,
        n_habitats=None,
        *,
        method="two-stage",
        k_range=(2, 6),
        criterion="silhouette",
        n_supervoxels=50,
        covariance_type="full",
        min_size_mm3=0.0,
        random_state=None,
    ):
        self.n_habitats = n_habitats
        self.method = method
        self.k_range = k_range
        self.criterion = criterion
        self.n_supervoxels = n_supervoxels
        self.covariance_type = covariance_type
        self.min_size_mm3 = min_size_mm3
        self.random_state = random_state

    # ------------------------------------------------------------------ fit

    def fit(self, X, y=None, groups=None):
        """Learn the standardisation, K and the habitats from the training voxels.

        Parameters
        ----------
        X : array-like, shape (n_voxels, n_channels)
            The ROI voxels of every training ROI, stacked (channel values, finite).
        y : ignored
        groups : array-like, shape (n_voxels,), optional
            ROI of each voxel (any hashable ids); None: one ROI.

        Returns
        -------
        self

        Raises
        ------
        SettingsError
            A parameter out of its range.
        ValueError
            ``criterion="bic"`` without ``method="gmm"``, `X` not a finite 2-D array,
            `groups` of another length, or fewer distinct samples to cluster than K (K + 1
            when K is chosen).
        """
        check_params(self)
        if self.criterion == "bic" and self.method != "gmm" and self.n_habitats is None:
            raise ValueError(
                f"HabitatModel: criterion='bic' needs method='gmm' (got method={self.method!r}); "
                "use criterion='silhouette' or give n_habitats"
            )
        X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2)
        if groups is None:
            groups = np.zeros(len(X), dtype=np.intp)
        else:
            groups = np.asarray(groups)
            if groups.shape != (len(X),):
                raise ValueError(
                    f"HabitatModel: groups must give the ROI of each of the {len(X)} voxels, "
                    f"got shape {groups.shape}"
                )
        rng = check_random_state(self.random_state)

        self.channel_mean_ = X.mean(axis=0)
        scale = X.std(axis=0)
        self.channel_scale_ = np.where(scale > 0, scale, 1.0)
        Z = self._standardise(X)

        if self.method == "two-stage":
            samples, weights = self._supervoxel_means(Z, groups, rng)
            self.n_supervoxels_ = len(samples)
        else:
            samples, weights = self._subsample(Z, MAX_FIT_VOXELS, rng), None
            self.n_supervoxels_ = 0
        distinct = len(np.unique(samples, axis=0))
        if self.n_habitats is not None:
            candidates = [self.n_habitats]
            if self.n_habitats > distinct:
                raise ValueError(
                    f"HabitatModel: n_habitats={self.n_habitats} but the data have only "
                    f"{distinct} distinct {self._sample_name()} to cluster"
                )
        else:
            low, high = self.k_range
            candidates = [k for k in range(low, high + 1) if k < distinct]
            if not candidates:
                raise ValueError(
                    f"HabitatModel: k_range={tuple(self.k_range)} needs more than {low} "
                    f"distinct {self._sample_name()}, the data have {distinct}"
                )

        self.scores_ = {}
        fitted = []
        for k in candidates:
            estimator = self._clusterer(k, rng)
            if weights is None:
                estimator.fit(samples)
            else:
                estimator.fit(samples, sample_weight=weights)
            if len(candidates) > 1:
                self.scores_[k] = self._score(estimator, samples, rng)
            fitted.append(estimator)
        # The best score (highest silhouette, lowest BIC); ties go to the smaller K.
        sign = -1.0 if self.criterion == "bic" else 1.0
        best = fitted[int(np.argmax([sign * self.scores_.get(k, 0.0) for k in candidates]))]
        self.estimator_ = best
        centres = best.means_ if self.method == "gmm" else best.cluster_centers_
        self.n_habitats_ = len(centres)
        means = centres * self.channel_scale_ + self.channel_mean_
        # Habitat numbers: increasing first channel, ties broken by the next channels.
        rank = np.lexsort(means.T[::-1])
        self.order_ = np.empty(self.n_habitats_, dtype=np.intp)
        self.order_[rank] = np.arange(1, self.n_habitats_ + 1)
        self.habitat_means_ = means[rank]
        self.labels_ = self._predict_standardised(Z)
        return self

    def _sample_name(self) -> str:
        return "supervoxel means" if self.method == "two-stage" else "voxels"

    def _standardise(self, X):
        return (X - self.channel_mean_) / self.channel_scale_

    @staticmethod
    def _seed(rng) -> int:
        return int(rng.randint(np.iinfo(np.int32).max))

    def _subsample(self, Z, size, rng):
        """`Z`, or a seeded random subsample of `size` of its rows (in their order)."""
        if len(Z) <= size:
            return Z
        keep = np.sort(rng.choice(len(Z), size=size, replace=False))
        return Z[keep]

    def _supervoxel_means(self, Z, groups, rng):
        """Stage 1 of Wu et al.: k-means of each ROI's voxels (ROIs in sorted order).

        Returns the supervoxel means of every ROI, stacked, and their weights: each
        supervoxel's share of its ROI's voxels.
        """
        means, weights = [], []
        _, codes = np.unique(groups, return_inverse=True)
        order = np.argsort(codes, kind="stable")
        for rows in np.split(order, np.cumsum(np.bincount(codes))[:-1]):
            voxels = self._subsample(Z[rows], MAX_FIT_VOXELS, rng)
            n = min(self.n_supervoxels, len(np.unique(voxels, axis=0)))
            km = cluster.KMeans(n_clusters=n, n_init=1, random_state=self._seed(rng))
            km.fit(voxels)
            means.append(km.cluster_centers_)
            weights.append(np.bincount(km.labels_, minlength=n) / len(voxels))
        return np.vstack(means), np.concatenate(weights).astype(np.float64)

    def _clusterer(self, k, rng):
        if self.method == "gmm":
            return mixture.GaussianMixture(
                n_components=k,
                covariance_type=self.covariance_type,
                n_init=1,
                random_state=self._seed(rng),
            )
        return cluster.KMeans(n_clusters=k, n_init=_N_INIT, random_state=self._seed(rng))

    def _score(self, estimator, samples, rng) -> float:
        """The criterion of a fitted candidate: its BIC, or its mean silhouette."""
        if self.criterion == "bic":
            return float(estimator.bic(samples))
        labels = estimator.predict(samples)
        if len(np.unique(labels)) < 2:
            return -np.inf
        size = SILHOUETTE_SAMPLES if len(samples) > SILHOUETTE_SAMPLES else None
        return float(
            sklearn_metrics.silhouette_score(
                samples, labels, sample_size=size, random_state=self._seed(rng)
            )
        )

    # -------------------------------------------------------------- predict

    def _predict_standardised(self, Z):
        return self.order_[self.estimator_.predict(Z)]

    def predict(self, X):
        """Habitat (1..K) of each voxel.

        Parameters
        ----------
        X : array-like, shape (n_voxels, n_channels)
            Channel values in the units of fit (standardised here with the training
            statistics).

        Returns
        -------
        ndarray of int, shape (n_voxels,)
            The nearest habitat centre (k-means, two-stage) or the most probable mixture
            component (gmm), numbered 1..K.
        """
        check_is_fitted(self, "estimator_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return self._predict_standardised(self._standardise(X))

    def predict_roi(self, channels, mask, spacing_zyx):
        """The habitat map of one ROI.

        Parameters
        ----------
        channels : array-like, shape (n_channels, z, y, x) or (n_channels, y, x)
            The channels on the mask's grid, in the order and units of fit; only the values
            inside the mask are read (they must be finite).
        mask : array-like of bool or int, shape (z, y, x) or (y, x)
            The ROI (nonzero inside).
        spacing_zyx : sequence of float
            Voxel spacing in mm, one per axis of `mask`.

        Returns
        -------
        ndarray of uint8, shape of `mask`
            0 outside the ROI, 1..K inside; connected components (6-connected, 4 in 2D)
            smaller than ``min_size_mm3`` reassigned by :func:`reassign_small_components`.
        """
        check_is_fitted(self, "estimator_")
        mask = np.asarray(mask) != 0
        channels = np.asarray(channels, dtype=np.float64)
        if mask.ndim not in (2, 3):
            raise ValueError(f"HabitatModel: mask must be 2-D or 3-D, got shape {mask.shape}")
        if channels.shape != (self.n_features_in_, *mask.shape):
            raise ValueError(
                f"HabitatModel: channels must have shape (n_channels={self.n_features_in_}, "
                f"*mask.shape={mask.shape}), got {channels.shape}"
            )
        spacing = _spacing(spacing_zyx, mask.ndim)
        out = np.zeros(mask.shape, dtype=np.uint8)
        if not mask.any():
            return out
        X = channels[:, mask].T
        if not np.isfinite(X).all():
            raise ValueError("HabitatModel: channels have non-finite values inside the mask")
        out[mask] = self.predict(X)
        return reassign_small_components(out, spacing, self.min_size_mm3)


def _spacing(spacing_zyx, ndim: int) -> np.ndarray:
    spacing = np.asarray(spacing_zyx, dtype=np.float64)
    if spacing.shape != (ndim,) or not (np.isfinite(spacing).all() and (spacing > 0).all()):
        raise ValueError(
            f"spacing_zyx must be {ndim} positive numbers (mm, one per axis), got {spacing_zyx!r}"
        )
    return spacing


def reassign_small_components(habitats, spacing_zyx, min_size_mm3):
    """Merge the connected components smaller than a volume into a neighbouring habitat.

    A component (6-connected in 3-D, 4-connected in 2-D) of one habitat whose volume
    (voxels x voxel volume) is below `min_size_mm3` takes the habitat that shares the most
    faces with it among the ROI voxels around it (ties: the lower number). Components are
    taken smallest first (then by habitat number and position), and the pass is repeated
    until no component changes; a component that has merged with one reassigned before it
    in the same pass waits for the next pass. A small component with no habitat neighbour
    (a whole island of the ROI) keeps its label. Each reassignment removes at least one
    component, so this ends.

    Parameters
    ----------
    habitats : ndarray of int, 2-D or 3-D
        0 outside the ROI, habitat numbers inside.
    spacing_zyx : sequence of float
        Voxel spacing in mm, one per axis.
    min_size_mm3 : float
        Components of volume strictly below this are reassigned (mm^3; mm^2 in 2-D).

    Returns
    -------
    ndarray
        A new array of the dtype of `habitats`.

    Examples
    --------
    >>> h = np.array([[1, 1, 1], [1, 2, 1], [1, 1, 2]])
    >>> reassign_small_components(h, (1.0, 1.0), 2.0)
    array([[1, 1, 1],
           [1, 1, 1],
           [1, 1, 1]])
    """
    out = np.array(habitats, copy=True)
    spacing = _spacing(spacing_zyx, out.ndim)
    voxel = float(np.prod(spacing))
    if min_size_mm3 <= 0 or not out.any():
        return out
    structure = ndimage.generate_binary_structure(out.ndim, 1)
    changed = True
    while changed:
        small = []
        for k in np.unique(out[out > 0]):
            components, _ = ndimage.label(out == k, structure=structure)
            sizes = np.bincount(components.ravel())
            for index, box in enumerate(ndimage.find_objects(components), start=1):
                if sizes[index] * voxel < min_size_mm3:
                    start = tuple(s.start for s in box)
                    small.append((int(sizes[index]), int(k), start, index, box, components))
        changed = False
        for _, k, _, index, box, components in sorted(small, key=lambda c: c[:3]):
            counts = _face_neighbours(out, components, index, box)
            if counts[k]:
                continue  # merged with a reassigned neighbour: recomputed in the next pass
            counts[0] = 0  # outside the ROI
            if counts.any():
                region = out[box]
                region[components[box] == index] = np.argmax(counts)
                changed = True
    return out


def _face_neighbours(out, components, index, box):
    """Per label, the faces component `index` shares with voxels outside it."""
    window = tuple(slice(max(s.start - 1, 0), min(s.stop + 1, n)) for s, n in zip(box, out.shape))
    labels = out[window].astype(np.intp)
    inside = components[window] == index
    counts = np.zeros(int(out.max()) + 1, dtype=np.int64)
    for axis in range(out.ndim):
        lo = tuple(slice(None, -1) if a == axis else slice(None) for a in range(out.ndim))
        hi = tuple(slice(1, None) if a == axis else slice(None) for a in range(out.ndim))
        for member, neighbour in ((lo, hi), (hi, lo)):
            pair = inside[member] & ~inside[neighbour]
            counts += np.bincount(labels[neighbour][pair], minlength=len(counts))
    return counts
