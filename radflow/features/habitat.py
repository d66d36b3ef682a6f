r"""Habitat (regional) features: how the sub-regions of a ROI share its volume and touch each other.

The input is a habitat map: an integer label array, 0 outside the ROI and 1..K inside, K the
number of habitats (``radflow habitats apply`` writes one per ROI). With :math:`v` the voxel
volume (product of the spacing, mm^3; mm^2 for a 2D map), :math:`N` the number of ROI voxels,
:math:`N_k` those of habitat :math:`k`, and for each :math:`k = 1..K`:

- ``Volume_k`` :math:`= N_k v` (mm^3) and ``Fraction_k`` :math:`= N_k / N`.
- ``Components_k`` :math:`n_k`: connected components of habitat :math:`k`, face-connected
  (6-connectivity in 3D, 4 in 2D); ``LargestComponentVolume_k`` :math:`= S_{k,max} v` (mm^3),
  :math:`S_{k,max}` the voxels of its largest component.
- ``ITHScore`` :math:`= 1 - \frac{1}{N} \sum_{k: N_k > 0} S_{k,max} / n_k`, the intratumour
  heterogeneity score of Li et al. (2023): 0 when each habitat is in one piece, towards 1 as
  the habitats fragment.

Absent habitats (:math:`N_k = 0`) have 0 volume, fraction, components and largest component,
and are left out of the ITH score's sum.

Multiregional spatial interaction (MSI, Wu et al. 2018), counted inside the ROI's bounding box
padded by one voxel, where 0 marks the voxels outside the ROI:

- ``MSIPairs_i_j`` (:math:`0 \le i \le j \le K`, the pair (0, 0) left out): the number
  :math:`P_{ij}` of unordered pairs of face-adjacent voxels whose labels are :math:`i` and
  :math:`j`. :math:`P_{0k}` counts the faces between habitat :math:`k` and the outside (the
  padding makes this the whole boundary, also where the ROI touches its box).
- ``MSI_i_j`` :math:`= P_{ij} / \sum_{(a, b)} P_{ab}`, over every counted pair (never 0 for a
  non-empty ROI).
- On the symmetric :math:`K \times K` matrix :math:`Q` of the pairs between habitats only,
  :math:`Q_{ij} = Q_{ji} \propto P_{ij}` for :math:`i, j \ge 1`, normalised to
  :math:`\sum_{i,j} Q_{ij} = 1` (a pair between two habitats is counted in :math:`Q_{ij}` and
  in :math:`Q_{ji}`), as a grey-level co-occurrence matrix of habitat numbers:
  ``MSIContrast`` :math:`= \sum (i - j)^2 Q_{ij}`,
  ``MSIHomogeneity`` :math:`= \sum Q_{ij} / (1 + (i - j)^2)`,
  ``MSIEnergy`` :math:`= \sum Q_{ij}^2`, and
  ``MSICorrelation`` :math:`= \sum (i - \mu)(j - \mu) Q_{ij} / \sigma^2`, the Pearson
  correlation of :math:`i` and :math:`j` under :math:`Q`
  (:math:`\mu = \sum i Q_{ij}`, :math:`\sigma^2 = \sum (i - \mu)^2 Q_{ij}`, the same for
  :math:`j` since :math:`Q` is symmetric); 1 when :math:`\sigma = 0` (the pairs all join one
  habitat to itself).

When no two ROI voxels of any habitats touch (a single voxel, or voxels meeting only at edges
or corners), :math:`Q` is empty: the four MSI statistics are NaN (undefined), the pair counts
and ``MSI_i_j`` are still given.

The pair counts are three (two in 2D) array comparisons of the padded box with itself shifted
by one voxel, one ``numpy.bincount`` over the pair codes; components are
``scipy.ndimage.label``. Both are vectorised, so no compiled kernel is needed.

References
----------
Li J, Qiu Z, Zhang C, et al. ITHscore: comprehensive quantification of intra-tumor
heterogeneity in NSCLC by multi-scale radiomic features. Eur Radiol. 2023;33(2):893-903.
doi:10.1007/s00330-022-09055-0

Wu J, Cao G, Sun X, et al. Intratumoral spatial heterogeneity at perfusion MR imaging predicts
recurrence-free survival in locally advanced breast cancer treated with neoadjuvant
chemotherapy. Radiology. 2018;288(1):26-35. doi:10.1148/radiol.2018172462
"""

