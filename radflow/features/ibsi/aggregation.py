"""What the IBSI texture families share: input checks, slices, and feature aggregation.

Every texture family builds a *stack* of matrices and computes its features
from one matrix at a time; the IBSI aggregation methods differ only in which
matrices are merged (summed element by element) before the features are
computed, and over which the feature values are then averaged (IBSI 1
reference manual, "Aggregating features" of each family):

=============  ====================  ======================  ==================  ====
suffix         stack                 merged over             averaged over       IBSI
=============  ====================  ======================  ==================  ====
``2D_avg``     (slices, directions)  nothing                 slices, directions  BTW3
``2D_comb``    (slices, directions)  directions              slices              SUJT
``2_5D_avg``   (slices, directions)  slices                  directions          JJUI
``2_5D_comb``  (slices, directions)  slices and directions   nothing             ZW7Z
``3D_avg``     (1, directions)       nothing                 directions          ITBB
``3D_comb``    (1, directions)       directions              nothing             IAZD
``2D``         (slices,)             nothing                 slices              8QNN
``2_5D``       (slices,)             slices                  nothing             62GR
``3D``         (1,)                  nothing                 nothing             KOBO
=============  ====================  ======================  ==================  ====

Slices are the planes of constant z (axis 0 of a (z, y, x) array) that hold
ROI voxels. A matrix without any count (a slice in which no voxel has a
neighbour along some direction) carries no texture and is left out of the
average; so is a feature value that is undefined (NaN) for one matrix but
not for others. The average is NaN only when no matrix defines the value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from numbers import Integral
from typing import NamedTuple

import numpy as np

from radflow._docstrings import filler
from radflow._geometry import bounding_box  # re-exported: the families crop with it
from radflow.errors import InputError, SettingsError
from radflow.features.ibsi.registry import DIRECTIONAL_AGGREGATIONS, ZONE_AGGREGATIONS

__all__ = [
    "DIMENSION",
    "MERGED_AXES",
    "aggregate",
    "bounding_box",
    "check_aggregations",
    "check_distance",
    "check_mask",
    "document",
    "level_index",
    "planes",
    "slice_blocks",
    "tagged_features",
    "texture_input",
    "TextureInput",
]

#: Stack each aggregation is computed from: per slice ("2D") or the volume ("3D").
DIMENSION = {
    "2D_avg": "2D",
    "2D_comb": "2D",
    "2_5D_avg": "2D",
    "2_5D_comb": "2D",
    "3D_avg": "3D",
    "3D_comb": "3D",
    "2D": "2D",
    "2_5D": "2D",
    "3D": "3D",
}
#: Leading stack axes summed before the features are computed (0 slices, 1 directions).
MERGED_AXES = {
    "2D_avg": (),
    "2D_comb": (1,),
    "2_5D_avg": (0,),
    "2_5D_comb": (0, 1),
    "3D_avg": (),
    "3D_comb": (0, 1),
    "2D": (),
    "2_5D": (0,),
    "3D": (0,),
}

#: Parameter and error descriptions the families' ``compute`` share (:data:`document`).
_DOCS = {
    "image": """levels : ndarray of int, shape (z, y, x)
        Discretised image, grey levels 1..``n_levels`` inside the ROI.
    intensity_mask : ndarray of bool, shape (z, y, x)
        ROI intensity mask.""",
    "index": """index : ndarray of int32, shape (z, y, x)
        From :func:`radflow.features.ibsi.aggregation.level_index`, padded by
        the neighbour distance (1 without): grey level - 1 inside the ROI, -1
        elsewhere.
    n_levels : int
        :math:`N_g`.""",
    "neighbourhood": """dimension : {"2D", "3D"}
        Neighbourhoods within each slice, or in the volume.
    distance : int
        :math:`\\delta`, Chebyshev radius of the neighbourhood in voxels.""",
    "n_levels": """n_levels : int
        Number of grey levels of the discretisation, :math:`N_g`.""",
    "directional": """aggregations : sequence of str
        Suffixes of ``registry.DIRECTIONAL_AGGREGATIONS`` (``"2D_avg"``,
        ``"2D_comb"``, ``"2_5D_avg"``, ``"2_5D_comb"``, ``"3D_avg"``,
        ``"3D_comb"``); slices are planes of constant z.""",
    "zone": """aggregations : sequence of str
        Suffixes of ``registry.ZONE_AGGREGATIONS``: ``"2D"`` (per slice,
        averaged), ``"2_5D"`` (slices merged), ``"3D"``.""",
    "distance": """distance : int
        Chebyshev distance :math:`\\delta` in voxels, default 1 (GLCM: of the
        paired voxels; NGTDM, NGLDM: radius of the neighbourhood).""",
    "raises": """Raises
    ------
    InputError
        Bad arrays (shape, dtype, empty ROI, level outside 1..n_levels).
    SettingsError
        Bad ``n_levels``, aggregation or other setting (``distance``, ...).""",
}

#: Fills the shared ``%(image)s``, ``%(zone)s`` ... descriptions of a ``compute`` docstring.
document = filler(_DOCS)


def check_aggregations(aggregations, directional: bool) -> tuple[str, ...]:
    """The requested aggregation suffixes, checked, without repeats, in IBSI order.

    Parameters
    ----------
    aggregations : str or sequence of str
        Suffixes from ``DIRECTIONAL_AGGREGATIONS`` (GLCM, GLRLM) or
        ``ZONE_AGGREGATIONS`` (the other families) of
        :mod:`radflow.features.ibsi.registry`.
    directional : bool
        True for a family with per-direction matrices (GLCM, GLRLM).

    Raises
    ------
    SettingsError
        An empty request or a suffix the family does not define.
    """
    valid = DIRECTIONAL_AGGREGATIONS if directional else ZONE_AGGREGATIONS
    requested = [aggregations] if isinstance(aggregations, str) else list(aggregations)
    unknown = [a for a in requested if a not in valid]
    if unknown or not requested:
        raise SettingsError(
            f"aggregations: {', '.join(map(repr, unknown)) or 'none given'}; "
            f"this family defines {', '.join(valid)}"
        )
    return tuple(a for a in valid if a in requested)


def check_distance(distance) -> int:
    """Neighbourhood distance (Chebyshev, voxels) as an int >= 1, else SettingsError."""
    if not isinstance(distance, Integral) or isinstance(distance, bool) or distance < 1:
        raise SettingsError(
            f"distance: expected an integer >= 1 (Chebyshev distance in voxels), got {distance!r}"
        )
    return int(distance)


def level_index(levels, intensity_mask, n_levels, *, pad: int):
    """Check a discretised image and its ROI; the ROI's grey levels as matrix rows.

    Parameters
    ----------
    levels : ndarray of int, shape (z, y, x)
        Discretised image, grey levels 1..``n_levels`` inside the ROI
        (values outside are ignored).
    intensity_mask : ndarray of bool, shape (z, y, x)
        The ROI intensity mask (0/1 integers are accepted).
    n_levels : int
        Number of grey levels of the discretisation, :math:`N_g`. The IBSI
        keeps levels absent from the ROI in the matrices (as empty rows), so
        :math:`N_g` comes from the discretisation, not from the ROI.
    pad : int
        Margin of -1 voxels added around the ROI's bounding box, so that
        kernels stepping up to ``pad`` voxels away need no bounds checks.

    Returns
    -------
    index : ndarray of int32, shape (bounding box + 2 * pad), C order
        Grey level minus 1 (the matrix row) inside the ROI, -1 elsewhere.
    box : tuple of slice
        The ROI's bounding box in the input arrays.

    Raises
    ------
    InputError
        Wrong dimensions, shapes or dtypes, an empty ROI, or a grey level
        outside 1..``n_levels`` inside the ROI.
    SettingsError
        ``n_levels`` not a positive integer.
    """
    if not isinstance(n_levels, Integral) or isinstance(n_levels, bool) or n_levels < 1:
        raise SettingsError(
            f"n_levels: expected the number of grey levels (int >= 1), got {n_levels!r}"
        )
    levels = np.asarray(levels)
    if levels.ndim != 3:
        raise InputError("levels", f"expected a 3D (z, y, x) array, got shape {levels.shape}")
    if not np.issubdtype(levels.dtype, np.integer):
        raise InputError(
            "levels",
            f"expected integer grey levels (a discretised image), got dtype {levels.dtype}",
        )
    mask = check_mask(intensity_mask, "intensity_mask", levels.shape)
    box = bounding_box(mask)
    if box is None:
        raise InputError("intensity_mask", "the ROI is empty (no voxel set)")
    inside = mask[box]
    values = levels[box][inside]
    lo, hi = values.min(), values.max()
    if lo < 1 or hi > n_levels:
        raise InputError(
            "levels",
            f"grey levels inside the ROI must lie in 1..n_levels={n_levels}, found {lo}..{hi}",
        )
    index = np.full(tuple(n + 2 * pad for n in inside.shape), -1, dtype=np.int32)
    index[tuple(slice(pad, pad + n) for n in inside.shape)][inside] = values - 1
    return index, box


def aggregate(
    stack: Sequence[np.ndarray],
    features: Callable[..., np.ndarray],
    aggregation: str,
    n_features: int,
):
    """Feature values of one aggregation method.

    Parameters
    ----------
    stack : sequence of ndarray
        The matrices, as one or more arrays sharing their leading axes:
        (slices, directions) for GLCM and GLRLM, (slices,) for the other
        families (see the module table); merging sums every array (e.g. an
        NGTDM is the pair (:math:`n_i`, :math:`s_i`)).
    features : callable
        ``features(*matrices)`` -> float array of the family's ``n_features``
        values for one (merged) matrix; called only for matrices whose first
        array holds a count.
    aggregation : str
        A suffix of :data:`MERGED_AXES`.
    n_features : int
        Number of values ``features`` returns.

    Returns
    -------
    ndarray of float64, shape (n_features,)
        Mean over the remaining matrices of each feature, NaN values left
        out; NaN where no matrix defines the feature.
    """
    n_lead = 2 if aggregation in DIRECTIONAL_AGGREGATIONS else 1
    merged_axes = MERGED_AXES[aggregation]
    n_kept = n_lead - len(merged_axes)
    matrices = [m.sum(axis=merged_axes) if merged_axes else m for m in stack]
    matrices = [m.reshape((-1,) + m.shape[n_kept:]) if n_kept else m[None] for m in matrices]
    values = [features(*parts) for parts in zip(*matrices) if parts[0].any()]
    if not values:
        return np.full(n_features, np.nan)
    values = np.array(values, dtype=np.float64)
    defined = ~np.isnan(values)
    counts = defined.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, np.where(defined, values, 0.0).sum(axis=0) / counts, np.nan)


class TextureInput(NamedTuple):
    """A texture family's checked input (:func:`texture_input`)."""

    #: The checked aggregation suffixes, in IBSI order.
    aggregations: tuple[str, ...]
    #: :func:`level_index` of the ROI.
    index: np.ndarray
    #: The ROI's bounding box in the input arrays.
    box: tuple[slice, ...]
    #: The checked neighbour distance (voxels), None for a family without one.
    distance: int | None


