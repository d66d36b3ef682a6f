"""PyRadiomics 3.0.1's voxel mode: one feature map per feature, computed in a kernel per voxel.

``radflow.extract(image, mask, params, voxel_based=True)`` (and ``radflow extract ... --mode
voxel``) runs the steps of a segment extraction (:mod:`radflow.extraction.extractor`: loading,
normalisation, resampling, mask checks, re-segmentation, every enabled image type filtered
first) and then, as PyRadiomics' ``execute(..., voxelBased=True)`` does, per image type:

1. crop the filtered image and the mask to the ROI's bounding box grown by ``kernelRadius``
   voxels on every side and clipped to the image (``cropToTumorMask(padDistance=
   kernelRadius)``); the maps have that box's geometry;
2. discretise once over the ROI (``maskedKernel: true``, the default) or over the whole
   padded box (``maskedKernel: false``), with PyRadiomics' bin edges; the number of grey
   levels is the largest level in that region (PyRadiomics' ROI-level ``Ng``). PyRadiomics'
   first-order class discretises its float64 copy of the intensities, the texture classes the
   intensities in their own dtype; both are done here, so float32 values on a bin edge land
   where PyRadiomics puts them;
3. compute each enabled class's maps at the ROI voxels through its module in
   :mod:`radflow.features.voxel` (kernel: the cube of side ``2 kernelRadius + 1`` clipped to
   the box, in-plane with ``force2D``; with ``maskedKernel`` only its ROI voxels count);
4. put the values in float64 maps filled with ``initValue`` elsewhere; a feature PyRadiomics
   declines to compute in voxel mode (the deprecated GLCM/GLDM duplicates it raises
   DeprecationWarning for) is a map of ``initValue``, as PyRadiomics returns it.

Shape classes (``shape``, ``shape2D``) have no voxel mode: PyRadiomics skips them silently;
here the diagnostics say so (``diagnostics_VoxelBased_SkippedClasses``) when they are
enabled. ``voxelBatch`` is accepted and changes nothing: PyRadiomics uses it to bound the
memory of its per-voxel matrices, and the kernels here slide a window with a working set of
one kernel whatever the ROI size, so the results are the same for every batch size.

Memory: before any map is computed, :func:`check_memory` estimates what the extraction will
hold (every output map on the padded box, float64, plus one filtered box per filtered image) and
refuses, with one line naming the box, the number of maps and the budget, an extraction above
``voxelSetting: memoryBudget`` (MiB; default half the machine's available memory, or the Dask
worker's memory limit inside ``radflow maps``), rather than running out of memory part way.

Errors: ``kernelRadius`` < 1 (refused when the parameter file is read), voxel mode with only
shape classes enabled, and a class whose voxel module is not written yet, each one
:class:`~radflow.errors.SettingsError`; maps over the memory budget, a
:class:`MemoryBudgetError` (a SettingsError).
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import SimpleITK as sitk

from radflow._geometry import grow_box
from radflow.errors import SettingsError
from radflow.features import voxel as voxel_features
from radflow.params.extraction import ExtractionParams, Settings
from radflow.preprocess.discretise import discretise

__all__ = [
    "DECLINED",
    "SHAPE_CLASSES",
    "SKIPPED_KEY",
    "MemoryBudgetError",
    "available_memory_bytes",
    "check",
    "check_memory",
    "map_values",
    "maps",
    "memory_budget_bytes",
    "padded_box",
    "read_bbox",
    "skipped_note",
]

#: The classes voxel mode skips, as PyRadiomics does (and radflow's skeleton, a shape class too).
SHAPE_CLASSES = ("shape", "shape2D", "skeleton")
#: The diagnostics entry naming the enabled shape classes voxel mode skips.
SKIPPED_KEY = "diagnostics_VoxelBased_SkippedClasses"
#: Features PyRadiomics' voxel mode returns as maps of ``initValue`` (its methods raise
#: DeprecationWarning; the segment extractor leaves their keys out instead).
DECLINED = {
    "glcm": frozenset({"Dissimilarity", "Homogeneity1", "Homogeneity2", "SumVariance"}),
    "gldm": frozenset({"DependencePercentage", "GrayLevelNonUniformityNormalized"}),
}


def check(params: ExtractionParams) -> None:
    """Refuse what voxel mode cannot do, before anything is read.

    Raises
    ------
    SettingsError
        ``kernelRadius`` < 1; only shape classes enabled; a class without a voxel module.
    """
    radius = params.voxel_settings.kernel_radius
    if radius < 1:  # VoxelSettings refuses it too; kept for settings built by hand
        raise SettingsError(f"voxelSetting: kernelRadius must be >= 1 for voxel mode, got {radius}")
    classes = [c for c in params.feature_classes if c not in SHAPE_CLASSES]
    if not classes:
        raise SettingsError(
            "voxel mode computes no shape features (PyRadiomics skips shape and shape2D in "
            "voxel mode) and no other feature class is enabled; enable firstorder or a texture "
            "class under featureClass"
        )
    for cls in classes:
        if importlib.util.find_spec(f"{voxel_features.__name__}.{cls}") is None:
            raise SettingsError(
                f"voxel mode for {cls} is not implemented yet; disable {cls} under featureClass "
                "or extract it in segment mode"
            )


class MemoryBudgetError(SettingsError):
    """A voxel-based extraction would hold more memory than its budget.

    Not a permanent failure of ``radflow maps``: a worker with more memory may run it.
    """


def available_memory_bytes() -> int:
    """The memory the operating system says is available now (``MemAvailable``), bytes."""
    try:
        with open("/proc/meminfo", encoding="ascii") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def memory_budget_bytes(params: ExtractionParams) -> int:
    """``voxelSetting: memoryBudget`` in bytes, or half the available memory when not set."""
    mib = params.voxel_settings.memory_budget_mib
    return int(mib * 2**20) if mib is not None else available_memory_bytes() // 2


def _images_per_type(image_type: str, settings: Settings) -> int:
    """How many filtered images an image type yields (at least 1; an estimate for sweeps)."""
    if image_type == "LoG":
        return max(1, len(settings.sigma))
    if image_type == "Wavelet":
        return 7 * settings.level + 1  # seven detail images per level and the last approximation
    if image_type == "LBP3D":
        return settings.lbp_3d_levels + 1
    return 1


#: Bytes per box voxel every class's kernels hold besides the maps: the grey levels (int64)
#: and the kernel mask (bool).
_WORKING_BYTES = 9
#: Bytes per box voxel of GLRLM's sliding window: two tables of 13 directions, uint8.
_GLRLM_BYTES = 26


def check_memory(
    box_zyx: Sequence[int],
    params: ExtractionParams,
    classes: Mapping[str, Sequence[str] | None],
    default_names: Callable[[str, None], list[str]],
    *,
    images_at_once: int | None = None,
    what: str = "voxel mode",
    box_name: str | None = None,
) -> None:
    """Refuse an extraction whose maps would not fit the memory budget, before computing them.

    Parameters
    ----------
    box_zyx : sequence of 3 int
        Shape of the box the maps cover (the ROI box padded by ``kernelRadius``).
    params : ExtractionParams
        For the image types, ``kernelRadius`` and ``memoryBudget``.
    classes : mapping
        Non-shape classes -> feature names or None (defaults), as for :func:`maps`.
    default_names : callable
        ``default_names(cls, None)``: a class's default features.
    images_at_once : int, optional
        Filtered images whose maps are held together (default: all of them, as voxel mode
        returns every map at once).
    what : str
        Who asks, first in the message.
    box_name : str, optional
        What the box is, in the message (default: the ROI box padded by ``kernelRadius``).

    Raises
    ------
    MemoryBudgetError
        Estimated bytes (maps x box voxels x 8, plus one float64 box per filtered image, plus
        the kernels' working set per box voxel: grey levels and kernel mask, 9 bytes, and
        GLRLM's run tables, 26 bytes) above :func:`memory_budget_bytes`.
    """
    n_features = sum(
        len(list(names) if names is not None else default_names(cls, None))
        for cls, names in classes.items()
    )
    n_images = sum(_images_per_type(t, params.settings_for(t)) for t in params.image_types)
    held_images = n_images if images_at_once is None else min(images_at_once, n_images)
    n_maps = n_features * held_images
    voxels = math.prod(int(n) for n in box_zyx)
    # the maps and filtered images (float64), plus the per-box working set of the kernels:
    # grey levels and kernel mask, and GLRLM's two 13-direction run tables of uint8
    working = _WORKING_BYTES + (_GLRLM_BYTES if "glrlm" in classes else 0)
    need = 8 * voxels * (n_maps + n_images) + working * voxels
    budget = memory_budget_bytes(params)
    if need <= budget:
        return
    given = params.voxel_settings.memory_budget_mib is not None
    source = "voxelSetting memoryBudget" if given else "half the available memory"
    if box_name is None:
        box_name = f"the ROI box padded by kernelRadius {params.voxel_settings.kernel_radius}"
    raise MemoryBudgetError(
        f"{what}: {n_maps} map(s) of {' x '.join(str(int(n)) for n in box_zyx)} voxels "
        f"({box_name}) need about "
        f"{_mib(need)} MiB, over the memory budget of {_mib(budget)} MiB ({source}); enable "
        "fewer feature classes, features or image types, raise voxelSetting memoryBudget, or "
        "compute the maps with `radflow maps`, which splits large regions into chunk-sized tasks"
    )


def _mib(n_bytes: int) -> str:
    mib = n_bytes / 2**20
    return f"{mib:,.1f}" if mib >= 1 else f"{mib:.3f}"


def skipped_note(params: ExtractionParams) -> dict[str, str]:
    """``{SKIPPED_KEY: "shape, shape2D"}`` for the enabled shape classes; empty if none."""
    skipped = [c for c in params.feature_classes if c in SHAPE_CLASSES]
    return {SKIPPED_KEY: ", ".join(skipped)} if skipped else {}


def padded_box(box_zyx: Sequence[slice], shape_zyx: Sequence[int], params: ExtractionParams):
    """The ROI box grown by ``kernelRadius`` and clipped to the image, as PyRadiomics crops."""
    return grow_box(box_zyx, params.voxel_settings.kernel_radius, shape_zyx)


def read_bbox(box_zyx: Sequence[slice], shape_zyx: Sequence[int], params: ExtractionParams):
    """The box around which the extraction reads the volume in voxel mode.

    On the volume's grid the maps' box (:func:`padded_box`). With resampling or ``preCrop``
    PyRadiomics crops its padded box from the resampled or pre-cropped image (the ROI box plus
    ``padDistance``), so the volume is read as in segment mode and the maps are clipped there.
    """
    s = params.settings
    if s.resampling or s.pre_crop:
        return tuple(box_zyx)
    return padded_box(box_zyx, shape_zyx, params)


def maps(
    image_type: str,
    values: np.ndarray,
    roi: np.ndarray,
    reference: sitk.Image,
    crop: Sequence[slice],
    settings: Settings,
    params: ExtractionParams,
    classes: Mapping[str, Sequence[str] | None],
    default_names: Callable[[str, None], list[str]],
) -> dict[str, sitk.Image]:
    """The maps of one (filtered) image: ``{"<imageType>_<class>_<feature>": SimpleITK image}``.

    Parameters
    ----------
    image_type : str
        The image type's name in the keys (``original``, ``log-sigma-1-0-mm-3D`` ...).
    values : (z, y, x) array
        The filtered intensities of the padded box (:func:`padded_box`).
    roi : (z, y, x) array of bool
        The ROI in that box.
    reference : SimpleITK.Image
        The filtered image the box was cut from (its geometry places the maps).
    crop : sequence of 3 slice
        The box in ``reference``.
    settings : Settings
        The settings in force for this image type (binning, force2D, ...).
    params : ExtractionParams
        For ``voxelSetting``.
    classes : mapping
        Non-shape classes in file order -> feature names or None (defaults).
    default_names : callable
        ``default_names(cls, None)``: a class's default features in PyRadiomics' order.

    Returns
    -------
    dict of str to SimpleITK.Image
        float64 maps on the padded box, in PyRadiomics' key order.
    """
    vs = params.voxel_settings
    spacing_zyx = tuple(reference.GetSpacing()[::-1])
    origin = reference.TransformIndexToPhysicalPoint([int(s.start) for s in crop[::-1]])
    out: dict[str, sitk.Image] = {}
    for (cls, name), result in map_values(
        values, roi, settings, params, classes, default_names, spacing_zyx
    ).items():
        full = np.full(roi.shape, vs.init_value, dtype=np.float64)
        if result is not None:
            full[roi] = result
        out[f"{image_type}_{cls}_{name}"] = _as_image(full, reference, origin)
    return out


def map_values(
    values: np.ndarray,
    roi: np.ndarray,
    settings: Settings,
    params: ExtractionParams,
    classes: Mapping[str, Sequence[str] | None],
    default_names: Callable[[str, None], list[str]],
    spacing_zyx: Sequence[float],
) -> dict[tuple[str, str], np.ndarray | None]:
    """The values of each map at the ROI voxels: ``{(class, feature): (n,) float64 or None}``.

    The work of :func:`maps` without the images: the values in the order of ``roi``'s voxels
    (``roi[roi]``, C order), None for a feature PyRadiomics declines (:data:`DECLINED`). Arguments
    as for :func:`maps`; `spacing_zyx` in mm.
    """
    vs = params.voxel_settings
    masked = vs.masked_kernel
    kernel_mask = roi if masked else np.ones(roi.shape, dtype=bool)
    centres = np.argwhere(roi)
    image64 = np.asarray(values, dtype=np.float64)
    binned_by_dtype: dict[bool, tuple[np.ndarray, int]] = {}

    def binned(as_float64: bool) -> tuple[np.ndarray, int]:
        # PyRadiomics' firstorder bins its float64 copy, the texture classes the input dtype.
        key = as_float64 or values.dtype == np.float64
        if key not in binned_by_dtype:
            source = image64 if key else values
            levels, _ = discretise(
                source, kernel_mask, bin_width=settings.bin_width, bin_count=settings.bin_count
            )
            binned_by_dtype[key] = (levels, int(levels.max()))
        return binned_by_dtype[key]

    out: dict[tuple[str, str], np.ndarray | None] = {}
    for cls, names in classes.items():
        requested = list(names) if names is not None else default_names(cls, None)
        declined = DECLINED.get(cls, frozenset())
        computed = [n for n in requested if n not in declined]
        levels, n_levels = binned(cls == "firstorder")
        module = getattr(voxel_features, cls)
        result = (
            module.compute_maps(
                image64,
                levels,
                kernel_mask,
                centres,
                n_levels=n_levels,
                kernel_radius=vs.kernel_radius,
                settings=settings,
                spacing_zyx=tuple(spacing_zyx),
                features=tuple(computed),
            )
            if computed
            else {}
        )
        for name in requested:
            out[(cls, name)] = result.get(name)
    return out


def _as_image(array: np.ndarray, reference: sitk.Image, origin) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(reference.GetSpacing())
    image.SetDirection(reference.GetDirection())
    image.SetOrigin(origin)
    return image


def settings_entries(settings: dict[str, Any], params: ExtractionParams) -> dict[str, Any]:
    """The configuration settings PyRadiomics reports in voxel mode.

    Its settings hold the ``voxelSetting`` entries and ``voxelBased: True``.
    """
    return {**settings, **params.voxel_settings.to_mapping(), "voxelBased": True}