from __future__ import annotations

from collections.abc import Iterable
from numbers import Integral

import numpy as np

from radflow._geometry import SpacingError, bounding_box, spacing_mm
from radflow._lazy import load
from radflow.errors import InputError, SettingsError
from radflow.params.names import FEATURE_NAME_PATTERNS, feature_name_pattern

ndimage = load("scipy.ndimage")  # when the class runs: the extractor imports this module

__all__ = ["FAMILY", "feature_names", "habitat_features"]

#: The feature class name in parameter files (``featureClass: {habitat: }``) and keys
#: (``original_habitat_<Name>``).
FAMILY = "habitat"

_PATTERNS = FEATURE_NAME_PATTERNS[FAMILY]


def _check_n_habitats(n_habitats) -> int:
    if isinstance(n_habitats, bool) or not isinstance(n_habitats, Integral) or n_habitats < 1:
        raise SettingsError(f"n_habitats must be an integer >= 1, got {n_habitats!r}")
    return int(n_habitats)


def _label_pairs(n_habitats: int) -> list[tuple[int, int]]:
    """The label pairs (i, j) of the MSI features: 0 <= i <= j <= K but (0, 0), in key order."""
    return [(i, j) for i in range(n_habitats + 1) for j in range(max(i, 1), n_habitats + 1)]


def _names_by_pattern(n_habitats: int) -> dict[str, list[str]]:
    """``{pattern: its names for K = n_habitats}``, in the order of the class's keys."""
    habitats = range(1, n_habitats + 1)
    pairs = _label_pairs(n_habitats)
    out: dict[str, list[str]] = {}
    for pattern in _PATTERNS:
        if "<i>" in pattern:
            out[pattern] = [pattern.replace("<i>", str(i)).replace("<j>", str(j)) for i, j in pairs]
        elif "<k>" in pattern:
            out[pattern] = [pattern.replace("<k>", str(k)) for k in habitats]
        else:
            out[pattern] = [pattern]
    return out


def feature_names(n_habitats: int, selection: Iterable[str] | None = None) -> tuple[str, ...]:
    """The keys of :func:`habitat_features` for ``n_habitats`` habitats, in its order.

    Parameters
    ----------
    n_habitats : int
        K >= 1.
    selection : iterable of str, optional
        A parameter file's feature list for the ``habitat`` class: names with their numbers
        (``Volume_2``, ``MSIPairs_0_1``) or stems standing for every number (``Volume``,
        ``MSI``); see :func:`radflow.params.names.feature_name_pattern`. None: every key.

    Returns
    -------
    tuple of str
        ``Volume_k``, ``Fraction_k``, ``Components_k``, ``LargestComponentVolume_k`` for
        k = 1..K, ``ITHScore``, ``MSIPairs_i_j`` and ``MSI_i_j`` for 0 <= i <= j <= K but
        (0, 0), ``MSIContrast``, ``MSIHomogeneity``, ``MSIEnergy``, ``MSICorrelation``; with
        ``selection``, the selected ones in that order.

    Raises
    ------
    SettingsError
        ``n_habitats`` is not an integer >= 1; a selected name is no habitat feature, or names
        a habitat above K.

    Examples
    --------
    >>> feature_names(1)[:5]
    ('Volume_1', 'Fraction_1', 'Components_1', 'LargestComponentVolume_1', 'ITHScore')
    >>> feature_names(2, ["Fraction", "MSIPairs_1_2"])
    ('Fraction_1', 'Fraction_2', 'MSIPairs_1_2')
    """
    by_pattern = _names_by_pattern(_check_n_habitats(n_habitats))
    if selection is None:
        return tuple(name for names in by_pattern.values() for name in names)
    chosen: set[str] = set()
    for name in [selection] if isinstance(selection, str) else selection:
        pattern = feature_name_pattern(FAMILY, name)
        if pattern is None:
            raise SettingsError(
                f"featureClass 'habitat': unknown feature {name!r}; valid: "
                f"{', '.join(_PATTERNS)} (numbers filled in, or the stem for every number)"
            )
        if name in by_pattern[pattern]:
            chosen.add(name)
        elif name == pattern.split("_<", 1)[0]:
            chosen.update(by_pattern[pattern])
        else:
            raise SettingsError(
                f"featureClass 'habitat': feature {name!r} names a habitat above K; this "
                f"habitat map has K = {n_habitats} habitats"
            )
    return tuple(name for names in by_pattern.values() for name in names if name in chosen)


