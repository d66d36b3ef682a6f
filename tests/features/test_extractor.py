"""radflow.extract: inputs (files, SimpleITK, store), errors, label override, output formats.

Numbers are checked against PyRadiomics in ``test_extractor_parity.py``;
here the same extraction reached by different inputs must give the same
result, and bad input must fail as PyRadiomics fails, with an error naming
the input.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import volumes

import radflow
from radflow.errors import InputError, SettingsError
from radflow.extraction import output
from radflow.extraction.extractor import extract, warmup
from radflow.io.records import LabelMap

PARAMS = {
    "setting": {"binWidth": 25},
    "featureClass": {"shape": None, "firstorder": None, "glcm": None},
}
FILTERS = {
    "setting": {"binWidth": 10},
    "imageType": {
        "Original": {},
        "LoG": {"sigma": [0.5]},
        "Wavelet": {},
        "Square": {},
        "Gradient": {},
    },
    "featureClass": {"firstorder": None, "glszm": None, "shape": None},
}


def _features(result):
    return {k: v for k, v in result.items() if not k.startswith("diagnostics_")}


def _assert_same(a, b, rtol=1e-9):
    assert list(a) == list(b)
    for key in a:
        if isinstance(a[key], (str, dict)):
            assert a[key] == b[key], key
        else:
            np.testing.assert_allclose(
                np.asarray(a[key], float), np.asarray(b[key], float), rtol=rtol, err_msg=key
            )


def _write(image, path):
    sitk.WriteImage(image, str(path))
    return path


def _pyradiomics_raises(image, mask, params, label=None):
    radiomics = pytest.importorskip("radiomics")
    from radiomics import featureextractor

    radiomics.setVerbosity(logging.CRITICAL)
    with pytest.raises(ValueError) as info:
        featureextractor.RadiomicsFeatureExtractor(params).execute(image, mask, label=label)
    return str(info.value)


# -- inputs ---------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".nrrd", ".nii.gz", ".mha"])
def test_file_input_equals_image_input(tmp_path, suffix):
    image, mask = volumes.ct()
    from_files = extract(
        _write(image, tmp_path / f"ct{suffix}"), _write(mask, tmp_path / f"roi{suffix}"), PARAMS
    )
    in_memory = extract(image, mask, PARAMS)
    # NIfTI stores geometry in float32: spacing-dependent features agree to ~1e-7.
    _assert_same(
        _features(from_files), _features(in_memory), rtol=1e-9 if suffix != ".nii.gz" else 1e-6
    )
    assert (
        from_files["diagnostics_Image-original_Hash"]
        == in_memory["diagnostics_Image-original_Hash"]
    )


def test_radflow_extract_is_the_extractor():
    image, mask = volumes.pet()
    assert radflow.extract(image, mask, PARAMS) == extract(image, mask, PARAMS)


def _store(tmp_path, image, mask):
    from radflow.store.read import open_label, open_volume
    from radflow.store.write import write_series

    labels = [LabelMap(key="gtv", source="labelmap", image=mask, rois={1: "GTV"})]
    write_series(tmp_path / "store", "case1", "ct", image, labels, fingerprint="test")
    return open_volume(tmp_path / "store", "case1", "ct"), open_label(
        tmp_path / "store", "case1", "ct", "gtv"
    )


@pytest.mark.parametrize(
    "params",
    [
        PARAMS,
        FILTERS,
        {
            "setting": {"binWidth": 0.1, "normalize": True, "removeOutliers": 2},
            "imageType": {"Original": {}, "Exponential": {}},
            "featureClass": {"firstorder": None},
        },
        {
            "setting": {
                "binWidth": 25,
                "resampledPixelSpacing": [1.0, 1.0, 1.0],
                "interpolator": "sitkBSpline",
            },
            "featureClass": {"firstorder": None, "shape": None, "ngtdm": None},
        },
        {
            "setting": {
                "binWidth": 25,
                "resampledPixelSpacing": [1.5, 1.5, 1.5],
                "interpolator": "sitkLinear",
            },
            "imageType": {"Original": {}, "Wavelet": {}},
            "featureClass": {"firstorder": None, "glrlm": None},
        },
        {
            "setting": {"binWidth": 25, "preCrop": True},
            "imageType": {"Original": {}, "LoG": {"sigma": [1.0]}},
            "featureClass": {"firstorder": None},
        },
    ],
    ids=["original", "filters", "normalize", "resample-bspline", "resample-linear", "precrop"],
)
def test_store_input_equals_image_input_and_reads_a_box(tmp_path, params, monkeypatch):
    image, mask = volumes.embedded(*volumes.ct(), pad_zyx=(8, 40, 40), fill=-1000)
    volume, label = _store(tmp_path, image, mask)

    from radflow.store import convert

    read = []
    sitk_box = convert.sitk_box  # every box read from the store becomes an image here
    monkeypatch.setattr(
        convert, "sitk_box", lambda values, *a: read.append(values.shape) or sitk_box(values, *a)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from_store = extract(volume, label, params)
        expected = extract(image, mask, params)
    # Whole-volume sums are taken in another order: diagnostics' means agree to rounding.
    _assert_same(from_store, expected, rtol=1e-12)
    assert read and all(np.prod(shape) < 0.5 * np.prod(volume.shape) for shape in read)


def _forget_stored_summaries(series: Path) -> None:
    """Make a series look written before the store recorded summaries and boxes."""
    for meta_file in [series / "zarr.json", *series.glob("labels/*/zarr.json")]:
        meta = json.loads(meta_file.read_text())
        for key in ("summary", "boxes"):
            meta["attributes"]["radflow"].pop(key, None)
        meta_file.write_text(json.dumps(meta))


@pytest.mark.parametrize("recorded", [True, False], ids=["recorded", "older-store"])
def test_store_volume_is_read_whole_at_most_once_for_its_rois(tmp_path, monkeypatch, recorded):
    from radflow.store import summary as store_summary

    image, mask = volumes.mr()
    if not recorded:
        from radflow.store.write import write_series

        labels = [LabelMap(key="gtv", source="labelmap", image=mask, rois={1: "GTV"})]
        _forget_stored_summaries(
            write_series(tmp_path / "store", "case1", "ct", image, labels, fingerprint="test")
        )
    volume, label = _store(tmp_path, image, mask) if recorded else _open(tmp_path)
    streamed = []
    summary = store_summary.volume_summary  # what the store streams a whole volume with
    monkeypatch.setattr(
        store_summary,
        "volume_summary",
        lambda values, **kw: streamed.append(kw) or summary(values, **kw),
    )
    first = extract(volume, label, PARAMS, label=1)
    second = extract(volume, label, PARAMS, label=2)
    # Recorded by the store when it wrote the series: nothing streamed. Older stores:
    # image and mask streamed for the first ROI only.
    assert len(streamed) == (0 if recorded else 2)
    expected = extract(image, mask, PARAMS)
    for key in (
        "Image-original_Hash",
        "Image-original_Mean",
        "Image-original_Minimum",
        "Image-original_Maximum",
        "Mask-original_Hash",
        "Mask-original_BoundingBox",
    ):
        assert first["diagnostics_" + key] == expected["diagnostics_" + key], key
    assert first["diagnostics_Image-original_Hash"] == second["diagnostics_Image-original_Hash"]
    _assert_same(second, extract(image, mask, PARAMS, label=2), rtol=1e-12)


def _open(tmp_path):
    from radflow.store.read import open_label, open_volume

    return open_volume(tmp_path / "store", "case1", "ct"), open_label(
        tmp_path / "store", "case1", "ct", "gtv"
    )


def test_store_errors_name_the_label(tmp_path):
    image, mask = volumes.ct()
    volume, label = _store(tmp_path, image, mask)
    with pytest.raises(InputError, match=r"case1/ct/gtv: Label \(7\) not present"):
        extract(volume, label, PARAMS, label=7)
    with pytest.raises(InputError, match="both as store DataArrays"):
        extract(volume, mask, PARAMS)


def test_label_argument_overrides_the_setting():
    image, mask = volumes.mr()
    by_argument = extract(image, mask, PARAMS, label=2)
    by_setting = extract(image, mask, {**PARAMS, "setting": {"binWidth": 25, "label": 2}})
    _assert_same(_features(by_argument), _features(by_setting))
    label_1 = extract(image, mask, PARAMS)
    assert by_argument["diagnostics_Mask-original_VoxelNum"] == np.count_nonzero(
        sitk.GetArrayFromImage(mask) == 2
    )
    assert label_1["original_shape_VoxelVolume"] != by_argument["original_shape_VoxelVolume"]


def test_vector_mask_channel_and_float_mask():
    image, mask = volumes.ct()
    roi = sitk.GetArrayFromImage(mask)
    vector = sitk.GetImageFromArray(np.stack([np.zeros_like(roi), roi], axis=-1), isVector=True)
    vector.CopyInformation(mask)
    expected = _features(extract(image, mask, PARAMS))
    _assert_same(_features(extract(image, vector, PARAMS, label_channel=1)), expected)
    with pytest.raises(
        InputError, match="label_channel 2 requested, but the mask has 2 components"
    ):
        extract(image, vector, PARAMS, label_channel=2)
    as_float = sitk.Cast(mask, sitk.sitkFloat32)  # whole numbers in a float mask: PyRadiomics' cast
    _assert_same(_features(extract(image, as_float, PARAMS)), expected)
    # The mask hashed is the one extracted (uint32 labels, as PyRadiomics casts them), not
    # the float or vector mask as given: the hash the integer mask has, and another mask's not.
    hashes = {
        name: extract(image, given, PARAMS, label_channel=channel)["diagnostics_Mask-original_Hash"]
        for name, given, channel in (
            ("int", mask, None),
            ("float", as_float, None),
            ("vector", vector, 1),
            ("uint32", sitk.Cast(mask, sitk.sitkUInt32), None),
        )
    }
    assert len(set(hashes.values())) == 1, hashes
    assert hashes["int"] == hashlib.sha1(roi.astype(np.uint32)).hexdigest()
    # Issue 12: fractional values are refused (PyRadiomics truncates 1.5 -> 1 silently).
    with pytest.raises(InputError, match="not whole numbers"):
        extract(image, as_float * 1.5, PARAMS)


def test_classes_and_features_restricted_to_those_enabled():
    image, mask = volumes.ct()
    result = extract(
        image,
        mask,
        {
            "featureClass": {"glcm": ["JointEntropy", "Contrast"]},
            "setting": {"additionalInfo": False},
        },
    )
    assert list(result) == ["original_glcm_JointEntropy", "original_glcm_Contrast"]


def test_warmup_runs_every_class():
    result = warmup()
    families = {key.split("_")[1] for key in result if not key.startswith("diagnostics_")}
    assert families == {"firstorder", "shape", "shape2D", "glcm", "glrlm", "glszm", "gldm", "ngtdm"}
    assert all(
        np.isfinite(result[k]) for k in ("original_glcm_Contrast", "original_shape2D_Perimeter")
    )


# -- bad input ----------------------------------------------------------------------


def _with_mask(mask, array):
    out = sitk.GetImageFromArray(array.astype(np.uint8))
    out.CopyInformation(mask)
    return out


def test_empty_mask_and_absent_label_name_the_mask_file(tmp_path):
    image, mask = volumes.ct()
    empty = _with_mask(mask, np.zeros(sitk.GetArrayFromImage(mask).shape))
    image_path = _write(image, tmp_path / "ct.nrrd")
    with pytest.raises(InputError, match=r"empty\.nrrd: No labels found"):
        extract(image_path, _write(empty, tmp_path / "empty.nrrd"), PARAMS)
    assert "No labels found" in _pyradiomics_raises(image, empty, PARAMS)
    mask_path = _write(mask, tmp_path / "roi.nrrd")
    with pytest.raises(
        InputError, match=r"roi\.nrrd: Label \(3\) not present in mask. Choose from \[1\]"
    ):
        extract(image_path, mask_path, PARAMS, label=3)
    assert "Label (3) not present" in _pyradiomics_raises(image, mask, PARAMS, label=3)


def test_geometry_mismatch_fails_unless_corrected(tmp_path):
    image, mask = volumes.ct()
    shifted = sitk.Image(mask)
    shifted.SetOrigin(tuple(o + 0.3 for o in mask.GetOrigin()))
    with pytest.raises(
        InputError, match=r"roi\.nrrd: Image/Mask geometry mismatch \(origin differs"
    ):
        extract(image, _write(shifted, tmp_path / "roi.nrrd"), PARAMS)
    assert "geometry mismatch" in _pyradiomics_raises(image, shifted, PARAMS).lower()
    corrected = extract(image, shifted, {**PARAMS, "setting": {"correctMask": True}})
    assert "diagnostics_Mask-corrected_VoxelNum" in corrected
    # Within the tolerance both grids are taken as one, by index, as PyRadiomics does.
    tolerant = {**PARAMS, "setting": {"geometryTolerance": 0.5}}
    loose = extract(image, shifted, tolerant)
    radiomics = pytest.importorskip("radiomics")
    from radiomics import featureextractor

    radiomics.setVerbosity(logging.CRITICAL)
    process = sitk.ProcessObject
    saved = (
        process.GetGlobalDefaultCoordinateTolerance(),
        process.GetGlobalDefaultDirectionTolerance(),
    )
    try:  # PyRadiomics sets SimpleITK's global tolerances and leaves them set
        expected = featureextractor.RadiomicsFeatureExtractor(tolerant).execute(image, shifted)
    finally:
        process.SetGlobalDefaultCoordinateTolerance(saved[0])
        process.SetGlobalDefaultDirectionTolerance(saved[1])
        featureextractor.geometryTolerance = None
    assert _features(loose).keys() == {k for k in expected if not k.startswith("diagnostics_")}
    for key, value in _features(loose).items():
        np.testing.assert_allclose(value, float(expected[key]), rtol=1e-6, err_msg=key)


def test_small_rois_are_refused_like_pyradiomics():
    image, mask = volumes.ct()
    roi = sitk.GetArrayFromImage(mask)
    single = np.zeros_like(roi)
    single[10, 14, 14] = 1
    with pytest.raises(InputError, match="only contains 1 segmented voxel"):
        extract(image, _with_mask(mask, single), PARAMS)
    _pyradiomics_raises(image, _with_mask(mask, single), PARAMS)
    line = np.zeros_like(roi)
    line[10, 14, 10:15] = 1
    with pytest.raises(InputError, match="too few dimensions"):
        extract(image, _with_mask(mask, line), PARAMS)
    _pyradiomics_raises(image, _with_mask(mask, line), PARAMS)
    big = {**PARAMS, "setting": {"minimumROISize": int(roi.sum())}}
    with pytest.raises(InputError, match="Size of the ROI is too small"):
        extract(image, mask, big)
    _pyradiomics_raises(image, mask, big)


def test_nan_intensities_name_the_image_file(tmp_path):
    image, mask = volumes.pet()
    values = sitk.GetArrayFromImage(image)
    values[np.nonzero(sitk.GetArrayFromImage(mask))[0][0], :, :] = np.nan
    broken = sitk.GetImageFromArray(values)
    broken.CopyInformation(image)
    with pytest.raises(InputError, match=r"pet\.nrrd: .*NaN"):
        extract(_write(broken, tmp_path / "pet.nrrd"), mask, PARAMS)


def test_bad_files_and_settings():
    image, mask = volumes.ct()
    with pytest.raises(InputError, match="missing.nii.gz: no such file"):
        extract("missing.nii.gz", mask, PARAMS)
    with pytest.raises(InputError, match="absent_mask.nii.gz: no such file"):
        extract(image, "absent_mask.nii.gz", PARAMS)
    # The mask is read first (its hash streams while the image is read), but when both
    # are unreadable the image is the one named, as before.
    with pytest.raises(InputError, match="missing.nii.gz: no such file"):
        extract("missing.nii.gz", "absent_mask.nii.gz", PARAMS)
    with pytest.raises(InputError, match="expected a file path"):
        extract(np.zeros((3, 3, 3)), mask, PARAMS)
    with pytest.raises(SettingsError, match="binWidht"):
        extract(image, mask, {"setting": {"binWidht": 5}})
    with pytest.raises(SettingsError, match="label"):
        extract(image, mask, PARAMS, label=0)


# -- output formats -------------------------------------------------------------------


def test_output_formats_round_trip(tmp_path):
    image, mask = volumes.ct()
    result = extract(image, mask, PARAMS)
    case = {"Image": "ct.nrrd", "Mask": "roi.nrrd"}

    rows = list(csv.reader(io.StringIO(output.format_result(result, "csv", case=case))))
    assert rows[0] == ["Image", "Mask", *result]
    assert (
        float(rows[1][rows[0].index("original_glcm_Contrast")]) == result["original_glcm_Contrast"]
    )

    loaded = json.loads(output.format_result(result, "json", case=case))
    assert loaded["Image"] == "ct.nrrd"
    assert loaded["original_firstorder_Mean"] == result["original_firstorder_Mean"]
    assert loaded["diagnostics_Mask-original_BoundingBox"] == list(
        result["diagnostics_Mask-original_BoundingBox"]
    )

    lines = output.format_result(result, "txt").splitlines()
    assert lines[0].startswith("Case-1_diagnostics_Versions_PyRadiomics: ")
    assert f"Case-1_original_shape_VoxelVolume: {result['original_shape_VoxelVolume']!r}" in lines

    output.write_result(result, tmp_path / "out.json", "json")
    assert (
        json.loads((tmp_path / "out.json").read_text())["original_glcm_Contrast"]
        == result["original_glcm_Contrast"]
    )
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
    with pytest.raises(SettingsError, match="format"):
        output.format_result(result, "xml")
