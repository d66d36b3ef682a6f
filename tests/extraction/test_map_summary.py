"""mapSummary: per-ROI statistics of voxel maps as a feature class of segment mode.

The oracle is PyRadiomics 3.0.1's own voxel mode: each summary equals the NumPy statistic of
PyRadiomics' map over the ROI voxels (NaN voxels left out). Statistic definitions are checked on
hand-computed values; key names, table columns, settings errors and the command line's errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk

import radflow
from radflow.cli import main
from radflow.errors import SettingsError
from radflow.extraction import map_summary, voxel
from radflow.params.names import MAP_SUMMARY_STATISTICS
from radflow.params.pyradiomics_params import load_params, params_hash, params_to_dict
from radflow.pipeline.plan import feature_columns

NUMPY = {
    "Mean": np.mean,
    "StandardDeviation": lambda v: np.std(v, ddof=0),
    "Minimum": np.min,
    "10Percentile": lambda v: np.percentile(v, 10),
    "25Percentile": lambda v: np.percentile(v, 25),
    "Median": np.median,
    "75Percentile": lambda v: np.percentile(v, 75),
    "90Percentile": lambda v: np.percentile(v, 90),
    "Maximum": np.max,
}
CLASSES = {
    "glcm": ["Contrast", "JointEntropy", "JointAverage"],
    "firstorder": ["Entropy", "Mean"],
    "ngtdm": ["Coarseness"],
}


def _case(dtype=np.int16):
    rng = np.random.default_rng(7)
    values = rng.normal(20, 60, (9, 12, 13)).astype(dtype)
    roi = np.zeros(values.shape, np.uint8)
    roi[2:7, 3:9, 0:8] = 1  # touches x = 0
    roi[4, 5, 3] = 0  # a hole
    # a patch one plane thick, apart from the rest: its kernels have no pair across planes,
    # so JointAverage is NaN there (empty offsets that other kernels fill)
    roi[8, 9:11, 9:12] = 1
    image = sitk.GetImageFromArray(values)
    image.SetSpacing((0.7, 0.8, 2.5))
    mask = sitk.GetImageFromArray(roi)
    mask.CopyInformation(image)
    return image, mask


def _roi_values(theirs_map: sitk.Image, mask: sitk.Image) -> np.ndarray:
    """PyRadiomics' map at the ROI voxels: its box is the ROI box padded and clipped."""
    array = sitk.GetArrayFromImage(theirs_map)
    roi = sitk.GetArrayFromImage(mask) == 1
    origin = mask.TransformPhysicalPointToIndex(theirs_map.GetOrigin())[::-1]
    box = tuple(slice(o, o + n) for o, n in zip(origin, array.shape))
    return array[roi[box]]


@pytest.mark.oracle
@pytest.mark.parametrize(
    "voxel_setting, setting, dtype",
    [
        ({"kernelRadius": 1}, {"binWidth": 25}, np.int16),
        ({"kernelRadius": 2, "maskedKernel": False}, {"binCount": 12}, np.float32),
    ],
    ids=["masked-r1-ct", "unmasked-r2-pet"],
)
def test_summaries_are_numpy_statistics_of_pyradiomics_maps(voxel_setting, setting, dtype):
    featureextractor = pytest.importorskip("radiomics.featureextractor")
    image, mask = _case(dtype)
    image_types = {"Original": {}, "LoG": {"sigma": [1.5]}}
    params = {
        "imageType": image_types,
        "featureClass": {"firstorder": ["Median"]},
        "setting": setting,
        "voxelSetting": voxel_setting,
        "mapSummary": {"classes": CLASSES, "statistics": list(MAP_SUMMARY_STATISTICS)},
    }
    ours = radflow.extract(image, mask, params)
    theirs = featureextractor.RadiomicsFeatureExtractor(
        {
            "imageType": image_types,
            "featureClass": CLASSES,
            "setting": setting,
            "voxelSetting": voxel_setting,
        }
    ).execute(image, mask, voxelBased=True)
    assert ours["original_firstorder_Median"] == pytest.approx(
        float(np.median(sitk.GetArrayFromImage(image)[sitk.GetArrayFromImage(mask) == 1]))
    )
    maps = [k for k, v in theirs.items() if isinstance(v, sitk.Image)]
    assert len(maps) == 2 * 6
    nan_seen = {}
    for key in maps:
        image_type, cls, feature = key.split("_", 2)
        values = _roi_values(theirs[key], mask)
        assert values.size == int((sitk.GetArrayFromImage(mask) == 1).sum())
        finite = values[~np.isnan(values)]
        if finite.size < values.size:
            nan_seen[f"{image_type}_{cls}map_{feature}"] = values.size - finite.size
        for stat, function in NUMPY.items():
            got = ours[f"{image_type}_{cls}map_{feature}_{stat}"]
            np.testing.assert_allclose(got, function(finite), rtol=1e-6, err_msg=f"{key} {stat}")
    assert ours[map_summary.NAN_KEY] == nan_seen
    assert ours[map_summary.VOXELS_KEY] == int((sitk.GetArrayFromImage(mask) == 1).sum())
    if voxel_setting.get("maskedKernel", True):
        assert nan_seen  # the one-plane patch: JointAverage NaN there, left out