_NO_DISTANCE = object()


def texture_input(
    levels,
    intensity_mask,
    n_levels,
    aggregations,
    *,
    directional: bool,
    distance=_NO_DISTANCE,
    pad: int = 1,
) -> TextureInput:
    """The checks every texture family's ``compute`` starts with, and the level index.

    Parameters
    ----------
    levels, intensity_mask, n_levels
        As for :func:`level_index`.
    aggregations, directional
        As for :func:`check_aggregations`.
    distance : int, optional
        The family's neighbour distance, checked by :func:`check_distance`;
        the index is then padded by it. Leave out for a family without one.
    pad : int
        Padding of the index for a family without ``distance``.
    """
    aggregations = check_aggregations(aggregations, directional)
    if distance is _NO_DISTANCE:
        distance = None
    else:
        distance = pad = check_distance(distance)
    index, box = level_index(levels, intensity_mask, n_levels, pad=pad)
    return TextureInput(aggregations, index, box, distance)


def tagged_features(
    features: Sequence,
    aggregations: Sequence[str],
    build: Callable[[str], tuple[Sequence[np.ndarray], Callable[..., np.ndarray]]],
) -> dict[str, float]:
    """``{stem_aggregation: value}`` for the family's ``features`` and every requested aggregation.

    ``features`` are the family's registry entries (their ``tag_stem``, in
    the order its feature function returns the values). ``build(dimension)``
    returns the stack of ``"2D"`` (per slice) or ``"3D"`` (volume) matrices,
    leading axes as in the module table, and the function computing the
    features of one of its (merged) matrices (see :func:`aggregate`); each
    stack is built once, only when a requested aggregation needs it.
    """
    stems = [f.tag_stem for f in features]
    built: dict[str, tuple] = {}
    out: dict[str, float] = {}
    for aggregation in aggregations:
        dimension = DIMENSION[aggregation]
        if dimension not in built:
            built[dimension] = build(dimension)
        stack, family_features = built[dimension]
        values = aggregate(stack, family_features, aggregation, len(stems))
        out.update((f"{stem}_{aggregation}", float(v)) for stem, v in zip(stems, values))
    return out


