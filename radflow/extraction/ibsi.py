"""IBSI-mode extraction: IBSI processing, then every IBSI 1 family, keyed by IBSI tag.

The processing follows the IBSI 1 reference manual's scheme: interpolation
of image and ROI (optional), the ROI split into a morphological mask (the
interpolated ROI) and an intensity mask (re-segmented: range, then outlier
filtering), discretisation of the intensity-mask voxels for the intensity
histogram and the texture matrices, and the intensity-volume histogram's own
discretisation. The diagnostics rows of the IBSI reference tables (image and
ROI statistics after each step) are emitted under their tags.

A configuration with a ``filter`` (IBSI 2) follows the IBSI 2 scheme, as in
its phase 2: the interpolated image is filtered (the ROI's box grown by the
filter's margin, :func:`radflow.filters.image_types.read_box`, which gives
the whole image's response inside the ROI), the intensity mask is
re-segmented on the *unfiltered* intensities, and only the intensity
statistics (``stat_*``) of the response map in that mask are computed, after
the diagnostics (which describe the unfiltered image). Nothing is
discretised.

Families are the modules listed in :data:`radflow.features.ibsi.registry.FAMILIES`,
called as the registry's module docstring describes; a family whose module is
not installed is left out (its tags are missing from the result).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from typing import TYPE_CHECKING

import numpy as np
import SimpleITK as sitk

from radflow._geometry import SpacingError, bounding_box, grow_box, spacing_mm
from radflow.errors import InputError, SettingsError
from radflow.features.ibsi import registry
from radflow.filters.image_types import filter_responses, read_box
from radflow.io.image_file import read_image
from radflow.params.ibsi import IbsiConfig, load_ibsi_config
from radflow.preprocess import ibsi as proc
from radflow.preprocess.roi_checks import check_label_values, geometry_mismatch
from radflow.store.convert import to_sitk
from radflow.store.source import is_dataarray

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["ALL_LABELS", "IbsiImages", "compute_ibsi", "extract_ibsi", "process_ibsi"]

#: The `label` that takes every non-zero voxel of the mask as the ROI.
ALL_LABELS = "all"

#: Radius in mm of the 1 cm^3 sphere of the local intensity peak: the crop
#: around the ROI keeps every voxel it can reach.
_PEAK_RADIUS_MM = 10.0 * (3.0 / (4.0 * math.pi)) ** (1.0 / 3.0)


@dataclass(frozen=True)
class IbsiImages:
    """The processed arrays the families work on, cropped around the ROI.

    Attributes
    ----------
    image : numpy.ndarray of float64, shape (z, y, x)
        Intensities after interpolation (and rounding). With a filter: its
        response map, and every array cropped to the ROI's bounding box.
    morph_mask, intensity_mask : numpy.ndarray of bool
        Morphological (interpolated ROI) and intensity (re-segmented) masks.
    levels : numpy.ndarray of int32 or None
        Discretised grey levels 1..n_levels inside the intensity mask, 0
        outside; None with a filter.
    n_levels : int
        Number of grey levels N_g of the discretisation (0 with a filter).
    ivh : radflow.preprocess.ibsi.IvhIntensities or None
        None with a filter.
    spacing_zyx : tuple of float
        Voxel spacing in mm.
    diagnostics : dict of str to float
        The ``diag`` tags (initial, interpolated, re-segmented image and ROI).
    """

    image: np.ndarray
    morph_mask: np.ndarray
    intensity_mask: np.ndarray
    levels: np.ndarray | None
    n_levels: int
    ivh: proc.IvhIntensities | None
    spacing_zyx: tuple[float, float, float]
    diagnostics: dict[str, float]


def extract_ibsi(
    image: str | PathLike | sitk.Image | xr.DataArray,
    mask: str | PathLike | sitk.Image | xr.DataArray,
    config: str | PathLike | IbsiConfig,
    *,
    label: int | str | None = None,
) -> dict[str, float]:
    """Compute every IBSI 1 feature of one ROI under an IBSI configuration.

    Parameters
    ----------
    image : str, path-like, SimpleITK.Image or xarray.DataArray
        The image: a NIfTI/NRRD/MetaImage file, an image, or a store volume
        (``radflow.store.read.open_volume``).
    mask : str, path-like, SimpleITK.Image or xarray.DataArray
        The label map on the image's grid (``open_label`` for the store):
        whole numbers, as :func:`radflow.preprocess.roi_checks.check_label_values`
        checks (an image given as the mask is refused).
    config : str, path-like or IbsiConfig
        ``"phantom"``, ``"A"`` .. ``"E"``, a YAML file or a loaded configuration.
    label : int or "all", optional
        Label value of the ROI in `mask`, > 0; None: 1, as in PyRadiomics
        mode. ``"all"`` (:data:`ALL_LABELS`): every non-zero voxel, all labels
        merged into one ROI.

    Returns
    -------
    dict of str to float
        Keys exactly the IBSI submission tags (``morph_volume``,
        ``cm_joint_max_3D_avg``, ``img_dim_x_init_img`` ...), in the
        reference tables' order; NaN only where the IBSI value is undefined.
        With a filter in `config`: the diagnostics and the ``stat_*`` tags
        of the response map.

    Raises
    ------
    radflow.errors.InputError
        Unreadable input, a mask that is not a label map, mask not on the
        image grid, `label` absent, empty ROI.
    radflow.errors.SettingsError
        Invalid configuration or `label`.
    """
    config = load_ibsi_config(config)
    label = _check_label(label)
    values, roi, spacing_zyx = _read_pair(image, mask, label)
    return compute_ibsi(values, roi, spacing_zyx=spacing_zyx, config=config)


def compute_ibsi(
    image: np.ndarray,
    mask: np.ndarray,
    *,
    spacing_zyx: Sequence[float],
    config: str | PathLike | IbsiConfig,
) -> dict[str, float]:
    """:func:`extract_ibsi` on arrays.

    Parameters
    ----------
    image : array_like, shape (z, y, x)
        Intensities (HU, SUV, ...).
    mask : array_like of bool, shape (z, y, x)
        The ROI: bool, or 0 and 1 (a label map is refused: select its label first).
    spacing_zyx : sequence of 3 float
        Voxel spacing in mm.
    config : str, path-like or IbsiConfig

    Returns
    -------
    dict of str to float
    """
    config = load_ibsi_config(config)
    processed = process_ibsi(image, mask, spacing_zyx=spacing_zyx, config=config)
    out = dict(processed.diagnostics)
    calls = _FAMILY_CALLS if config.filter is None else {"stat": _FAMILY_CALLS["stat"]}
    for family, call in calls.items():
        out.update(call(registry.family_module(family), processed, config))
    order = {tag: i for i, tag in enumerate(registry.tags())}
    unknown = sorted(set(out) - set(order))
    if unknown:
        raise RuntimeError(
            f"IBSI families returned tags that are not IBSI tags: {', '.join(unknown[:5])}"
        )
    return {tag: float(out[tag]) for tag in sorted(out, key=order.__getitem__)}


def process_ibsi(
    image: np.ndarray,
    mask: np.ndarray,
    *,
    spacing_zyx: Sequence[float],
    config: str | PathLike | IbsiConfig,
) -> IbsiImages:
    """IBSI processing of one image and ROI under a configuration.

    Parameters
    ----------
    image : array_like, shape (z, y, x)
    mask : array_like of bool, shape (z, y, x)
        The ROI: bool, or 0 and 1 (a label map is refused: select its label first).
    spacing_zyx : sequence of 3 float
        Voxel spacing in mm.
    config : str, path-like or IbsiConfig

    Returns
    -------
    IbsiImages
    """
    config = load_ibsi_config(config)
    values = np.asarray(image)
    if values.ndim != 3 or not np.issubdtype(values.dtype, np.number):
        raise InputError(
            "image", f"expected a numeric 3-D (z, y, x) array, got {values.dtype} {values.shape}"
        )
    values = values.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise InputError("image", "contains NaN or infinity")
    roi = np.asarray(mask)
    if roi.shape != values.shape:
        raise InputError("mask", f"shape {roi.shape} differs from the image's {values.shape}")
    if roi.dtype != bool:
        if not np.issubdtype(roi.dtype, np.number) or np.any((roi != 0) & (roi != 1)):
            raise InputError(
                "mask",
                "expected a boolean ROI (or 0 and 1); select the label of a label map first "
                "(roi = labels == 1)",
            )
    roi = roi.astype(bool)
    if not roi.any():
        raise InputError("mask", "the ROI is empty")
    try:
        spacing = spacing_mm(spacing_zyx)
    except SpacingError:
        raise InputError(
            "spacing_zyx", f"expected 3 spacings > 0 in mm, got {spacing_zyx!r}"
        ) from None

    diagnostics = _image_diagnostics(values, spacing, "init_img")
    diagnostics.update(_roi_diagnostics(values, roi, roi, "init_roi"))

    interp = config.interpolation
    if interp is not None:
        grid = proc.interpolation_grid(
            values.shape, spacing_zyx=spacing, new_spacing_zyx=interp.spacing_zyx_mm
        )
        values = proc.interpolate_image(
            values, grid, method=interp.image, round_intensities=interp.round_intensities
        )
        roi = proc.interpolate_mask(
            roi, grid, method=interp.roi, threshold=interp.partial_volume_threshold
        )
        spacing = grid.spacing_zyx
        if not roi.any():
            raise InputError(
                "mask", "the ROI is empty after interpolation (partial-volume threshold)"
            )
    diagnostics.update(_image_diagnostics(values, spacing, "interp_img"))
    diagnostics.update(_roi_diagnostics(values, roi, roi, "interp_roi"))

    morph_mask = roi
    intensity_mask = roi
    if config.resegment_range is not None:
        low, high = config.resegment_range
        intensity_mask = proc.resegment_range(values, intensity_mask, low=low, high=high)
    if config.outlier_sigma is not None and intensity_mask.any():
        intensity_mask = proc.filter_outliers(values, intensity_mask, sigma=config.outlier_sigma)
    if not intensity_mask.any():
        raise InputError("mask", "no ROI voxel is left after re-segmentation")
    diagnostics.update(_roi_diagnostics(values, morph_mask, intensity_mask, "reseg_roi"))
    if config.filter is not None:
        return _filtered(values, morph_mask, intensity_mask, spacing, config, diagnostics)

    box = _crop_box(morph_mask | intensity_mask, spacing)
    values, morph_mask, intensity_mask = values[box], morph_mask[box], intensity_mask[box]
    levels, n_levels = _discretise(values, intensity_mask, config)
    ivh = proc.ivh_intensities(
        values,
        intensity_mask,
        method=config.ivh_discretisation.method,
        bin_width=config.ivh_discretisation.bin_width,
        bin_count=config.ivh_discretisation.bin_count,
        value_range=config.resegment_range,
    )
    return IbsiImages(
        values, morph_mask, intensity_mask, levels, n_levels, ivh, spacing, diagnostics
    )


def _filtered(
    values, morph_mask, intensity_mask, spacing, config: IbsiConfig, diagnostics
) -> IbsiImages:
    """IbsiImages of the filter's response map, all cropped to the ROI's bounding box."""
    settings = config.filter
    bbox = bounding_box(morph_mask)  # the intensity mask lies inside
    region = read_box({settings.image_type: settings}, None, bbox, values.shape, spacing)
    [(_, response)] = filter_responses(values[region], settings, spacing_zyx=spacing)
    inner = tuple(slice(b.start - r.start, b.stop - r.start) for b, r in zip(bbox, region))
    return IbsiImages(
        response[inner], morph_mask[bbox], intensity_mask[bbox], None, 0, None, spacing, diagnostics
    )


def _discretise(values: np.ndarray, mask: np.ndarray, config: IbsiConfig) -> tuple[np.ndarray, int]:
    method = config.discretisation.method
    if method == "fixed_bin_number":
        count = config.discretisation.bin_count
        return proc.discretise_fixed_bin_number(values, mask, bin_count=count), count
    if method == "fixed_bin_size":
        width = config.discretisation.bin_width
        low, high = config.resegment_range if config.resegment_range is not None else (None, None)
        levels = proc.discretise_fixed_bin_size(values, mask, bin_width=width, minimum=low)
        # N_g: the bins covering the re-segmentation range when it is closed
        # (the same for every ROI), at least the highest level present (an
        # intensity on the upper bound opens one more bin).
        n_levels = int(levels[mask].max())
        if low is not None and high is not None:
            n_levels = max(n_levels, math.ceil(round((high - low) / width, 9)))
        return levels, n_levels
    # "none": the intensities are grey levels already (the digital phantom).
    inside = values[mask]
    if np.any(inside != np.round(inside)) or inside.min() < 1:
        raise InputError(
            "image", "discretisation 'none' needs whole-number grey levels >= 1 inside the ROI"
        )
    levels = np.where(mask, values, 0).astype(np.int32)
    return levels, int(inside.max())


def _crop_box(mask: np.ndarray, spacing_zyx) -> tuple[slice, ...]:
    """Bounding box of the ROI grown by the local-intensity sphere's radius (+1 voxel)."""
    margin = [math.ceil(_PEAK_RADIUS_MM / s) + 1 for s in spacing_zyx]
    return grow_box(bounding_box(mask), margin, mask.shape)