def _check_habitats(habitats, spacing_zyx, n_habitats) -> tuple[np.ndarray, np.ndarray, int]:
    """The habitat map (intp), its spacing (float64, mm) and K, each checked."""
    n_habitats = _check_n_habitats(n_habitats)
    labels = np.asarray(habitats)
    if labels.ndim not in (2, 3):
        raise InputError(
            "habitats", f"must be a 2D (y, x) or 3D (z, y, x) array, got shape {labels.shape}"
        )
    if labels.dtype != bool and not np.issubdtype(labels.dtype, np.integer):
        raise InputError(
            "habitats", f"must be an integer label array (0 outside, 1..K), got {labels.dtype}"
        )
    try:
        spacing = np.asarray(spacing_mm(spacing_zyx, ndim=labels.ndim), dtype=np.float64)
    except SpacingError:
        axes = "(z, y, x)" if labels.ndim == 3 else "(y, x)"
        raise InputError(
            "spacing_zyx",
            f"must be {labels.ndim} positive voxel sizes in mm, {axes} order, for a "
            f"{labels.ndim}D habitat map; got {spacing_zyx!r}",
        ) from None
    if labels.size and (labels.min() < 0 or labels.max() > n_habitats):
        bad = np.unique(labels[(labels < 0) | (labels > n_habitats)])
        raise InputError(
            "habitats",
            f"labels must lie in 0..{n_habitats} (0 outside the ROI, 1..K habitats; "
            f"n_habitats = {n_habitats}); found {', '.join(map(str, bad[:10].tolist()))}",
        )
    return labels.astype(np.intp, copy=False), spacing, n_habitats


