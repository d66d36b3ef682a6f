"""One extraction, as PyRadiomics 3.0.1's ``RadiomicsFeatureExtractor.execute``.

:func:`extract` reads a PyRadiomics parameter file unchanged and returns the
keys PyRadiomics returns (``diagnostics_*``, then
``<imageType>_<class>_<Feature>``), with the same numbers. The steps and
their order are PyRadiomics':

1. load image and mask; a vector mask gives its ``label_channel``
   component, a float mask is cast to integers (PyRadiomics' ``getMask``);
2. ``normalize``: z-score over the *whole* image;
3. ``resampledPixelSpacing`` + ``interpolator``: resample around the ROI
   (grid aligned on the mask's, ``padDistance`` voxels kept); else
   ``preCrop``: crop to the ROI box plus ``padDistance``;
4. ``checkMask``: label present, image/mask geometry within
   ``geometryTolerance`` (``correctMask`` resamples the mask), at least
   ``minimumROIDimensions`` axes, more than ``minimumROISize`` voxels;
5. ``resegmentRange``: re-segment, then check the mask again;
6. shape (and shape2D, and radflow's skeleton) on the original image, cropped to the ROI box
   (``resegmentShape`` picks the mask);
7. each enabled image type in file order, each filtered image cropped to the
   ROI box, discretised once and shared by first order and the texture
   classes, each enabled class in file order.

What differs is where the work is done: PyRadiomics filters the whole volume;
radflow reads only the ROI box plus the margin the enabled filters need
(:func:`radflow.filters.image_types.read_box`), filters for each image type
only the box that type needs, and takes from
the whole volume only what PyRadiomics reads from it (size, max |x|, mean
and standard deviation for ``normalize``, diagnostics), in one streamed pass
beside the extraction. A store volume (lazy xarray DataArrays of image and
label map) is read the same way, box only, through the store's
:class:`radflow.store.source.RoiSource`: the ROI's box and the whole-volume
summaries the store recorded when it wrote the series (older stores: streamed
once per process and series).

One PyRadiomics 3.0.1 quirk is kept on purpose, for identical output: with
``force2D`` its extractor computes shape2D only when the ROI's bounding box
spans more than one voxel along axis ``force2Ddimension`` *of the (x, y, z)
box* (it indexes the box in SimpleITK order with a numpy axis), and its
shape2D class then fails unless the ROI is one voxel thick along that numpy
(z, y, x) axis; that failure aborts the extraction, here as an InputError.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from os import PathLike
from typing import TYPE_CHECKING, Any

import numpy as np
import SimpleITK as sitk

from radflow._geometry import bounding_box
from radflow.errors import InputError, SettingsError
from radflow.extraction import diagnostics, map_summary, voxel
from radflow.extraction.region import read_region
from radflow.extraction.startup import KERNEL_CLASSES as _COMPILED
from radflow.extraction.startup import VOXEL_KERNEL_CLASSES as _VOXEL_COMPILED
from radflow.features.habitat import FAMILY as _HABITAT
from radflow.features.habitat import feature_names as habitat_names
from radflow.features.habitat import habitat_features
from radflow.features.registry import family_module
from radflow.filters.image_types import image_types, read_box
from radflow.io.image_file import read_image
from radflow.params.extraction import ExtractionParams, Settings
from radflow.params.names import FEATURE_CLASSES
from radflow.params.pyradiomics_params import load_params
from radflow.preprocess.discretise import discretise
from radflow.preprocess.normalise import normalise
from radflow.preprocess.resample import resample_image_and_mask
from radflow.preprocess.resegment import resegment
from radflow.preprocess.roi_checks import (
    DEFAULT_GEOMETRY_TOLERANCE,
    _geometry_mismatch,
    check_label_values,
    check_mask,
    roi_bounding_box,
)
from radflow.store.source import RoiSource, box_image, is_dataarray, label_box, roi_source

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["NOT_RETURNED", "extract", "warmup"]

_SHAPE = ("shape", "shape2D", "skeleton")  # on the mask, once per ROI
_INTENSITY_TYPES = frozenset(
    {"Square", "SquareRoot", "Logarithm", "Exponential"}
)  # scaled by the volume's max |x|
_HISTOGRAM = frozenset({"Entropy", "Uniformity"})  # the first-order features that need the bins
#: Deprecated features whose PyRadiomics 3.0.1 method raises DeprecationWarning,
#: so that its extractor returns no key for them even when asked by name (each
#: duplicates another feature). Left out here too, for identical output.
NOT_RETURNED = {
    "glcm": frozenset({"Dissimilarity", "Homogeneity1", "Homogeneity2", "SumVariance"}),
    "gldm": frozenset({"DependencePercentage", "GrayLevelNonUniformityNormalized"}),
}


def extract(
    image: str | PathLike | sitk.Image | xr.DataArray,
    mask: str | PathLike | sitk.Image | xr.DataArray,
    params: str | PathLike | Mapping[str, Any] | ExtractionParams | None = None,
    label: int | None = None,
    *,
    label_channel: int | None = None,
    voxel_based: bool = False,
    habitats: str | PathLike | sitk.Image | xr.DataArray | None = None,
) -> dict[str, Any]:
    """Features of one ROI, keys and values as PyRadiomics' extractor gives them.

    Parameters
    ----------
    image : str, path-like, SimpleITK.Image or xarray.DataArray
        The grey-level volume (HU, SUV, MR signal): a NIfTI/NRRD/MetaImage
        file, an image, or a volume from :func:`radflow.store.read.open_volume`
        (dims ``("z", "y", "x")``; only the ROI box and the filters' margin
        are read).
    mask : str, path-like, SimpleITK.Image or xarray.DataArray
        The label map, of the same kind as `image` (a DataArray from
        :func:`radflow.store.read.open_label` for a store volume).
    params : str, path-like, mapping, ExtractionParams or None
        A PyRadiomics parameter file (YAML/JSON) or its content; None:
        PyRadiomics' defaults (Original image, every class but shape2D).
    label : int, optional
        ROI label value; overrides the ``label`` setting, as PyRadiomics'
        ``execute(label=...)``.
    label_channel : int, optional
        Component of a vector-valued mask image; overrides ``label_channel``.
    voxel_based : bool
        PyRadiomics' voxel mode (``execute(..., voxelBased=True)``): a feature map per
        feature, computed in a kernel around each ROI voxel (``voxelSetting``); see
        :mod:`radflow.extraction.voxel`.
    habitats : str, path-like, SimpleITK.Image or xarray.DataArray, optional
        The ROI's habitat map (0 outside the ROI, 1..K inside), which the ``habitat`` feature
        class reads (:mod:`radflow.features.habitat`, keys ``original_habitat_<Name>``, once per
        ROI like shape): a store label of ``radflow habitats apply`` (``open_label(...,
        "<roi>_habitats")``, whose record gives K), or an image or file (K: its largest value).
        Required when the class is enabled; ``radflow run`` passes the store's.

    Returns
    -------
    dict
        ``diagnostics_*`` entries (when ``additionalInfo``, the default;
        see :mod:`radflow.extraction.diagnostics`), then
        ``<image type>_<class>_<feature>`` -> float, in PyRadiomics' order
        (``original_shape_MeshVolume`` in mm^3, ``wavelet-LLH_glcm_Contrast`` ...).
        With `voxel_based`: the values are float64 SimpleITK images on the ROI box
        grown by ``kernelRadius`` (clipped to the image), no shape features.

    Raises
    ------
    InputError
        Unreadable input; no voxel with `label` (empty ROI); image/mask
        geometry mismatch beyond ``geometryTolerance`` (without
        ``correctMask``); ROI too small (one voxel, fewer than
        ``minimumROIDimensions`` axes, at most ``minimumROISize`` voxels);
        NaN or infinite intensities. The message names the file (or store
        key) and the reason.
    SettingsError
        An invalid parameter file or setting.
    """
    params = params if isinstance(params, ExtractionParams) else load_params(params)
    overrides = {}
    if label is not None:
        overrides["label"] = label
    if label_channel is not None:
        overrides["label_channel"] = label_channel
    if overrides:
        params = params.with_settings(overrides)
    settings = params.settings
    if voxel_based:
        voxel.check(params)
    else:
        map_summary.check(params)
    volume = _open(image, mask, params, voxel_based)
    return _Extraction(params, settings, volume, voxel_based, habitats).run()


def warmup(
    params: str | PathLike | Mapping[str, Any] | ExtractionParams | None = None,
    *,
    voxel_based: bool = False,
) -> dict[str, Any]:
    """Compile the numba kernels ahead, so that later processes load them from the cache.

    numba compiles a kernel on its first call in a process whose cache has none (a new
    installation, a new cache folder): seconds per kernel. Call this once in the parent before
    starting worker processes (a batch CSV, a cluster run) so that a cold cache is compiled
    once per machine instead of once per worker, or run ``radflow warmup`` after installing.

    Parameters
    ----------
    params : str, path-like, mapping, ExtractionParams or None
        None: every kernel (every feature class, deprecated features included, in 3D and with
        ``force2D``, and voxel mode's masked, unmasked and in-plane). A parameter file (or its
        content): only the kernels of the classes it enables, with its ``force2D``,
        ``weightingNorm`` and ``distances``; voxel mode's only with `voxel_based`. Parameter
        files without a compiled class (first order only) import no numba at all.
    voxel_based : bool
        With `params`: compile voxel mode's kernels of the enabled classes (with its
        ``maskedKernel``) instead of segment mode's.

    Returns
    -------
    dict
        The features of the tiny extraction(s) run to compile them (voxel maps dropped).
    """
    rng = np.random.default_rng(0)
    values = rng.integers(-50, 50, size=(6, 7, 8)).astype(np.int16)
    roi = np.zeros(values.shape, np.uint8)
    roi[1:5, 1:6, 1:7] = 1
    roi[2, 3, 4] = 0
    image, mask = sitk.GetImageFromArray(values), sitk.GetImageFromArray(roi)
    if params is not None:
        return _warmup_for(
            params if isinstance(params, ExtractionParams) else load_params(params),
            voxel_based,
            image,
            mask,
            values,
        )
    every = {
        name: [f.name for f in family_module(name).FEATURES]
        for name in FEATURE_CLASSES
        if name != "shape2D"
    }
    result = extract(image, mask, {"featureClass": every, "setting": {"binWidth": 10}})
    result.update(
        _warmup_flat(
            values,
            {"shape2D": None, "glcm": None, "glrlm": None},
            {"weightingNorm": "euclidean", "distances": [1, 2]},
        )
    )
    # Voxel mode's kernels are their own (sliding windows over the padded box): compiled here
    # too, masked and unmasked, in 3D and in-plane; the maps are not part of the result.
    # kernelRadius 2 as well: GLRLM, GLSZM, GLDM and NGTDM slide their kernel along x only
    # from radius 2 on (other compiled paths).
    texture = {name: None for name in FEATURE_CLASSES if name not in ("shape", "shape2D")}
    for voxel_setting, setting in (
        ({"kernelRadius": 1}, {"binWidth": 10}),
        ({"kernelRadius": 1, "maskedKernel": False}, {"binWidth": 10}),
        ({"kernelRadius": 2}, {"binWidth": 10}),
        ({"kernelRadius": 2, "maskedKernel": False}, {"binWidth": 10}),
        ({"kernelRadius": 1}, {"binWidth": 10, "force2D": True, "weightingNorm": "euclidean"}),
    ):
        extract(
            image,
            mask,
            {"featureClass": texture, "setting": setting, "voxelSetting": voxel_setting},
            voxel_based=True,
        )
    return result


def _warmup_for(params: ExtractionParams, voxel_based: bool, image, mask, values) -> dict[str, Any]:
    """:func:`warmup` of the classes `params` enable, with the settings that pick kernels."""
    s = params.settings
    setting: dict[str, Any] = {"binWidth": 10, "distances": list(s.distances)}
    if s.weighting_norm is not None:
        setting["weightingNorm"] = s.weighting_norm
    planar = {"force2D": True, "force2Ddimension": s.force_2d_dimension} if s.force_2d else {}
    if voxel_based:
        classes = {c: None for c in params.feature_classes if c in _VOXEL_COMPILED}
        if not classes:
            return {}
        voxel_setting = {"kernelRadius": 1, "maskedKernel": params.voxel_settings.masked_kernel}
        extract(
            image,
            mask,
            {"featureClass": classes, "setting": setting | planar, "voxelSetting": voxel_setting},
            voxel_based=True,
        )
        return {}
    # Every feature of each enabled class: which kernels run depends on the features asked for.
    classes = {
        c: [f.name for f in family_module(c).FEATURES]
        for c in params.feature_classes
        if c in _COMPILED and c != "shape2D"
    }
    result: dict[str, Any] = {}
    if classes:
        result = extract(image, mask, {"featureClass": classes, "setting": setting | planar})
    if "shape2D" in params.feature_classes:
        result.update(_warmup_flat(values, {"shape2D": None}, setting))
    return result


def _warmup_flat(values, classes: dict[str, Any], setting: dict[str, Any]) -> dict[str, Any]:
    """A one-slice extraction with ``force2D`` (shape2D runs only on a one-voxel-thick ROI)."""
    flat = np.zeros((1, 7, 8), np.uint8)
    flat[0, 1:6, 1:7] = 1
    return extract(
        sitk.GetImageFromArray(values[:1]),
        sitk.GetImageFromArray(flat),
        {
            "featureClass": classes,
            "setting": {**setting, "binWidth": 10, "force2D": True, "force2Ddimension": 0},
        },
    )


# -- inputs -------------------------------------------------------------------


@dataclass
class _Volume:
    """What the extraction reads from its inputs.

    ``image`` and ``mask`` are the part read (the whole volume or a box of
    it, on the same grid), ``offset_xyz`` the box's first index in the volume.
    ``grid_mask`` is a mask on the whole volume's grid, for resampling
    (whose new grid PyRadiomics aligns on the mask's first voxel).
    ``summarise(moments)`` and ``mask_hash()`` stream the whole image and
    mask (:func:`diagnostics.volume_summary`). ``mask_hash_started`` and
    ``summary_started``, when set, are these already running, started as soon as
    the file was read (the summary with moments when the settings normalise).
    """

    image: sitk.Image
    mask: sitk.Image
    image_source: str
    mask_source: str
    offset_xyz: tuple[int, int, int]
    volume_size_xyz: tuple[int, ...]
    volume_spacing_xyz: tuple[float, ...]
    mask_size_xyz: tuple[int, ...]
    mask_spacing_xyz: tuple[float, ...]
    cropped: bool
    grid_mask: Callable[[], sitk.Image] | None
    summarise: Callable[[bool], dict[str, Any]]
    mask_hash: Callable[[], str]
    mask_hash_started: Future | None = None
    summary_started: Future | None = None


def _open(image, mask, params: ExtractionParams, voxel_based: bool = False) -> _Volume:
    if is_dataarray(image) or is_dataarray(mask):
        if not (is_dataarray(image) and is_dataarray(mask)):
            raise InputError("mask", "give image and mask both as store DataArrays, or neither")
        return _open_store(roi_source(image, mask), params, voxel_based)
    # The mask first: it is read (or prefetched) sooner than a large image, and its
    # whole-volume hash then streams while the image is still being read. An unreadable
    # image is still the error reported when both are.
    mask_error, hashing = None, None
    try:
        mask_source, mask = _load(mask, "mask")
    except InputError as err:
        mask_error = err
    else:
        if params.settings.additional_info:
            hashing = _start_mask_hash(mask)
    try:
        image_source, image = _load(image, "image")
    except InputError:
        if hashing is not None:
            hashing.cancel()
        raise
    if mask_error is not None:
        raise mask_error
    return _open_images(image, mask, image_source, mask_source, params, voxel_based, hashing)


def _start_mask_hash(mask: sitk.Image) -> Future | None:
    """The mask's hash (:func:`diagnostics.volume_summary`), started in the background.

    Only for a one-component integer mask: :func:`_scalar_mask` takes it as it is, so
    this is the hash of the mask the extraction uses (otherwise it is taken later).
    """
    if mask.GetNumberOfComponentsPerPixel() != 1 or mask.GetPixelID() in _FLOAT_PIXELS:
        return None
    return _start_pass(_hash_mask, mask)


def _start_pass(whole_volume_pass: Callable, image: sitk.Image, *args: Any) -> Future:
    """``whole_volume_pass(image, *args)`` started in the whole-volume pool.

    The task takes the image, not a view of it, so that it holds the image its view reads
    (SimpleITK frees the buffer with the image) whatever the caller drops meanwhile. The
    image's buffer is made its own here first (``MakeUnique``, which every view does: a copy
    when the buffer is shared), so that two threads never replace it at once.
    """
    image.MakeUnique()
    return _whole_volume_pool().submit(whole_volume_pass, image, *args)


def _hash_mask(mask: sitk.Image) -> str:
    return diagnostics.volume_summary(sitk.GetArrayViewFromImage(mask), as_uint32=True)["hash"]


def _summarise(image: sitk.Image, moments: bool) -> dict[str, Any]:
    return diagnostics.volume_summary(sitk.GetArrayViewFromImage(image), moments=moments)


def _load(item, what: str) -> tuple[str, sitk.Image]:
    if isinstance(item, sitk.Image):
        return what, item
    if isinstance(item, (str, PathLike)):
        return str(item), read_image(item)
    raise InputError(
        what,
        f"expected a file path, a SimpleITK.Image or a store DataArray, got {type(item).__name__}",
    )


_FLOAT_PIXELS = (sitk.sitkFloat32, sitk.sitkFloat64)


def _scalar_mask(
    mask: sitk.Image, settings: Settings, source: str, *, whole_volume: bool = True
) -> sitk.Image:
    """PyRadiomics' ``getMask``: one component of a vector mask, integer labels.

    Unlike PyRadiomics, values that cannot be labels (fractional, or an image
    given as the mask) are refused (:func:`check_label_values`), not truncated.
    """
    components = mask.GetNumberOfComponentsPerPixel()
    if components > 1:
        if settings.label_channel >= components:
            raise InputError(
                source,
                f"label_channel {settings.label_channel} requested, but the mask has "
                f"{components} components",
            )
        mask = sitk.VectorIndexSelectionCast(mask, settings.label_channel)
    check_label_values(mask, source=source, whole_volume=whole_volume)
    if mask.GetPixelID() in _FLOAT_PIXELS:
        mask = sitk.Cast(mask, sitk.sitkUInt32)  # whole numbers (checked), as PyRadiomics
    return mask


def _check_finite(values: np.ndarray, source: str) -> None:
    if np.issubdtype(values.dtype, np.floating):
        bad = np.count_nonzero(~np.isfinite(values))
        if bad:
            raise InputError(
                source,
                f"{bad} voxel(s) hold NaN or infinite intensities in the region read "
                "around the ROI; fill them (e.g. with the background value) first",
            )


def _crop(image: sitk.Image, region_zyx) -> sitk.Image:
    """A box of `image` (numpy slices, (z, y, x)), geometry kept.

    SimpleITK's slicing, without its overhead.
    """
    out = sitk.GetImageFromArray(sitk.GetArrayViewFromImage(image)[tuple(region_zyx)])
    out.SetSpacing(image.GetSpacing())
    out.SetDirection(image.GetDirection())
    out.SetOrigin(image.TransformIndexToPhysicalPoint([int(r.start) for r in region_zyx[::-1]]))
    return out


def _open_images(
    image: sitk.Image,
    mask: sitk.Image,
    image_source: str,
    mask_source: str,
    params: ExtractionParams,
    voxel_based: bool = False,
    mask_hash_started: Future | None = None,
) -> _Volume:
    settings = params.settings
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(
            image_source,
            f"expected one value per voxel, got {image.GetNumberOfComponentsPerPixel()}",
        )
    if image.GetDimension() != 3:
        raise InputError(image_source, f"expected a 3D image, got {image.GetDimension()}D")
    summary_started = None
    if settings.additional_info:  # the diagnostics' pass over the image, while this checks
        summary_started = _start_pass(_summarise, image, settings.normalize)
    scalar = _scalar_mask(mask, settings, mask_source)
    if scalar is not mask and mask_hash_started is not None:  # the hash of another mask
        mask_hash_started.cancel()
        mask_hash_started = None
    mask = scalar
    whole_image, whole_mask = image, mask

    def summarise(moments: bool) -> dict[str, Any]:
        return _summarise(whole_image, moments)

    def mask_hash() -> str:
        return _hash_mask(whole_mask)

    common = {
        "image_source": image_source,
        "mask_source": mask_source,
        "volume_size_xyz": image.GetSize(),
        "volume_spacing_xyz": image.GetSpacing(),
        "mask_size_xyz": mask.GetSize(),
        "mask_spacing_xyz": mask.GetSpacing(),
        "summarise": summarise,
        "mask_hash": mask_hash,
        "mask_hash_started": mask_hash_started,
        "summary_started": summary_started,
    }

    tolerance = settings.geometry_tolerance or DEFAULT_GEOMETRY_TOLERANCE
    same_grid = (
        image.GetDimension() == mask.GetDimension()
        and _geometry_mismatch(image, mask, tolerance) is None
    )
    if not same_grid:
        # PyRadiomics' own path on the whole images (checkMask reports or corrects).
        _check_finite(sitk.GetArrayViewFromImage(image), image_source)
        return _Volume(
            image=image,
            mask=mask,
            offset_xyz=(0, 0, 0),
            cropped=False,
            grid_mask=lambda: whole_mask,
            **common,
        )
    box = roi_bounding_box(mask, label=settings.label, source=mask_source)
    bbox_zyx = box.slices_zyx()
    shape_zyx = image.GetSize()[::-1]
    if voxel_based or params.map_summary is not None:  # the maps' box: ROI box + kernelRadius
        bbox_zyx = voxel.read_bbox(bbox_zyx, shape_zyx, params)
    region, needs_grid = read_region(params, bbox_zyx, shape_zyx, image.GetSpacing()[::-1])
    lower_xyz = tuple(s.start for s in region[::-1])
    image_crop, mask_crop = _crop(image, region), _crop(mask, region)
    _check_finite(sitk.GetArrayViewFromImage(image_crop), image_source)
    return _Volume(
        image=image_crop,
        mask=mask_crop,
        offset_xyz=lower_xyz,
        cropped=region != tuple(slice(0, n) for n in shape_zyx),
        grid_mask=(lambda: whole_mask) if needs_grid else None,
        **common,
    )


def _open_store(source: RoiSource, params: ExtractionParams, voxel_based: bool = False) -> _Volume:
    """The part of a store volume the extraction reads: the ROI's box and the filters' margin."""
    settings = params.settings
    image_source, mask_source = source.image_name, source.mask_name
    label = settings.label
    bbox_zyx = source.label_box(label)
    if bbox_zyx is None:
        raise InputError(mask_source, f"Label ({label}) not present in mask (empty ROI)")
    shape_zyx, spacing_zyx = source.shape_zyx, source.spacing_zyx
    if voxel_based or params.map_summary is not None:  # the maps' box: ROI box + kernelRadius
        bbox_zyx = voxel.read_bbox(bbox_zyx, shape_zyx, params)
    region, needs_grid = read_region(params, bbox_zyx, shape_zyx, spacing_zyx)
    image_crop, mask_box = source.read(region)
    mask_crop = _scalar_mask(mask_box, settings, mask_source, whole_volume=False)
    _check_finite(sitk.GetArrayViewFromImage(image_crop), image_source)
    lower_xyz = tuple(s.start for s in region[::-1])

    def grid_mask() -> sitk.Image:
        # The mask's whole grid with only the box read (resampling aligns on voxel 0).
        whole = np.zeros(shape_zyx, dtype=sitk.GetArrayViewFromImage(mask_crop).dtype)
        whole[region] = sitk.GetArrayViewFromImage(mask_crop)
        out = sitk.GetImageFromArray(whole)
        out.SetSpacing(spacing_zyx[::-1])
        out.SetDirection(source.direction_xyz)
        origin = image_crop.TransformIndexToPhysicalPoint([-i for i in lower_xyz])
        out.SetOrigin(origin)
        return out

    return _Volume(
        image=image_crop,
        mask=mask_crop,
        image_source=image_source,
        mask_source=mask_source,
        offset_xyz=lower_xyz,
        volume_size_xyz=shape_zyx[::-1],
        volume_spacing_xyz=spacing_zyx[::-1],
        mask_size_xyz=shape_zyx[::-1],
        mask_spacing_xyz=spacing_zyx[::-1],
        cropped=region != tuple(slice(0, n) for n in shape_zyx),
        grid_mask=grid_mask if needs_grid else None,
        summarise=lambda moments: source.image_summary(moments=moments),
        mask_hash=source.mask_hash,
    )


# -- the extraction -----------------------------------------------------------


def _mapping(settings: Settings) -> dict[str, Any]:
    """PyRadiomics-keyed settings, as the filters read them."""
    mapping = settings.to_mapping()
    mapping["label"] = settings.label
    return mapping


@functools.lru_cache(maxsize=1)
def _whole_volume_pool() -> ThreadPoolExecutor:
    # One per process: starting threads for every ROI costs more than a small ROI's
    # whole-volume pass when the cores are busy.
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="radflow-whole-volume")


class _Extraction:
    """The steps of PyRadiomics' ``execute`` on one volume (not reused)."""

    def __init__(
        self,
        params: ExtractionParams,
        settings: Settings,
        volume: _Volume,
        voxel_based=False,
        habitats=None,
    ):
        self.habitats = habitats  # the ROI's habitat map, for the habitat class
        self.params = params
        self.settings = settings
        self.volume = volume
        self.voxel_based = voxel_based
        self.info = settings.additional_info
        self.out: dict[str, Any] = {}
        self._summary_diagnostics: dict[str, Any] = {}  # of mapSummary (segment mode)
        self._summary: Future | None = None
        self._mask_hash: Future | None = None

    def run(self) -> dict[str, Any]:
        # The whole-volume passes (image statistics and hash, mask hash) run beside
        # the extraction: hashlib and NumPy release the GIL while they stream.
        try:
            if self._needs_whole_volume():
                v = self.volume
                # started with moments when the settings normalise: all that is needed
                self._summary = v.summary_started or _whole_volume_pool().submit(
                    v.summarise, self.settings.normalize and v.cropped
                )
                if self.info:
                    self._mask_hash = v.mask_hash_started or _whole_volume_pool().submit(
                        v.mask_hash
                    )
            return self._run()
        finally:
            for future in (self._summary, self._mask_hash):
                if future is not None:
                    future.cancel()  # not needed after an error; a no-op once done

    def _needs_whole_volume(self) -> bool:
        s, v = self.settings, self.volume
        intensity = any(t in _INTENSITY_TYPES for t in self.params.image_types)
        on_volume_grid = not (s.resampling or s.pre_crop)
        return self.info or (v.cropped and (s.normalize or (intensity and on_volume_grid)))

    def _stats(self) -> dict[str, Any]:
        """Whole-volume statistics (:func:`diagnostics.volume_summary`)."""
        return self._summary.result()

    def _run(self) -> dict[str, Any]:
        s, v = self.settings, self.volume
        label = s.label
        image, mask = v.image, v.mask
        stages: dict[str, Any] = {}  # diagnostics of the steps after loading, in PyRadiomics' order
        if s.normalize:
            image = self._normalise(image)
        # Until resampled or pre-cropped, the image in hand is the volume or a box of
        # it: each filter then gets its own smaller box and the volume's size and max |x|.
        on_volume_grid = not (s.resampling or s.pre_crop)

        if s.resampling:
            grid = v.grid_mask() if v.grid_mask is not None else mask
            image, mask = resample_image_and_mask(
                image,
                grid,
                spacing_xyz=s.resampled_spacing_xyz,
                interpolator=s.interpolator,
                label=label,
                pad_distance=s.pad_distance,
                source=v.mask_source,
            )
            if self.info:
                stages.update(
                    diagnostics.image_entries(
                        "interpolated",
                        spacing_xyz=image.GetSpacing(),
                        size_xyz=image.GetSize(),
                        image=image,
                    )
                )
                stages.update(diagnostics.mask_entries("interpolated", mask, label, image=image))

        box, mask = self._check(image, mask, stages)
        roi_mask = mask
        if s.resegment_range is not None:
            roi_mask = resegment(
                image,
                mask,
                range_=s.resegment_range,
                mode=s.resegment_mode,
                label=label,
                source=v.mask_source,
            )
            box, _ = self._check(image, roi_mask, None)
            if self.info:
                stages.update(
                    diagnostics.mask_entries(
                        "resegmented",
                        roi_mask,
                        label,
                        image=image,
                        **self._grid(on_volume_grid and v.cropped),
                    )
                )

        shape_mask = roi_mask if s.resegment_shape else mask
        self._shape(image, shape_mask, box)
        self._habitat()
        self._filtered(image, roi_mask, box, on_volume_grid)
        if not self.info:
            return self.out
        stages.update(self._summary_diagnostics)
        summary, mask_hash = self._summary.result(), self._mask_hash.result()
        mapping = _mapping(s)
        if self.voxel_based:
            mapping = voxel.settings_entries(mapping, self.params)
        info = {
            **diagnostics.versions(),
            **diagnostics.configuration(mapping, self.params.image_types),
        }
        info.update(
            diagnostics.image_entries(
                "original",
                spacing_xyz=v.volume_spacing_xyz,
                size_xyz=v.volume_size_xyz,
                summary=summary,
            )
        )
        info.update(
            diagnostics.mask_entries(
                "original",
                v.mask,
                label,
                offset_xyz=v.offset_xyz,
                spacing_xyz=v.mask_spacing_xyz,
                size_xyz=v.mask_size_xyz,
                mask_hash=mask_hash,
            )
        )
        return {**info, **stages, **self.out}

    def _grid(self, part_of_volume: bool) -> dict[str, Any]:
        """Where the image in hand lies.

        A part of the volume, or PyRadiomics' own (resampled or cropped) image.
        """
        v = self.volume
        if not part_of_volume:
            return {}
        return {
            "offset_xyz": v.offset_xyz,
            "spacing_xyz": v.mask_spacing_xyz,
            "size_xyz": v.mask_size_xyz,
        }

    def _check(self, image, mask, info):
        s, v = self.settings, self.volume
        box, corrected = check_mask(
            image,
            mask,
            label=s.label,
            geometry_tolerance=s.geometry_tolerance,
            correct_mask=s.correct_mask,
            minimum_roi_dimensions=s.minimum_roi_dimensions,
            minimum_roi_size=s.minimum_roi_size,
            source=v.mask_source,
        )
        if corrected is not None:
            mask = corrected
            if info is not None and self.info:
                info.update(diagnostics.mask_entries("corrected", mask, s.label, image=image))
        return box, mask

    def _finite_stats(self, what: str) -> dict[str, Any]:
        """Whole-volume statistics that `what` depends on; an error if a voxel is not finite.

        Voxels outside the region read may be NaN or infinite (the region itself
        is checked): they would turn every value of the ROI into NaN or 0.
        """
        stats = self._stats()
        if stats.get("nonfinite"):
            raise InputError(
                self.volume.image_source,
                f"{what}: the whole image's statistics are not finite, {stats['nonfinite']} "
                "voxel(s) of the image are NaN or infinite; fill them (e.g. with the background "
                "value) first",
            )
        return stats

    # normalisation over the whole volume, applied to the part read
    def _sigma(self) -> tuple[float, float]:
        stats = self._finite_stats("normalize")
        n = stats["count"]
        # ITK's StatisticsImageFilter: unbiased variance, as SimpleITK's Normalize uses it.
        variance = (stats["sum_squares"] - stats["sum"] * stats["sum"] / n) / (n - 1)
        return stats["mean"], math.sqrt(variance)

    def _normalise(self, image: sitk.Image) -> sitk.Image:
        s = self.settings
        if not self.volume.cropped:
            return normalise(image, scale=s.normalize_scale, remove_outliers=s.remove_outliers)
        return self._normalise_part(image)

    def _normalise_part(self, image: sitk.Image) -> sitk.Image:
        """SimpleITK's Normalize (a float64 shift-scale) with the whole volume's mean and sigma."""
        mean, sigma = self._sigma()
        out = sitk.ShiftScale(sitk.Cast(image, sitk.sitkFloat64), -mean, 1.0 / sigma)
        if self.settings.remove_outliers is not None:
            bound = float(self.settings.remove_outliers)
            out = sitk.Clamp(out, lowerBound=-bound, upperBound=bound)
        return out * float(self.settings.normalize_scale)

    def _volume_max_abs(self, image: sitk.Image) -> float:
        """max |x| of the (normalised) volume, which the intensity filters scale by."""
        if not self.volume.cropped:  # the image in hand is the whole volume
            values = sitk.GetArrayViewFromImage(image)
            return max(abs(float(values.min())), abs(float(values.max())))
        if self.settings.normalize:
            return self._normalised_max_abs()
        return self._finite_stats("Square, SquareRoot, Logarithm, Exponential")["max_abs"]

    def _normalised_max_abs(self) -> float | None:
        """max |x| of the normalised whole volume: the normalised extremes, same arithmetic."""
        if not self.volume.cropped:
            return None
        stats = self._stats()
        extremes = sitk.GetImageFromArray(
            np.array([[[stats["minimum"], stats["maximum"]]]], dtype=np.float64)
        )
        # A copy: a view of a temporary image would read memory freed with it.
        return float(np.max(np.abs(sitk.GetArrayFromImage(self._normalise_part(extremes)))))

    # shape features on the original image
    def _shape(self, image: sitk.Image, mask: sitk.Image, box) -> None:
        s = self.settings
        classes = self.params.feature_classes
        wanted = [
            c for c in _SHAPE if c in classes
        ]  # shape before shape2D, whatever the file's order
        if not wanted:
            return
        if self.voxel_based:  # no voxel mode for shape; the diagnostics say so
            if self.info:
                self.out.update(voxel.skipped_note(self.params))
            return
        roi = sitk.GetArrayViewFromImage(mask)[box.slices_zyx()] == s.label
        spacing_zyx = image.GetSpacing()[::-1]
        for name in wanted:
            names = _feature_names(name, classes[name])
            if name == "shape":
                values = family_module("shape").compute(
                    roi, spacing_zyx=spacing_zyx, features=names
                )
            elif name == "skeleton":
                try:
                    values = family_module("skeleton").compute(
                        roi,
                        spacing_zyx=spacing_zyx,
                        skeleton_spacing=s.skeleton_spacing,
                        features=names,
                    )
                except ValueError as exc:  # an ROI lost on the skeleton grid: this mask's fault
                    if isinstance(exc, (InputError, SettingsError)):
                        raise
                    raise InputError(self.volume.mask_source, f"skeleton: {exc}") from None
            else:
                if not (s.force_2d and box.size_xyz[s.force_2d_dimension] > 1):
                    # PyRadiomics logs a warning and skips shape2D (see the module docstring).
                    continue
                try:
                    values = family_module("shape2D").compute(
                        roi,
                        spacing_zyx=spacing_zyx,
                        features=names,
                        force2d_dimension=s.force_2d_dimension,
                    )
                except ValueError as exc:
                    if isinstance(exc, (InputError, SettingsError)):
                        raise
                    raise InputError(self.volume.mask_source, f"shape2D: {exc}") from None
            self.out.update({f"original_{name}_{k}": values[k] for k in names})

    # habitat features of the ROI's habitat map, once per ROI
    def _habitat(self) -> None:
        classes = self.params.feature_classes
        if _HABITAT not in classes or self.voxel_based:  # no voxel mode for habitats
            return
        habitats, spacing_zyx, n_habitats = _habitat_map(self.habitats, self.volume.mask_source)
        count = self.settings.habitat_count
        if count is not None:  # the parameter file's K: a table's columns
            if n_habitats > count:
                raise InputError(
                    self.volume.mask_source,
                    f"the ROI's habitat map has {n_habitats} habitats, setting habitatCount is "
                    f"{count}: set habitatCount to the habitat model's number of habitats",
                )
            n_habitats = count
        names = habitat_names(n_habitats, classes[_HABITAT])
        values = habitat_features(habitats, spacing_zyx, n_habitats)
        self.out.update({f"original_{_HABITAT}_{k}": values[k] for k in names})

    # filtered images and the intensity and texture classes
    def _filtered(self, image, mask, box, on_volume_grid: bool) -> None:
        classes = {
            c: names
            for c, names in self.params.feature_classes.items()
            if c not in _SHAPE and c != _HABITAT  # habitat: once per ROI (_habitat)
        }
        summary = None if self.voxel_based else self.params.map_summary
        if not classes and summary is None:
            return
        if (
            mask.GetOrigin() != image.GetOrigin()
            or mask.GetSpacing() != image.GetSpacing()
            or mask.GetDirection() != image.GetDirection()
        ):
            # Within geometryTolerance the grids are one, as for PyRadiomics (it indexes both
            # alike).
            mask = sitk.Image(mask)
            mask.CopyInformation(image)
        spacing_zyx = tuple(image.GetSpacing()[::-1])
        shape_zyx = tuple(image.GetSize()[::-1])
        roi_box = box.slices_zyx()
        if self.voxel_based:  # PyRadiomics crops each filtered image to this box
            roi_box = voxel.padded_box(roi_box, shape_zyx, self.params)
            voxel.check_memory(_box_shape(roi_box), self.params, classes, _feature_names)
        # mapSummary: the maps' box (PyRadiomics' voxel-mode crop) holds the ROI box
        map_box = voxel.padded_box(roi_box, shape_zyx, self.params) if summary else roi_box
        if summary is not None:
            map_summary.check_memory(_box_shape(map_box), self.params)
            nan_voxels: dict[str, int] = {}
        volume = {}
        if on_volume_grid:
            volume["source_shape_zyx"] = self.volume.volume_size_xyz[::-1]
            if any(t in _INTENSITY_TYPES for t in self.params.image_types):
                volume["source_max_abs"] = self._volume_max_abs(image)
        for image_type in self.params.image_types:
            s = self.params.settings_for(image_type)
            part, part_mask, crop, map_crop = image, mask, roi_box, map_box
            if on_volume_grid:  # filter only the box this type needs (its own margin)
                region = read_box(
                    self.params, None, map_box, shape_zyx, spacing_zyx, types=(image_type,)
                )
                part, part_mask = _crop(image, region), _crop(mask, region)
                crop, map_crop = (
                    tuple(slice(b.start - r.start, b.stop - r.start) for b, r in zip(a, region))
                    for a in (roi_box, map_box)
                )
            roi = sitk.GetArrayViewFromImage(part_mask)[crop] == self.settings.label
            for name, filtered, _ in image_types(
                part, part_mask, self.params, types=(image_type,), **volume
            ):
                values = sitk.GetArrayViewFromImage(filtered)[crop]
                if self.voxel_based:
                    self.out.update(
                        voxel.maps(
                            name,
                            values,
                            roi,
                            filtered,
                            crop,
                            s,
                            self.params,
                            classes,
                            _feature_names,
                        )
                    )
                    continue
                binned = None
                for cls, names in classes.items():
                    names = _feature_names(cls, names)
                    if binned is None and (cls != "firstorder" or _HISTOGRAM.intersection(names)):
                        binned, _ = discretise(
                            values, roi, bin_width=s.bin_width, bin_count=s.bin_count
                        )
                    result = _compute_class(cls, values, roi, binned, spacing_zyx, s, names)
                    self.out.update({f"{name}_{cls}_{k}": result[k] for k in names})
                if summary is not None:
                    map_roi = sitk.GetArrayViewFromImage(part_mask)[map_crop] == self.settings.label
                    self.out.update(
                        map_summary.summarise(
                            name,
                            sitk.GetArrayViewFromImage(filtered)[map_crop],
                            map_roi,
                            s,
                            self.params,
                            spacing_zyx,
                            nan_voxels,
                        )
                    )
        if summary is not None:
            self._summary_diagnostics = map_summary.diagnostics(int(roi.sum()), nan_voxels)