def _image_diagnostics(values: np.ndarray, spacing_zyx, stage: str) -> dict[str, float]:
    z, y, x = values.shape
    sz, sy, sx = spacing_zyx
    out = {
        "img_dim_x": x, "img_dim_y": y, "img_dim_z": z,
        "vox_dim_x": sx, "vox_dim_y": sy, "vox_dim_z": sz,
        "mean_int": values.mean(), "min_int": values.min(), "max_int": values.max(),
    }  # fmt: skip
    return {f"{key}_{stage}": float(v) for key, v in out.items()}


def _roi_diagnostics(
    values: np.ndarray, morph_mask: np.ndarray, intensity_mask: np.ndarray, stage: str
):
    z, y, x = intensity_mask.shape
    inside = values[intensity_mask]
    out = {"int_mask_dim_x": x, "int_mask_dim_y": y, "int_mask_dim_z": z}
    for name, mask in (("int_mask", intensity_mask), ("morph_mask", morph_mask)):
        extent = [s.stop - s.start for s in bounding_box(mask)]
        out.update(
            {
                f"{name}_bb_dim_x": extent[2],
                f"{name}_bb_dim_y": extent[1],
                f"{name}_bb_dim_z": extent[0],
            }
        )
    out.update({
        "int_mask_vox_count": intensity_mask.sum(), "morph_mask_vox_count": morph_mask.sum(),
        "int_mask_mean_int": inside.mean(), "int_mask_min_int": inside.min(),
        "int_mask_max_int": inside.max(),
    })  # fmt: skip
    return {f"{key}_{stage}": float(v) for key, v in out.items()}