def habitat_features(habitats, spacing_zyx, n_habitats: int) -> dict[str, float]:
    """Volumes, fragmentation (ITH score) and spatial interaction (MSI) of a ROI's habitats.

    Definitions and references: :mod:`radflow.features.habitat`.

    Parameters
    ----------
    habitats : (z, y, x) or (y, x) array of int
        Habitat map: 0 outside the ROI, 1..K inside. Cropped or not, the result is the same.
    spacing_zyx : sequence of float
        Voxel size in mm, one per axis of ``habitats``, in its axis order ((z, y, x) or
        (y, x)).
    n_habitats : int
        K >= 1, the number of habitats of the model that made the map (habitats missing from
        this ROI are reported as absent).

    Returns
    -------
    dict of str to float
        ``{name: value}`` with the keys of :func:`feature_names` ``(n_habitats)``, in that
        order. Volumes in mm^3 (mm^2 for a 2D map), counts as floats, the rest unitless.

    Raises
    ------
    InputError
        ``habitats`` is not a 2D/3D integer array, has labels outside 0..K or no ROI voxel;
        ``spacing_zyx`` does not give one positive size per axis.
    SettingsError
        ``n_habitats`` is not an integer >= 1.

    Examples
    --------
    >>> out = habitat_features([[1, 1, 2]], (1.0, 2.0), 2)
    >>> out["Volume_1"], out["Components_2"], out["MSIPairs_0_1"], out["MSIPairs_1_2"]
    (4.0, 1.0, 5.0, 1.0)
    """
    labels, spacing, k_max = _check_habitats(habitats, spacing_zyx, n_habitats)
    box = bounding_box(labels)
    if box is None:
        raise InputError("habitats", "the ROI is empty: no voxel labelled 1..K")
    # The ROI's box padded by one voxel of 0 (outside) on every side.
    padded = np.pad(labels[box], 1)
    voxel_volume = float(np.prod(spacing))

    counts = np.bincount(padded.ravel(), minlength=k_max + 1)
    n_roi = int(counts[1:].sum())
    structure = ndimage.generate_binary_structure(padded.ndim, 1)  # face connectivity
    n_components = np.zeros(k_max + 1, dtype=np.int64)
    largest = np.zeros(k_max + 1, dtype=np.int64)
    for k in np.flatnonzero(counts[1:]) + 1:
        components, n = ndimage.label(padded == k, structure=structure)
        n_components[k] = n
        largest[k] = np.bincount(components.ravel())[1:].max()
    present = n_components > 0
    ith_score = 1.0 - float(np.sum(largest[present] / n_components[present])) / n_roi

    pairs = _pair_counts(padded, k_max)
    pair_total = pairs.sum() - pairs[0, 0]

    out: dict[str, float] = {}
    ks = range(1, k_max + 1)
    out.update({f"Volume_{k}": float(counts[k] * voxel_volume) for k in ks})
    out.update({f"Fraction_{k}": float(counts[k] / n_roi) for k in ks})
    out.update({f"Components_{k}": float(n_components[k]) for k in ks})
    out.update({f"LargestComponentVolume_{k}": float(largest[k] * voxel_volume) for k in ks})
    out["ITHScore"] = ith_score
    ij = _label_pairs(k_max)
    out.update({f"MSIPairs_{i}_{j}": float(pairs[i, j]) for i, j in ij})
    out.update({f"MSI_{i}_{j}": float(pairs[i, j] / pair_total) for i, j in ij})
    out.update(_msi_statistics(pairs[1:, 1:]))
    return out


def _pair_counts(padded: np.ndarray, k_max: int) -> np.ndarray:
    """Upper-triangular ``(K + 1, K + 1)`` counts of face-adjacent voxel pairs by label pair.

    Entry ``[i, j]``, ``i <= j``, is the number of unordered pairs of neighbours along one axis
    whose labels are ``i`` and ``j``; the lower triangle is 0.
    """
    n_labels = k_max + 1
    codes = []
    for axis in range(padded.ndim):
        first = padded[(slice(None),) * axis + (slice(None, -1),)]
        second = padded[(slice(None),) * axis + (slice(1, None),)]
        low, high = np.minimum(first, second), np.maximum(first, second)
        codes.append((low * n_labels + high).ravel())
    counts = np.bincount(np.concatenate(codes), minlength=n_labels * n_labels)
    return counts.reshape(n_labels, n_labels)


def _msi_statistics(habitat_pairs: np.ndarray) -> dict[str, float]:
    """Contrast, homogeneity, energy and correlation of the habitat-habitat pair matrix.

    ``habitat_pairs`` is the upper-triangular K x K block of habitats 1..K; it is made
    symmetric and normalised to sum 1. NaN for all four when it is all zero.
    """
    q = (habitat_pairs + habitat_pairs.T - np.diag(np.diag(habitat_pairs))).astype(np.float64)
    total = q.sum()
    if total == 0:
        return dict.fromkeys(
            ("MSIContrast", "MSIHomogeneity", "MSIEnergy", "MSICorrelation"), np.nan
        )
    q /= total
    numbers = np.arange(1, q.shape[0] + 1, dtype=np.float64)
    i, j = numbers[:, None], numbers[None, :]
    mean = float(np.sum(i * q))  # equals the mean of j: q is symmetric
    variance = float(np.sum((i - mean) ** 2 * q))
    if variance > 0:
        correlation = float(np.sum((i - mean) * (j - mean) * q)) / variance
    else:
        correlation = 1.0
    return {
        "MSIContrast": float(np.sum((i - j) ** 2 * q)),
        "MSIHomogeneity": float(np.sum(q / (1.0 + (i - j) ** 2))),
        "MSIEnergy": float(np.sum(q**2)),
        "MSICorrelation": correlation,
    }