def _box_shape(box_zyx) -> tuple[int, ...]:
    return tuple(b.stop - b.start for b in box_zyx)


def _habitat_map(habitats, mask_source: str) -> tuple[np.ndarray, tuple[float, ...], int]:
    """The habitat map in its box (the ROI's), its spacing (z, y, x, mm) and K."""
    if habitats is None:
        raise InputError(
            mask_source,
            "the habitat feature class needs the ROI's habitat map: run `radflow habitats fit` "
            "and `radflow habitats apply` on the store, then `radflow run` (or remove habitat "
            "from featureClass)",
        )
    record = None
    if is_dataarray(habitats):
        box = label_box(habitats)
        if box is None:
            raise InputError(str(habitats.name), "habitat map is empty (no nonzero voxel)")
        image = box_image(habitats, box)
        record = habitats.attrs.get("habitats")
        source = str(habitats.name)
    else:
        source, image = _load(habitats, "habitats")
    values = sitk.GetArrayFromImage(image)
    if values.dtype.kind not in "iu":
        raise InputError(source, f"habitat map must hold integers, got {values.dtype}")
    box = bounding_box(values != 0)
    if box is None:
        raise InputError(source, "habitat map is empty (no nonzero voxel)")
    if isinstance(record, dict) and "n_habitats" in record:
        n_habitats = int(record["n_habitats"])
    else:
        n_habitats = int(values.max())
    return values[box], tuple(image.GetSpacing()[::-1]), n_habitats


