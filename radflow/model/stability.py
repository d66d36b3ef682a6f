"""Feature robustness by image perturbation: re-extract every ROI of a store under
small perturbations and measure, per feature, the ICC across them.

A feature is worth modelling only if it measures the patient rather than the
acquisition or the contour. Following Zwanenburg et al. (2019), each ROI is
extracted again after perturbations that mimic test-retest variation:

=============  ===========================================================
perturbation   what changes
=============  ===========================================================
``original``   nothing (the reference rater)
``erode:1``    the ROI shrunk by 1 voxel (6-neighbour cross: along each axis)
``dilate:1``   the ROI grown by 1 voxel
``noise:S``    Gaussian noise of standard deviation S added to the image, in
               image units (HU for CT, SUV for PET); ``noise:S:SEED`` draws
               another realisation
``rotate:D``   image and ROI rotated together by D degrees about the slice
               normal through the ROI's centroid (linear interpolation; the
               ROI is the resampled mask thresholded at 0.5)
``translate:Z,Y,X``  image and ROI moved together by (Z, Y, X) mm along the
               patient axes (sub-voxel shifts resample the image)
=============  ===========================================================

Subjects are the ROIs and raters the perturbations: an ICC near 1 means
the differences between ROIs dwarf what the perturbations change. A GTV's
feature and an organ's, or a CT's and a PET's, are different variables, so
the ICC is computed per (modality, ROI name), over the patients' ROIs of that
name; features are named as the columns of :func:`radflow.model.study.load_study`
(``CT.gtv.original_glcm_Contrast``), so the table feeds
:class:`radflow.model.selection.ICCFilter` directly.

Each ROI is read from the store as its bounding box plus the margin the
filters and the perturbations need, perturbed and extracted with
:func:`radflow.extract` one perturbation at a time; only the feature values
are kept, so memory does not grow with the number of ROIs. The box is
the whole image as far as the extraction knows: image types scaled by the
whole volume's maximum (square, exponential...) and resampled grids are
relative to the box, the same for every perturbation.

References
----------
Zwanenburg A, Leger S, Agolli L, et al. Assessing robustness of radiomic
features by image perturbation. Sci Rep 2019;9:614. doi:10.1038/s41598-018-36938-4
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import SimpleITK as sitk

from radflow._geometry import grid_difference, grow_box
from radflow.errors import InputError, RadflowError, SettingsError
from radflow.extraction.extractor import extract
from radflow.extraction.region import read_region
from radflow.io.records import roi_key
from radflow.model._defaults import DEFAULT_PERTURBATIONS  # free of image units; add noise:S
from radflow.model.icc import icc_long
from radflow.params.pyradiomics_params import load_params
from radflow.store import convert, read
from radflow.store.catalogue import list_series
from radflow.store.read import open_label, roi_bbox

__all__ = [
    "DEFAULT_PERTURBATIONS",
    "Perturbation",
    "RoiPerturbations",
    "StabilityResult",
    "parse_perturbation",
    "perturb",
    "perturbed_features",
    "stability_study",
]

logger = logging.getLogger(__name__)

KINDS = ("original", "erode", "dilate", "noise", "rotate", "translate")
# A mask on the image's grid: spacing, origin and direction equal to 1e-5 (relative beyond 1).
_SAME_GRID = {"spacing": 1e-5, "origin": 1e-5, "direction": 1e-5}


@dataclass(frozen=True)
class Perturbation:
    """One perturbation of an image and its ROI.

    Attributes
    ----------
    kind : str
        One of ``original``, ``erode``, ``dilate``, ``noise``, ``rotate``, ``translate``.
    amount : float or tuple of 3 float
        Voxels (erode, dilate: a whole number >= 1); standard deviation in
        image units (noise, > 0); degrees (rotate, at most 180 in magnitude);
        mm along (z, y, x) (translate). Ignored for ``original``.
    seed : int
        Noise realisation (noise only), >= 0.
    """

    kind: str
    amount: float | tuple[float, float, float] = 0.0
    seed: int = 0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise SettingsError(
                f"perturbation kind {self.kind!r} is unknown; known: {', '.join(KINDS)}"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise SettingsError(f"perturbation seed must be an integer >= 0, got {self.seed!r}")
        amount = self.amount
        if self.kind == "translate":
            try:
                amount = tuple(float(a) for a in amount)
            except TypeError:
                amount = ()
            if len(amount) != 3 or not all(math.isfinite(a) for a in amount):
                raise SettingsError(
                    f"translate needs 3 finite shifts (z, y, x) in mm, got {self.amount!r}"
                )
        else:
            if (
                isinstance(amount, bool)
                or not isinstance(amount, int | float)
                or not math.isfinite(amount)
            ):
                raise SettingsError(
                    f"{self.kind} amount must be a finite number, got {self.amount!r}"
                )
            amount = float(amount)
            if self.kind in ("erode", "dilate") and (amount < 1 or amount != int(amount)):
                raise SettingsError(
                    f"{self.kind} amount must be a whole number of voxels >= 1, got {self.amount!r}"
                )
            if self.kind == "noise" and amount <= 0:
                raise SettingsError(
                    "noise amount (standard deviation, image units) must be > 0, "
                    f"got {self.amount!r}"
                )
            if self.kind == "rotate" and abs(amount) > 180:
                raise SettingsError(
                    f"rotate amount must be at most 180 degrees in magnitude, got {self.amount!r}"
                )
        object.__setattr__(self, "amount", 0.0 if self.kind == "original" else amount)

    @property
    def name(self) -> str:
        """Short label: ``original``, ``erode1``, ``noise20``, ``noise20-s1``, ``rotate+5``,
        ``translate0,0.5,0.5``."""
        if self.kind == "original":
            return "original"
        if self.kind == "translate":
            return "translate" + ",".join(f"{a:g}" for a in self.amount)
        text = (
            f"{self.kind}{self.amount:+g}"
            if self.kind == "rotate"
            else f"{self.kind}{self.amount:g}"
        )
        return f"{text}-s{self.seed}" if self.kind == "noise" and self.seed else text


def parse_perturbation(text) -> Perturbation:
    """A :class:`Perturbation` from ``"kind[:amount[:seed]]"`` (``"erode:1"``, ``"noise:20:1"``,
    ``"rotate:-5"``, ``"translate:0,0.5,0.5"``); a Perturbation passes through.

    Raises
    ------
    radflow.errors.SettingsError
        Unknown kind, missing or bad amount.
    """
    if isinstance(text, Perturbation):
        return text
    if not isinstance(text, str):
        raise SettingsError(f"a perturbation is a string like 'erode:1', got {text!r}")
    kind, _, rest = text.strip().partition(":")
    amount, _, seed = rest.partition(":")
    if kind == "original":
        if rest:
            raise SettingsError(f"perturbation {text!r}: 'original' takes no amount")
        return Perturbation("original")
    if not amount:
        raise SettingsError(f"perturbation {text!r} needs an amount ('{kind}:<amount>')")
    try:
        value = tuple(float(a) for a in amount.split(",")) if kind == "translate" else float(amount)
        number = int(seed) if seed else 0
    except ValueError:
        raise SettingsError(f"perturbation {text!r}: amount and seed must be numbers") from None
    return Perturbation(kind, value, number)


# -- one ROI -------------------------------------------------------------------


def perturb(
    image: sitk.Image, mask: sitk.Image, perturbation, *, seed: int = 0
) -> tuple[sitk.Image, sitk.Image]:
    """Apply one perturbation to an image and its binary ROI mask.

    Parameters
    ----------
    image : SimpleITK.Image
        3-D scalar image (HU, SUV, MR signal).
    mask : SimpleITK.Image
        ROI mask on the image's grid, 1 inside and 0 outside.
    perturbation : Perturbation or str
        See :class:`Perturbation` and :func:`parse_perturbation`.
    seed : int, optional
        Combined with the perturbation's own seed for noise, so that each
        ROI gets its own realisation (the study passes a digest of the ROI).

    Returns
    -------
    (SimpleITK.Image, SimpleITK.Image)
        The perturbed image (float32 after noise, rotation or translation,
        else the input type) and mask (uint8, 0/1), on the input grid.
        Voxels that rotation or translation brings in from outside the
        image take the nearest edge value.

    Raises
    ------
    ValueError
        Images that are not 3-D scalar, or a mask off the image grid.
    """
    p = parse_perturbation(perturbation)
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError("image must be a 3-D scalar SimpleITK image")
    if grid_difference(image, mask, _SAME_GRID, relative=True) is not None:
        raise ValueError("mask must lie on the image's grid (size, spacing, origin, direction)")
    mask = sitk.Cast(mask != 0, sitk.sitkUInt8)
    if p.kind == "original":
        return image, mask
    if p.kind in ("erode", "dilate"):
        radius = [int(p.amount)] * 3
        if p.kind == "dilate":
            return image, sitk.BinaryDilate(mask, radius, sitk.sitkCross, 0, 1)
        # Voxels outside the image are not ROI: an ROI at the image's edge erodes there too.
        return image, sitk.BinaryErode(mask, radius, sitk.sitkCross, 0, 1, False)
    if p.kind == "noise":
        rng = np.random.default_rng([p.seed, int(seed)])
        values = sitk.GetArrayFromImage(image).astype(np.float32)
        values += rng.normal(0.0, p.amount, size=values.shape).astype(np.float32)
        noisy = sitk.GetImageFromArray(values)
        noisy.CopyInformation(image)
        return noisy, mask
    if p.kind == "rotate":
        stats = sitk.LabelShapeStatisticsImageFilter()
        stats.Execute(mask)
        centre = (
            stats.GetCentroid(1)
            if stats.HasLabel(1)
            else image.TransformContinuousIndexToPhysicalPoint(
                [(n - 1) / 2 for n in image.GetSize()]
            )
        )
        transform = sitk.VersorRigid3DTransform()
        transform.SetCenter(centre)
        # Resample maps output points to input points: the inverse rotation turns the content
        # by +amount.
        normal = np.asarray(image.GetDirection(), float).reshape(3, 3)[:, 2]
        transform.SetRotation(tuple(normal), -math.radians(p.amount))
    else:
        offset_xyz = [-a for a in p.amount[::-1]]
        transform = sitk.TranslationTransform(3, offset_xyz)
    moved = sitk.Resample(
        sitk.Cast(image, sitk.sitkFloat32),
        image,
        transform,
        sitk.sitkLinear,
        0.0,
        sitk.sitkFloat32,
        True,
    )
    weight = sitk.Resample(
        sitk.Cast(mask, sitk.sitkFloat32),
        image,
        transform,
        sitk.sitkLinear,
        0.0,
        sitk.sitkFloat32,
        False,
    )
    return moved, sitk.Cast(weight >= 0.5, sitk.sitkUInt8)


# -- the study -----------------------------------------------------------------


@dataclass
class RoiPerturbations:
    """Features of one ROI of the store under every perturbation.

    ``values`` maps perturbation name -> {feature key -> value}, keys as
    :func:`radflow.extract` gives them without diagnostics
    (``original_glcm_Contrast``); a perturbation whose extraction failed is
    absent from it and listed in ``failures`` (dicts with ``perturbation``,
    ``error_type``, ``message``).
    """

    case: str
    series: str
    modality: str
    roi: str
    label_key: str
    label: int
    values: dict[str, dict[str, float]] = field(default_factory=dict)
    failures: list[dict] = field(default_factory=list)


@dataclass
class StabilityResult:
    """What :func:`stability_study` found.

    Attributes
    ----------
    icc : pandas.DataFrame
        One row per (feature, ICC form): columns ``modality, roi, feature``
        then those of :func:`radflow.model.icc.icc` after ``feature``.
        ``feature`` is the study column ``<MODALITY>.<roi>.<image type>_<class>_<feature>``.
        Subjects are the ROIs of one (modality, ROI name), raters the
        perturbations; an ROI with a failed perturbation is left out
        (``n_subjects`` counts those used).
    values : pandas.DataFrame
        The feature values: ``case, series, modality, roi, label_key, label,
        perturbation, feature, value`` (``feature`` named as in ``icc``).
    failures : pandas.DataFrame
        ``case, series, modality, roi, label_key, label, perturbation,
        error_type, message`` of each extraction that failed (e.g. an ROI
        eroded away).
    """

    icc: pd.DataFrame
    values: pd.DataFrame
    failures: pd.DataFrame


_ROI_COLUMNS = ["case", "series", "modality", "roi", "label_key", "label"]


def perturbed_features(
    store, params, *, perturbations: Sequence = DEFAULT_PERTURBATIONS, modalities=None, rois=None
) -> Iterator[RoiPerturbations]:
    """Extract every ROI of a store under each perturbation, one ROI at a time.

    Parameters
    ----------
    store : path-like
        Volume store (``radflow ingest --store``).
    params : path-like, mapping or ExtractionParams
        PyRadiomics parameter file, as for :func:`radflow.extract`.
    perturbations : sequence of str or Perturbation
        Raters of the study (:func:`parse_perturbation`); names must differ.
    modalities, rois : sequence of str, optional
        Keep only series of these modalities (``"CT"``) and ROIs of these
        keys (:func:`radflow.io.records.roi_key`, ``"gtv"``).

    Yields
    ------
    RoiPerturbations
        In store order (case, series, label image, label value). Nothing of
        an ROI's images outlives its iteration.

    Raises
    ------
    radflow.errors.SettingsError
        A bad parameter file or perturbation, or two perturbations with one name.
    radflow.errors.InputError
        Unreadable store.
    """
    extraction = load_params(params)
    raters = _raters(perturbations)
    keep_mods = (
        None
        if modalities is None
        else {str(m) for m in ([modalities] if isinstance(modalities, str) else modalities)}
    )
    keep_rois = (
        None if rois is None else {str(r) for r in ([rois] if isinstance(rois, str) else rois)}
    )
    for info in list_series(store):
        modality = info.modality or "unknown"
        if keep_mods is not None and modality not in keep_mods:
            continue
        for key in info.label_keys:
            names = open_label(store, info.case, info.series, key).attrs["rois"]
            for value, name in sorted(((int(v), n) for v, n in names.items())):
                roi = roi_key(name)
                if keep_rois is not None and roi not in keep_rois:
                    continue
                yield _one_roi(store, info, key, value, roi, modality, extraction, raters)


def stability_study(
    store,
    params,
    *,
    perturbations: Sequence = DEFAULT_PERTURBATIONS,
    modalities=None,
    rois=None,
    confidence: float = 0.95,
) -> StabilityResult:
    """Per-feature ICC across perturbations, ROIs as subjects, per (modality, ROI name).

    Parameters
    ----------
    store, params, perturbations, modalities, rois
        As for :func:`perturbed_features`.
    confidence : float, optional
        Coverage of the ICC intervals. Default 0.95.

    Returns
    -------
    StabilityResult

    Raises
    ------
    radflow.errors.InputError
        No ROI found, or no (modality, ROI name) with at least 2 ROIs.
    radflow.errors.SettingsError
        As for :func:`perturbed_features`; fewer than 2 perturbations.

    Examples
    --------
    >>> result = stability_study("store", "params.yaml",                # doctest: +SKIP
    ...                          perturbations=[*DEFAULT_PERTURBATIONS, "noise:20"],
    ...                          modalities=["CT"])
    >>> robust = result.icc.query("form == 'ICC(1,1)' and ci_low > 0.75")  # doctest: +SKIP
    """
    if len(_raters(perturbations)) < 2:
        raise SettingsError(
            "a stability study needs at least 2 perturbations (e.g. 'original' and 'erode:1')"
        )
    rows, failures = [], []
    for result in perturbed_features(
        store, params, perturbations=perturbations, modalities=modalities, rois=rois
    ):
        ident = [getattr(result, c) for c in _ROI_COLUMNS]
        prefix = f"{result.modality}.{result.roi}."
        for rater, features in result.values.items():
            rows.extend(
                (*ident, rater, prefix + feature, value) for feature, value in features.items()
            )
        failures.extend({**dict(zip(_ROI_COLUMNS, ident)), **f} for f in result.failures)
    values = pd.DataFrame(rows, columns=[*_ROI_COLUMNS, "perturbation", "feature", "value"])
    failures = pd.DataFrame(
        failures, columns=[*_ROI_COLUMNS, "perturbation", "error_type", "message"]
    )
    if values.empty:
        raise InputError(
            store, "no ROI could be extracted (check modalities=/rois= and the failures)"
        )
    tables = []
    for (modality, roi), part in values.groupby(["modality", "roi"], sort=True):
        subject = (
            part["case"]
            + "/"
            + part["series"]
            + "/"
            + part["label_key"]
            + "/"
            + part["label"].astype(str)
        )
        if subject.nunique() < 2:
            logger.warning(
                "stability: %s ROI %r occurs once; an ICC needs at least 2, skipped", modality, roi
            )
            continue
        table = icc_long(
            part.assign(subject=subject),
            subject="subject",
            rater="perturbation",
            feature="feature",
            value="value",
            confidence=confidence,
        )
        tables.append(table.assign(modality=modality, roi=roi))
    if not tables:
        raise InputError(
            store, "a stability study needs at least 2 ROIs of one modality and ROI name"
        )
    table = pd.concat(tables, ignore_index=True)
    table = table[["modality", "roi", *[c for c in table.columns if c not in ("modality", "roi")]]]
    return StabilityResult(icc=table, values=values, failures=failures)


def _raters(perturbations) -> list[Perturbation]:
    if isinstance(perturbations, str | Perturbation):
        perturbations = [perturbations]
    raters = [parse_perturbation(p) for p in perturbations]
    names = [p.name for p in raters]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise SettingsError(
            f"perturbations {twice} are given twice (for another noise draw use 'noise:S:SEED')"
        )
    return raters


def _margin_voxels(raters, region, spacing_zyx) -> np.ndarray:
    """Voxels to add around ``region`` so that no perturbation reads outside the box
    for a point of ``region`` (the ROI plus the filters' margin)."""
    spacing = np.asarray(spacing_zyx, float)
    margin = np.ones(3)  # linear interpolation reads one voxel further
    extent_mm = np.array([s.stop - s.start for s in region]) * spacing
    for p in raters:
        if p.kind == "dilate":
            margin = np.maximum(margin, p.amount + 1)
        elif p.kind == "translate":
            margin = np.maximum(margin, np.abs(p.amount) / spacing + 1)
        elif p.kind == "rotate":
            # A point at distance r from the centroid moves by 2 r sin(angle / 2).
            reach = 2 * np.linalg.norm(extent_mm) * abs(math.sin(math.radians(p.amount) / 2))
            margin = np.maximum(margin, reach / spacing + 1)
    return np.ceil(margin).astype(int)


def _read_region(store, info, key, label, extraction, raters):
    """The box the extractor reads around one ROI, grown so that every perturbation stays inside."""
    bbox = roi_bbox(store, info.case, info.series, key, label)
    shape, spacing = info.shape_zyx, info.spacing_zyx
    region, _ = read_region(extraction, bbox, shape, spacing)  # the extractor's own rule
    return grow_box(region, _margin_voxels(raters, region, spacing), shape)


def _one_roi(store, info, key, label, roi, modality, extraction, raters) -> RoiPerturbations:
    out = RoiPerturbations(
        case=info.case, series=info.series, modality=modality, roi=roi, label_key=key, label=label
    )
    try:
        region = _read_region(store, info, key, label, extraction, raters)
        image = convert.to_sitk(read.read_box(store, info.case, info.series, region))
        labels = convert.to_sitk(read.read_box(store, info.case, info.series, region, key=key))
    except RadflowError as exc:
        out.failures.extend(
            {"perturbation": p.name, "error_type": type(exc).__name__, "message": str(exc)}
            for p in raters
        )
        return out
    mask = sitk.Cast(labels == label, sitk.sitkUInt8)
    del labels
    # Each ROI its own noise: a digest of where it lies, stable across runs.
    seed = zlib.crc32(f"{info.case}/{info.series}/{key}/{label}".encode())
    for p in raters:
        try:
            moved, roi_mask = perturb(image, mask, p, seed=seed)
            result = extract(moved, roi_mask, extraction, label=1)
        except RadflowError as exc:
            out.failures.append(
                {"perturbation": p.name, "error_type": type(exc).__name__, "message": str(exc)}
            )
            continue
        out.values[p.name] = {
            k: float(v) for k, v in result.items() if not k.startswith("diagnostics_")
        }
    logger.info(
        "stability: %s/%s %s label %d: %d perturbation(s), %d failed",
        info.case,
        info.series,
        key,
        label,
        len(out.values),
        len(out.failures),
    )
    return out