def _family_aggregations(family: str, config: IbsiConfig) -> tuple[str, ...]:
    return tuple(a for a in registry.FAMILIES[family][2] if a in config.aggregations)


def _texture(family: str, *, morph: bool = False):
    def call(module, p: IbsiImages, config: IbsiConfig) -> dict[str, float]:
        aggregations = _family_aggregations(family, config)
        if not aggregations:
            return {}
        extra = {"morph_mask": p.morph_mask} if morph else {}
        return module.compute(
            p.levels,
            intensity_mask=p.intensity_mask,
            n_levels=p.n_levels,
            aggregations=aggregations,
            **extra,
        )

    return call


#: Family key -> how extract calls it (the contract in the registry's docstring).
_FAMILY_CALLS = {
    "morph": lambda m, p, c: m.compute(
        p.image, morph_mask=p.morph_mask, intensity_mask=p.intensity_mask, spacing_zyx=p.spacing_zyx
    ),
    "loc": lambda m, p, c: m.compute(
        p.image, intensity_mask=p.intensity_mask, spacing_zyx=p.spacing_zyx
    ),
    "stat": lambda m, p, c: m.compute(p.image, intensity_mask=p.intensity_mask),
    "ih": lambda m, p, c: m.compute(p.levels, intensity_mask=p.intensity_mask),
    "ivh": lambda m, p, c: m.compute(
        p.ivh.values,
        intensity_mask=p.intensity_mask,
        value_range=p.ivh.value_range,
        value_step=p.ivh.value_step,
    ),
    "cm": _texture("cm"),
    "rlm": _texture("rlm"),
    "szm": _texture("szm"),
    "dzm": _texture("dzm", morph=True),
    "ngt": _texture("ngt"),
    "ngl": _texture("ngl"),
}