def test_statistic_definitions_on_hand_computed_values(monkeypatch):
    values = np.array([4.0, np.nan, 1.0, 3.0, 2.0])
    monkeypatch.setattr(
        voxel,
        "map_values",
        lambda *a: {("glcm", "Contrast"): values, ("glcm", "Idm"): np.full(5, np.nan)},
    )
    params = load_params(
        {"mapSummary": {"classes": {"glcm": ["Contrast", "Idm"]}, "statistics": list(NUMPY)}}
    )
    nan_voxels = {}
    out = map_summary.summarise(
        "original", None, None, params.settings, params, (1, 1, 1), nan_voxels
    )
    expected = {
        "Mean": 2.5,
        "StandardDeviation": math.sqrt(1.25),  # ddof 0: (2.25 + 0.25 + 0.25 + 2.25) / 4
        "Minimum": 1.0,
        "10Percentile": 1.3,  # linear: 1 + 0.3 * (2 - 1)
        "25Percentile": 1.75,
        "Median": 2.5,
        "75Percentile": 3.25,
        "90Percentile": 3.7,
        "Maximum": 4.0,
    }
    for stat, value in expected.items():
        assert out[f"original_glcmmap_Contrast_{stat}"] == pytest.approx(value, rel=1e-12)
        assert math.isnan(out[f"original_glcmmap_Idm_{stat}"])  # no finite value: NaN
    assert nan_voxels == {"original_glcmmap_Contrast": 1, "original_glcmmap_Idm": 5}


def test_key_names_and_table_columns():
    image, mask = _case()
    params = {
        "imageType": {"Original": {}, "Square": {}},
        "featureClass": {"shape": ["VoxelVolume"]},
        "mapSummary": {
            "classes": {"glcm": ["JointEntropy", "Contrast"], "firstorder": ["Entropy"]},
            "statistics": ["Median", "Mean"],
        },
    }
    out = radflow.extract(image, mask, params)
    features = [k for k in out if not k.startswith("diagnostics_")]
    expected = ["original_shape_VoxelVolume"]
    for image_type in ("original", "square"):
        for cls, feature in (
            ("glcm", "JointEntropy"),
            ("glcm", "Contrast"),
            ("firstorder", "Entropy"),
        ):
            expected += [f"{image_type}_{cls}map_{feature}_{s}" for s in ("Median", "Mean")]
    assert features == expected
    assert feature_columns(load_params(params)) == (
        "shape_VoxelVolume",
        "firstordermap_Entropy_Mean",
        "firstordermap_Entropy_Median",
        "glcmmap_Contrast_Mean",
        "glcmmap_Contrast_Median",
        "glcmmap_JointEntropy_Mean",
        "glcmmap_JointEntropy_Median",
    )
    # the default statistics, and a class's default features when null
    defaults = load_params({"mapSummary": {"classes": {"ngtdm": None}}})
    assert defaults.map_summary.statistics == (
        "Mean", "StandardDeviation", "10Percentile", "25Percentile", "Median", "75Percentile",
        "90Percentile",
    )  # fmt: skip
    assert len(map_summary.feature_columns(defaults)) == 5 * 7