def _feature_names(family: str, names) -> list[str]:
    """Enabled names in PyRadiomics' order: the list as given, or the defaults in its order.

    PyRadiomics finds its features with ``dir()``, so the defaults come sorted
    by method name, ``get<Name>FeatureValue`` ("MeanAbsoluteDeviation" before "Mean").
    """
    if names is not None:
        skipped = NOT_RETURNED.get(family, frozenset())
        return [name for name in names if name not in skipped]
    return sorted(
        (f.name for f in family_module(family).FEATURES if f.default),
        key="get{}FeatureValue".format,
    )


def _compute_class(
    cls: str, values, roi, binned, spacing_zyx, s: Settings, names
) -> dict[str, float]:
    module = family_module(cls)
    if cls == "firstorder":
        return module.compute(
            values,
            roi,
            binned,
            spacing_zyx=spacing_zyx,
            voxel_array_shift=s.voxel_array_shift,
            features=names,
        )
    planar = {"force2d": s.force_2d, "force2d_dimension": s.force_2d_dimension}
    if cls == "glcm":
        return module.compute(
            binned,
            roi,
            distances=s.distances,
            symmetric=s.symmetrical_glcm,
            weighting_norm=s.weighting_norm,
            spacing_zyx=spacing_zyx,
            features=names,
            **planar,
        )
    if cls == "glrlm":
        return module.compute(
            binned,
            roi,
            weighting_norm=s.weighting_norm,
            spacing_zyx=spacing_zyx,
            features=names,
            **planar,
        )
    if cls == "glszm":
        return module.compute(binned, roi, features=names, **planar)
    if cls == "gldm":
        return module.compute(
            binned, roi, distances=s.distances, gldm_a=s.gldm_a, features=names, **planar
        )
    if cls == "ngtdm":
        return module.compute(binned, roi, distances=s.distances, features=names, **planar)
    raise SettingsError(
        f"feature class {cls!r} is not computed on filtered images"
    )  # pragma: no cover