def _check_label(label) -> int | str:
    """`label` of :func:`extract_ibsi`: None -> 1; an integer > 0 or ``"all"``."""
    if label is None:
        return 1
    if label == ALL_LABELS:
        return ALL_LABELS
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or label < 1:
        raise SettingsError(
            f"label must be an integer > 0 or {ALL_LABELS!r} (every label merged), got {label!r}"
        )
    return int(label)


def _read_pair(image, mask, label):
    """Intensities and ROI as (z, y, x) arrays, and the spacing in mm, from any accepted input."""
    image_sitk = _as_sitk(image, "image")
    mask_sitk = _as_sitk(mask, "mask")
    source = str(mask) if isinstance(mask, (str, PathLike)) else "mask"
    if mask_sitk.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(
            source, f"mask has {mask_sitk.GetNumberOfComponentsPerPixel()} components per voxel"
        )
    labels = sitk.GetArrayFromImage(mask_sitk)
    check_label_values(labels, source=source)
    mismatch = geometry_mismatch(image_sitk, mask_sitk)
    if mismatch:
        raise InputError(source, f"mask is not on the image grid: {mismatch}")
    values = sitk.GetArrayFromImage(image_sitk)
    if label == ALL_LABELS:
        roi = labels != 0
    else:
        roi = labels == label
        if not roi.any():
            present = np.unique(labels)
            present = present[present != 0]
            if present.size == 0:
                raise InputError(source, "the ROI is empty: nothing is segmented in the mask")
            raise InputError(
                source,
                f"label {label} is absent from the mask (labels: {present[:10].tolist()}); "
                "give the ROI's label, or 'all' to merge every label",
            )
    return values, roi, tuple(image_sitk.GetSpacing()[::-1])


def _as_sitk(item, what: str):
    if isinstance(item, sitk.Image):
        return item
    if isinstance(item, (str, PathLike)):
        return read_image(item)
    if is_dataarray(item):
        return to_sitk(item)
    raise InputError(
        what,
        f"expected a file path, a SimpleITK image or a store DataArray, got {type(item).__name__}",
    )