def test_the_section_round_trips_and_names_its_own_feature_set():
    base = {"featureClass": {"firstorder": None}}
    with_summary = {**base, "mapSummary": {"classes": {"glcm": ["Contrast"]}}}
    params = load_params(with_summary)
    assert load_params(params_to_dict(params)) == params
    assert "mapSummary" not in params_to_dict(load_params(base))
    assert params_hash(params) != params_hash(load_params(base))
    # memoryBudget changes no value: same feature set
    budget = {**base, "voxelSetting": {"memoryBudget": 512}}
    assert params_hash(load_params(budget)) == params_hash(load_params(base))
    assert load_params(params_to_dict(load_params(budget))).voxel_settings.memory_budget_mib == 512


@pytest.mark.parametrize(
    "section, message",
    [
        ({"clases": {"glcm": None}}, "unknown key 'clases' (did you mean 'classes'?)"),
        ({"statistics": ["Mean"]}, "'classes' is required"),
        ({"classes": {}}, "non-empty mapping"),
        ({"classes": {"glcmm": None}}, "class 'glcmm' is not known (did you mean 'glcm'?)"),
        ({"classes": {"shape": None}}, "class 'shape' has no voxel-based map"),
        (
            {"classes": {"glcm": ["Contrst"]}},
            "unknown feature 'Contrst' (did you mean 'Contrast'?)",
        ),
        ({"classes": {"glcm": "Contrast"}}, "expected a list of feature names"),
        (
            {"classes": {"glcm": None}, "statistics": ["mean"]},
            "unknown statistic 'mean' (did you mean 'Mean'?)",
        ),
        ({"classes": {"glcm": None}, "statistics": []}, "'statistics': [] is not allowed"),
    ],
)
def test_settings_errors_name_the_key_and_the_fix(section, message):
    with pytest.raises(SettingsError) as error:
        load_params({"mapSummary": section})
    assert message in str(error.value)


def test_deprecated_feature_and_bad_section_through_the_command_line(tmp_path, capsys):
    image, mask = _case()
    sitk.WriteImage(image, str(tmp_path / "image.nrrd"))
    sitk.WriteImage(mask, str(tmp_path / "mask.nrrd"))
    with pytest.raises(SettingsError, match="Dissimilarity deprecated"):
        radflow.extract(image, mask, {"mapSummary": {"classes": {"glcm": ["Dissimilarity"]}}})
    params = tmp_path / "params.yaml"
    params.write_text("mapSummary:\n  classes: {glcm: [Contrast]}\n  statistic: [Mean]\n")
    argv = ["extract", str(tmp_path / "image.nrrd"), str(tmp_path / "mask.nrrd"), "-p", str(params)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "unknown key 'statistic' (did you mean 'statistics'?)" in err


def test_voxel_mode_ignores_the_section():
    image, mask = _case()
    params = {
        "featureClass": {"firstorder": ["Mean"]},
        "mapSummary": {"classes": {"glcm": ["Contrast"]}},
    }
    out = radflow.extract(image, mask, params, voxel_based=True)
    assert [k for k, v in out.items() if isinstance(v, sitk.Image)] == ["original_firstorder_Mean"]
    assert not any("map_" in k for k in out)


def test_summaries_over_the_memory_budget_are_refused_before_computing():
    image, mask = _case()
    params = {"mapSummary": {"classes": {"glcm": None}}, "voxelSetting": {"memoryBudget": 0.1}}
    # ROI box z 2:9, y 3:11, x 0:12 grown by 1 and clipped to (9, 12, 13): 8 x 10 x 13 voxels;
    # 24 default GLCM maps + 1 filtered box, float64, plus the kernels' 9 bytes per voxel
    # (grey levels, kernel mask): 25 * 8 * 1040 + 9 * 1040 = 217,360 bytes > 0.1 MiB
    with pytest.raises(voxel.MemoryBudgetError, match=r"mapSummary: 24 map\(s\) of 8 x 10 x 13"):
        radflow.extract(image, mask, params)
    params["voxelSetting"]["memoryBudget"] = 0.2  # 209,715 bytes: not enough
    with pytest.raises(voxel.MemoryBudgetError, match=r"need about 0\.207 MiB"):
        radflow.extract(image, mask, params)
    params["voxelSetting"]["memoryBudget"] = 0.21  # 220,201 bytes: enough
    assert "original_glcmmap_Idm_Mean" in radflow.extract(image, mask, params)