def planes(index: np.ndarray, dimension: str) -> list:
    """Keys selecting the volume (``"3D"``: ``[...]``) or each z plane holding ROI voxels
    (``"2D"``).

    ``index[key]`` (or any array on the same grid) is then one block: the
    volume, or a (y, x) slice. Steps from
    :func:`radflow.features._directions.flat_steps` on the volume's shape are
    valid in a raveled slice for in-plane offsets.
    """
    if dimension == "3D":
        return [Ellipsis]
    return [int(z) for z in np.flatnonzero((index >= 0).any(axis=(1, 2)))]


def slice_blocks(index: np.ndarray, dimension: str) -> list[np.ndarray]:
    """``[index[key] for key in planes(index, dimension)]``: views of the blocks."""
    return [index[key] for key in planes(index, dimension)]


def check_mask(mask, name: str, shape) -> np.ndarray:
    """``mask`` as a bool array of ``shape``; InputError naming ``name`` otherwise."""
    mask = np.asarray(mask)
    if mask.shape != tuple(shape):
        raise InputError(name, f"shape {mask.shape} differs from the image shape {tuple(shape)}")
    if mask.dtype == np.bool_:
        return mask
    if not np.issubdtype(mask.dtype, np.integer) or (
        mask.size and (mask.min() < 0 or mask.max() > 1)
    ):
        raise InputError(name, f"expected a boolean (or 0/1 integer) mask, got dtype {mask.dtype}")
    return mask.astype(bool)
