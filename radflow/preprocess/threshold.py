"""Threshold segmentation for archives that come without masks.

Three thresholds, one post-processing step:

- :func:`segment_hu`: a CT window ``low_hu <= HU <= high_hu``;
- :func:`segment_suv`: an absolute PET threshold ``SUV >= threshold_suv``
  (2.5 SUV by convention);
- :func:`segment_suv_relative`: ``SUV >= fraction * SUVmax``, with SUVmax
  taken *inside the search region* (40 % of SUVmax by convention, Erdi et al.,
  Cancer 1997), so that a hotter organ elsewhere (bladder, brain) does not set
  the threshold.

The search is restricted to a seed `region` (a rough mask) and/or a bounding
box `box_zyx`. In what passes the threshold, holes are filled (3D or per axial
slice), 3D connected components smaller than `min_size_mm3` are dropped, and
the largest component, the one holding `seed_zyx`, or all of them are kept.
The result never leaves the search region.

Arrays are in (z, y, x) order, as ``SimpleITK.GetArrayFromImage`` returns
them; voxel indices and spacings are (z, y, x) too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy import ndimage as ndi

from radflow._docstrings import filler
from radflow._geometry import SpacingError, spacing_mm
from radflow.errors import InputError, SettingsError

__all__ = ["segment_hu", "segment_suv", "segment_suv_relative"]

_COMMON_PARAMETERS = """\
    region : ndarray of bool, shape (z, y, x), optional
        Seed region: only voxels where it is True (non-zero) can be segmented.
    box_zyx : tuple of 3 slice, optional
        Bounding box in voxel indices, (z, y, x), e.g.
        ``np.s_[10:40, 100:180, 90:170]``; intersected with `region` when
        both are given.
    keep : {"largest", "seed", "all"}, optional
        Connected components to keep: the largest (on a tie, the first in
        (z, y, x) scan order), the one containing `seed_zyx`, or all. Default
        ``"seed"`` when `seed_zyx` is given, else ``"largest"``.
    seed_zyx : tuple of 3 int, optional
        Voxel index (z, y, x) inside the lesion; only with ``keep="seed"``.
    connectivity : {26, 6}, optional
        3D neighbourhood of the components: 26 (faces, edges, corners) or 6
        (faces). Holes are found with the complementary one (6 or 26).
    fill_holes : {"3d", "slice", None}, optional
        Fill background enclosed by the mask in 3D, within each axial (z)
        slice, or not at all. Filling happens before components are counted,
        so a hot spot inside a necrotic core joins its lesion.
    min_size_mm3 : float, optional
        Components smaller than this volume (mm³) are dropped before `keep`
        applies. Needs `spacing_zyx`.
    spacing_zyx : tuple of 3 float, optional
        Voxel spacing (z, y, x) in mm.
    allow_empty : bool, optional
        Return an all-zero mask instead of raising :class:`InputError` when
        nothing is segmented.
    source : str, optional
        Name of the image (file or store key) that errors about the data name.

    Returns
    -------
    mask : ndarray of uint8, shape (z, y, x)
        1 inside the segmentation, 0 elsewhere.

    Raises
    ------
    InputError
        The search region holds NaN or infinite values, or nothing is
        segmented (unless `allow_empty`).
    radflow.errors.SettingsError
        A parameter has an invalid value; the message names it (a ValueError,
        so that ``except ValueError`` still catches it).
    TypeError
        A parameter has the wrong type."""


_document = filler({"common": _COMMON_PARAMETERS.lstrip()})


@_document
def segment_hu(
    image_hu,
    *,
    low_hu: float,
    high_hu: float,
    region=None,
    box_zyx=None,
    keep: str | None = None,
    seed_zyx=None,
    connectivity: int = 26,
    fill_holes: str | None = "3d",
    min_size_mm3: float = 0.0,
    spacing_zyx=None,
    allow_empty: bool = False,
    source: str = "image",
) -> np.ndarray:
    """Segment a CT volume by a HU window, ``low_hu <= HU <= high_hu``.

    Parameters
    ----------
    image_hu : ndarray, shape (z, y, x)
        CT volume in HU.
    low_hu, high_hu : float
        Window bounds in HU, both included; ``low_hu < high_hu``.
    %(common)s

    Examples
    --------
    >>> ct = np.full((3, 5, 5), -1000, dtype=np.int16)
    >>> ct[1, 1:4, 1:4] = 40
    >>> int(segment_hu(ct, low_hu=-100, high_hu=200).sum())
    9
    """
    image = _check_image(image_hu, "image_hu")
    low_hu = _check_finite(low_hu, "low_hu")
    high_hu = _check_finite(high_hu, "high_hu")
    if not low_hu < high_hu:
        raise SettingsError(f"low_hu ({low_hu:g}) must be below high_hu ({high_hu:g})")

    def select(values, inside):
        return (values >= low_hu) & (values <= high_hu), f"in [{low_hu:g}, {high_hu:g}] HU"

    return _segment(
        image,
        select,
        region=region,
        box_zyx=box_zyx,
        keep=keep,
        seed_zyx=seed_zyx,
        connectivity=connectivity,
        fill_holes=fill_holes,
        min_size_mm3=min_size_mm3,
        spacing_zyx=spacing_zyx,
        allow_empty=allow_empty,
        source=source,
    )


@_document
def segment_suv(
    image_suv,
    *,
    threshold_suv: float = 2.5,
    region=None,
    box_zyx=None,
    keep: str | None = None,
    seed_zyx=None,
    connectivity: int = 26,
    fill_holes: str | None = "3d",
    min_size_mm3: float = 0.0,
    spacing_zyx=None,
    allow_empty: bool = False,
    source: str = "image",
) -> np.ndarray:
    """Segment a PET volume by an absolute threshold, ``SUV >= threshold_suv``.

    Parameters
    ----------
    image_suv : ndarray, shape (z, y, x)
        PET volume in SUV.
    threshold_suv : float, optional
        Threshold in SUV (> 0), included.
    %(common)s

    Examples
    --------
    >>> pet = np.zeros((3, 5, 5), dtype=np.float32)
    >>> pet[1, 1:3, 1:3] = 4.0
    >>> int(segment_suv(pet, threshold_suv=2.5).sum())
    4
    """
    image = _check_image(image_suv, "image_suv")
    threshold_suv = _check_finite(threshold_suv, "threshold_suv")
    if threshold_suv <= 0:
        raise SettingsError(f"threshold_suv must be > 0 SUV, got {threshold_suv:g}")

    def select(values, inside):
        return values >= threshold_suv, f"at or above {threshold_suv:g} SUV"

    return _segment(
        image,
        select,
        region=region,
        box_zyx=box_zyx,
        keep=keep,
        seed_zyx=seed_zyx,
        connectivity=connectivity,
        fill_holes=fill_holes,
        min_size_mm3=min_size_mm3,
        spacing_zyx=spacing_zyx,
        allow_empty=allow_empty,
        source=source,
    )


@_document
def segment_suv_relative(
    image_suv,
    *,
    fraction: float = 0.4,
    region=None,
    box_zyx=None,
    keep: str | None = None,
    seed_zyx=None,
    connectivity: int = 26,
    fill_holes: str | None = "3d",
    min_size_mm3: float = 0.0,
    spacing_zyx=None,
    allow_empty: bool = False,
    source: str = "image",
) -> np.ndarray:
    """Segment a PET volume at a fraction of SUVmax, ``SUV >= fraction * SUVmax``.

    SUVmax is the maximum inside the search region (`region` and `box_zyx`),
    not over the whole volume: give a region around the lesion, or the
    threshold follows the hottest organ.

    Parameters
    ----------
    image_suv : ndarray, shape (z, y, x)
        PET volume in SUV.
    fraction : float, optional
        Fraction of SUVmax, in (0, 1].
    %(common)s

    Examples
    --------
    >>> pet = np.zeros((3, 5, 5), dtype=np.float32)
    >>> pet[1, 1:4, 1:4] = 3.0
    >>> pet[1, 2, 2] = 10.0
    >>> int(segment_suv_relative(pet, fraction=0.25).sum())
    9
    """
    image = _check_image(image_suv, "image_suv")
    fraction = _check_finite(fraction, "fraction")
    if not 0 < fraction <= 1:
        raise SettingsError(
            f"fraction must be in (0, 1] (0.4 for 40 % of SUVmax), got {fraction:g}"
        )

    def select(values, inside):
        suv_max = float(values[inside].max() if inside is not None else values.max())
        if suv_max <= 0:
            raise InputError(
                source,
                f"SUVmax in the region is {suv_max:g}; a relative threshold needs SUVmax > 0",
            )
        threshold = fraction * suv_max
        return values >= threshold, f"at or above {fraction:g} x SUVmax ({threshold:.4g} SUV)"

    return _segment(
        image,
        select,
        region=region,
        box_zyx=box_zyx,
        keep=keep,
        seed_zyx=seed_zyx,
        connectivity=connectivity,
        fill_holes=fill_holes,
        min_size_mm3=min_size_mm3,
        spacing_zyx=spacing_zyx,
        allow_empty=allow_empty,
        source=source,
    )


def _segment(
    image: np.ndarray,
    select: Callable[[np.ndarray, np.ndarray | None], tuple[np.ndarray, str]],
    *,
    region,
    box_zyx,
    keep,
    seed_zyx,
    connectivity,
    fill_holes,
    min_size_mm3,
    spacing_zyx,
    allow_empty,
    source,
) -> np.ndarray:
    """Check the shared parameters, threshold with `select`, then clean up.

    `select(values, inside)` gets the image cropped to the box and the region
    within it (None: the whole box) and returns the voxels passing the
    threshold and how to say so in an error ("at or above 2.5 SUV").
    """
    # Every parameter is checked before any work is done.
    crop = _check_box(box_zyx, image.shape)
    inside = _check_region(region, image.shape, crop)
    keep = _check_keep(keep, seed_zyx)
    seed = _check_seed(seed_zyx, image.shape, crop, inside) if keep == "seed" else None
    if connectivity not in (6, 26):
        raise SettingsError(f"connectivity must be 26 or 6, got {connectivity!r}")
    if fill_holes not in ("3d", "slice", None):
        raise SettingsError(f"fill_holes must be '3d', 'slice' or None, got {fill_holes!r}")
    min_size_mm3 = _check_finite(min_size_mm3, "min_size_mm3")
    if min_size_mm3 < 0:
        raise SettingsError(f"min_size_mm3 must be >= 0 mm³, got {min_size_mm3:g}")
    voxel_mm3 = _check_spacing(spacing_zyx, needed=min_size_mm3 > 0)

    values = image[crop]
    if inside is not None and not inside.any():
        raise InputError(source, "the region has no voxel inside box_zyx")
    if values.dtype.kind == "f":
        n_bad = np.count_nonzero(~np.isfinite(values if inside is None else values[inside]))
        if n_bad:
            raise InputError(source, f"{n_bad} voxels in the region are NaN or infinite")

    def empty(reason: str) -> np.ndarray:
        if allow_empty:
            return np.zeros(image.shape, dtype=np.uint8)
        raise InputError(source, reason)

    mask, what = select(values, inside)
    if inside is not None:
        mask &= inside
    if not mask.any():
        return empty(f"no voxel {what} in the region")

    if fill_holes is not None:
        mask = _fill_holes(mask, connectivity=connectivity, per_slice=fill_holes == "slice")
        if inside is not None:
            mask &= inside

    structure = ndi.generate_binary_structure(3, 3 if connectivity == 26 else 1)
    labels, _ = ndi.label(mask, structure=structure)
    volumes_mm3 = np.bincount(labels.ravel()) * voxel_mm3
    kept = volumes_mm3 >= min_size_mm3
    kept[0] = False  # background
    if keep == "seed":
        at_seed = labels[seed]
        if at_seed == 0:
            return empty(f"seed_zyx {tuple(seed_zyx)} is not in a voxel {what}")
        if not kept[at_seed]:
            return empty(
                f"the component at seed_zyx {tuple(seed_zyx)} is {volumes_mm3[at_seed]:g} mm³, "
                f"below min_size_mm3={min_size_mm3:g}"
            )
        kept[:] = False
        kept[at_seed] = True
    elif not kept.any():
        return empty(f"no component of at least {min_size_mm3:g} mm³ {what} in the region")
    elif keep == "largest":
        largest = int(np.argmax(np.where(kept, volumes_mm3, -1.0)))  # first on a tie
        kept[:] = False
        kept[largest] = True

    out = np.zeros(image.shape, dtype=np.uint8)
    out[crop] = kept[labels]
    return out


def _fill_holes(mask: np.ndarray, *, connectivity: int, per_slice: bool) -> np.ndarray:
    # The background is traced with the neighbourhood complementary to the
    # foreground's (6 for 26, 26 for 6; in a slice 4 for 8, 8 for 4), so that
    # a diagonal gap in the wall neither leaks nor seals a hole.
    if per_slice:
        structure = ndi.generate_binary_structure(2, 1 if connectivity == 26 else 2)[np.newaxis]
    else:
        structure = ndi.generate_binary_structure(3, 1 if connectivity == 26 else 3)
    return ndi.binary_fill_holes(mask, structure=structure)


def _check_image(image, name: str) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3:
        raise SettingsError(f"{name} must be a 3D array (z, y, x), got shape {image.shape}")
    if image.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {image.dtype}")
    if image.size == 0:
        raise SettingsError(f"{name} is empty, shape {image.shape}")
    return image


def _check_finite(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise SettingsError(f"{name} must be finite, got {value!r}")
    return float(value)


def _check_box(box_zyx, shape: tuple[int, ...]) -> tuple[slice, slice, slice]:
    if box_zyx is None:
        return (slice(0, shape[0]), slice(0, shape[1]), slice(0, shape[2]))
    if (
        not isinstance(box_zyx, Sequence)
        or len(box_zyx) != 3
        or not all(isinstance(s, slice) for s in box_zyx)
    ):
        raise TypeError(
            "box_zyx must be a tuple of 3 slices (z, y, x), e.g. np.s_[2:9, :, 5:], "
            f"got {box_zyx!r}"
        )
    crop = []
    for axis, s, n in zip("zyx", box_zyx, shape, strict=True):
        if s.step not in (None, 1):
            raise SettingsError(f"box_zyx slice along {axis} must have step 1, got {s!r}")
        start, stop, _ = s.indices(n)
        if start >= stop:
            raise SettingsError(f"box_zyx is empty along {axis}: {s!r} of a {n}-voxel axis")
        crop.append(slice(start, stop))
    return tuple(crop)


def _check_region(region, shape, crop) -> np.ndarray | None:
    if region is None:
        return None
    region = np.asarray(region)
    if region.shape != shape:
        raise SettingsError(f"region shape {region.shape} differs from the image shape {shape}")
    if region.dtype.kind not in "biu":
        raise TypeError(f"region must be a boolean (or integer) mask, got dtype {region.dtype}")
    return region[crop] != 0


def _check_keep(keep, seed_zyx) -> str:
    if keep is None:
        return "largest" if seed_zyx is None else "seed"
    if keep not in ("largest", "seed", "all"):
        raise SettingsError(f"keep must be 'largest', 'seed' or 'all', got {keep!r}")
    if keep == "seed" and seed_zyx is None:
        raise SettingsError(
            "keep='seed' needs seed_zyx, the (z, y, x) voxel index of a lesion voxel"
        )
    if keep != "seed" and seed_zyx is not None:
        raise SettingsError(f"seed_zyx is only used with keep='seed', not keep={keep!r}")
    return keep


def _check_seed(seed_zyx, shape, crop, inside) -> tuple[int, int, int]:
    if (
        not isinstance(seed_zyx, Sequence)
        or len(seed_zyx) != 3
        or not all(isinstance(i, int | np.integer) and not isinstance(i, bool) for i in seed_zyx)
    ):
        raise TypeError(f"seed_zyx must be 3 integer voxel indices (z, y, x), got {seed_zyx!r}")
    if not all(0 <= i < n for i, n in zip(seed_zyx, shape, strict=True)):
        raise SettingsError(f"seed_zyx {tuple(seed_zyx)} is outside the image of shape {shape}")
    if not all(s.start <= i < s.stop for i, s in zip(seed_zyx, crop, strict=True)):
        raise SettingsError(f"seed_zyx {tuple(seed_zyx)} is outside box_zyx")
    local = tuple(int(i) - s.start for i, s in zip(seed_zyx, crop, strict=True))
    if inside is not None and not inside[local]:
        raise SettingsError(f"seed_zyx {tuple(seed_zyx)} is outside the region")
    return local


def _check_spacing(spacing_zyx, *, needed: bool) -> float:
    """Voxel volume in mm³ (1.0 when no spacing is given nor needed)."""
    if spacing_zyx is None:
        if needed:
            raise SettingsError("min_size_mm3 needs spacing_zyx, the voxel spacing (z, y, x) in mm")
        return 1.0
    try:
        spacing = spacing_mm(spacing_zyx)
    except SpacingError:
        raise SettingsError(
            f"spacing_zyx must be 3 positive finite spacings (z, y, x) in mm, got {spacing_zyx!r}"
        ) from None
    return float(np.prod(spacing))
