"""Voxel-grid geometry shared by every layer: boxes, spacings, same-grid checks.

The one implementation of each; callers keep their own error types and
messages (a feature family raises ``SettingsError``, a reader ``InputError``
naming its file) and call these for the logic.

Conventions: arrays in (z, y, x) order (``SimpleITK.GetArrayFromImage``); a
*box* is a tuple of one ``slice`` per axis with explicit ``start`` and
``stop`` (stop excluded, step 1), as :func:`scipy.ndimage.find_objects` gives;
spacings and coordinates in mm. Only NumPy here, and SimpleITK where the grids
of two images are compared.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Real

import numpy as np
import SimpleITK as sitk

__all__ = [
    "GridDifference",
    "SpacingError",
    "bounding_box",
    "grid_difference",
    "grow_box",
    "spacing_mm",
    "union_box",
]

Box = tuple[slice, ...]


# -- boxes --------------------------------------------------------------------


def bounding_box(mask) -> Box | None:
    """The smallest box holding every nonzero voxel of ``mask``, or None when there is none.

    Parameters
    ----------
    mask : array_like, any number of dimensions
        Nonzero (True) marks the region.

    Returns
    -------
    tuple of slice or None
        One ``slice(first, last + 1)`` per axis, in the axis order of `mask`
        ((z, y, x) for a volume); None when `mask` has no nonzero voxel.

    Examples
    --------
    >>> mask = np.zeros((3, 4, 5), dtype=bool)
    >>> mask[1, 1:3, 2] = True
    >>> bounding_box(mask)
    (slice(1, 2, None), slice(1, 3, None), slice(2, 3, None))
    >>> bounding_box(np.zeros((2, 2))) is None
    True
    """
    mask = np.asarray(mask)  # ``any`` takes nonzero as True: no bool copy needed
    # Axis by axis, each reduction on what the previous axes left over.
    box = [slice(None)] * mask.ndim
    for axis in range(mask.ndim):
        others = tuple(a for a in range(mask.ndim) if a != axis)
        hits = np.flatnonzero(mask[tuple(box)].any(axis=others))
        if hits.size == 0:
            return None
        box[axis] = slice(int(hits[0]), int(hits[-1]) + 1)
    return tuple(box)


def grow_box(box: Sequence[slice], margin, shape) -> Box:
    """``box`` grown by ``margin`` voxels on each side, clipped to an array of ``shape``.

    Parameters
    ----------
    box : sequence of slice
        Explicit start and stop per axis.
    margin : int or sequence of int
        Voxels added before the start and after the stop, per axis (one
        number: every axis), >= 0.
    shape : sequence of int
        Shape of the array the box indexes.

    Returns
    -------
    tuple of slice

    Examples
    --------
    >>> grow_box((slice(2, 5), slice(0, 3)), (1, 2), (10, 4))
    (slice(1, 6, None), slice(0, 4, None))
    """
    margins = [margin] * len(box) if np.ndim(margin) == 0 else list(margin)
    return tuple(
        slice(max(int(b.start) - int(m), 0), min(int(b.stop) + int(m), int(n)))
        for b, m, n in zip(box, margins, shape, strict=True)
    )


def union_box(boxes: Iterable[Sequence[slice]]) -> Box | None:
    """The smallest box holding every box of ``boxes``; None when there is none.

    Examples
    --------
    >>> union_box([(slice(1, 3), slice(4, 5)), (slice(2, 6), slice(0, 2))])
    (slice(1, 6, None), slice(0, 5, None))
    """
    boxes = [tuple(b) for b in boxes]
    if not boxes:
        return None
    return tuple(
        slice(min(b[axis].start for b in boxes), max(b[axis].stop for b in boxes))
        for axis in range(len(boxes[0]))
    )


# -- spacing ------------------------------------------------------------------


class SpacingError(ValueError):
    """A voxel spacing that :func:`spacing_mm` refuses.

    Attributes
    ----------
    reason : {"length", "value"}
        ``"length"``: not a sequence of the expected number of values;
        ``"value"``: a value is not a finite number > 0 (>= 0 where zero is
        allowed, or None where None is allowed).
    value : object
        The offending entry (``"value"``), or the spacing itself (``"length"``).
    """

    def __init__(self, reason: str, value, message: str):
        super().__init__(message)
        self.reason = reason
        self.value = value


def spacing_mm(
    spacing, *, ndim: int = 3, allow_zero: bool = False, allow_none: bool = False
) -> tuple[float | None, ...]:
    """Voxel spacing in mm as floats, checked: ``ndim`` finite numbers > 0.

    Parameters
    ----------
    spacing : sequence of float
        Voxel sizes in mm, one per axis, in the caller's axis order ((z, y, x)
        for arrays, (x, y, z) for SimpleITK).
    ndim : int, optional
        Number of values expected.
    allow_zero : bool, optional
        Accept 0 (a settings convention for "keep the image's spacing").
    allow_none : bool, optional
        Accept None for an axis (kept as None).

    Returns
    -------
    tuple of float (or None)

    Raises
    ------
    SpacingError
        A string, a non-sequence or a wrong number of values
        (``reason="length"``); a value that is not a real number (booleans
        included), not finite, or not > 0 (``reason="value"``). Callers turn it
        into their own error and message.

    Examples
    --------
    >>> spacing_mm((2, 0.5, 0.5))
    (2.0, 0.5, 0.5)
    >>> spacing_mm([1.0, 0.0, 1.0])
    Traceback (most recent call last):
    ...
    radflow._geometry.SpacingError: spacing 0.0 is not a finite number > 0 mm
    """
    if isinstance(spacing, str | bytes | Mapping):
        raise SpacingError("length", spacing, f"expected {ndim} spacings in mm, got {spacing!r}")
    try:
        values = tuple(spacing)
    except TypeError:
        raise SpacingError(
            "length", spacing, f"expected {ndim} spacings in mm, got {spacing!r}"
        ) from None
    if len(values) != ndim:
        raise SpacingError("length", spacing, f"expected {ndim} spacings in mm, got {spacing!r}")
    out = []
    for value in values:
        if value is None and allow_none:
            out.append(None)
            continue
        if (
            isinstance(value, bool | np.bool_)
            or not isinstance(value, Real)
            or not math.isfinite(value)
            or value < 0
            or (value == 0 and not allow_zero)
        ):
            bound = ">= 0" if allow_zero else "> 0"
            raise SpacingError(
                "value", value, f"spacing {value!r} is not a finite number {bound} mm"
            )
        out.append(float(value))
    return tuple(out)


# -- same grid ------------------------------------------------------------------


@dataclass(frozen=True)
class GridDifference:
    """How the grids of two images differ (see :func:`grid_difference`).

    Attributes
    ----------
    what : {"dimension", "size", "spacing", "origin", "direction"}
        The first property found to differ.
    first, second : tuple
        That property of each image (SimpleITK (x, y, z) order).
    difference : float
        Largest difference of the compared values (relative where asked for);
        NaN for dimension and size.
    tolerance : float
        The tolerance it exceeds; NaN for dimension and size.
    """

    what: str
    first: tuple
    second: tuple
    difference: float = math.nan
    tolerance: float = math.nan


def grid_difference(
    first: sitk.Image,
    second: sitk.Image,
    tolerances: Mapping[str, float],
    *,
    relative: bool = False,
) -> GridDifference | None:
    """The first way the voxel grids of two SimpleITK images differ, or None when they match.

    Dimension, then size (exactly), then each of ``"spacing"``, ``"origin"``
    and ``"direction"`` named in `tolerances`, in the order given there.

    Parameters
    ----------
    first, second : SimpleITK.Image
    tolerances : mapping of str to float
        Largest allowed absolute difference per property (spacing and origin
        in mm, direction cosines unitless). A property left out is not
        compared.
    relative : bool, optional
        Compare ``|a - b| / max(1, |a|)`` instead of ``|a - b|``, per value,
        ``a`` being `first`'s.

    Returns
    -------
    GridDifference or None

    Examples
    --------
    >>> a = sitk.Image(4, 4, 4, sitk.sitkUInt8)
    >>> b = sitk.Image(4, 4, 4, sitk.sitkUInt8)
    >>> b.SetOrigin((0.0, 0.0, 0.5))
    >>> grid_difference(a, b, {"spacing": 1e-6, "origin": 1e-6}).what
    'origin'
    >>> grid_difference(a, b, {"spacing": 1e-6}) is None
    True
    """
    if first.GetDimension() != second.GetDimension():
        return GridDifference("dimension", (first.GetDimension(),), (second.GetDimension(),))
    if first.GetSize() != second.GetSize():
        return GridDifference("size", first.GetSize(), second.GetSize())
    for what, tolerance in tolerances.items():
        getter = _GRID_PROPERTIES[what]
        a, b = getter(first), getter(second)
        gap = np.abs(np.subtract(a, b))
        if relative:
            gap = gap / np.maximum(1.0, np.abs(a))
        difference = float(np.max(gap)) if gap.size else 0.0
        if difference > tolerance:
            return GridDifference(what, a, b, difference, tolerance)
    return None


_GRID_PROPERTIES = {
    "spacing": sitk.Image.GetSpacing,
    "origin": sitk.Image.GetOrigin,
    "direction": sitk.Image.GetDirection,
}
