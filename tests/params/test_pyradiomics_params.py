"""PyRadiomics parameter files: read as PyRadiomics 3.0.1 reads them, or refused with a clear error.

The oracle is PyRadiomics itself: its ``RadiomicsFeatureExtractor`` loads the
same files, its schema lists the keys, and its source holds the defaults.
"""

from __future__ import annotations

import ast
import json
import logging
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import SimpleITK as sitk
import yaml

from radflow.errors import SettingsError
from radflow.params.extraction import ExtractionParams, Settings, VoxelSettings
from radflow.params.pyradiomics_params import load_params, params_hash, params_to_dict
from radflow.params.schema import SETTING_EXTENSION_KEYS, SETTING_KEYS, VOXEL_SETTING_KEYS

# Modelled on pyradiomics/examples/exampleSettings (v3.0.1); comments trimmed.
GLCM_NO_SUMAVERAGE = """\
    - 'Autocorrelation'
    - 'JointAverage'
    - 'ClusterProminence'
    - 'ClusterShade'
    - 'ClusterTendency'
    - 'Contrast'
    - 'Correlation'
    - 'DifferenceAverage'
    - 'DifferenceEntropy'
    - 'DifferenceVariance'
    - 'JointEnergy'
    - 'JointEntropy'
    - 'Imc1'
    - 'Imc2'
    - 'Idm'
    - 'Idmn'
    - 'Id'
    - 'Idn'
    - 'InverseVariance'
    - 'MaximumProbability'
    - 'SumEntropy'
    - 'SumSquares'
"""

PARAMS_YAML = f"""\
setting:
  binWidth: 25
  label: 1
  interpolator: 'sitkBSpline' # This is an enumerated value, here None is not allowed
  resampledPixelSpacing: # This disables resampling, as it is interpreted as None
  weightingNorm: # If no value is specified, it is interpreted as None

imageType:
  Original: {{}}

featureClass:
  shape:
  firstorder: [] # specifying an empty list has the same effect as specifying nothing.
  glcm:  # Disable SumAverage by specifying all other GLCM features available
{GLCM_NO_SUMAVERAGE}  glrlm:
  glszm:
  gldm:
"""

EXAMPLE_CT = """\
imageType:
  Original: {}
  LoG:
    # If you include sigma values >5, remember to also increase the padDistance.
    sigma: [1.0, 2.0, 3.0, 4.0, 5.0]
  Wavelet: {}

featureClass:
  shape:
  firstorder:
  glcm:
  glrlm:
  glszm:
  gldm:

setting:
  #normalize: true
  #normalizeScale: 500
  interpolator: 'sitkBSpline'
  resampledPixelSpacing: [1, 1, 1]
  padDistance: 10
  #minimumROIDimensions: 2
  binWidth: 25
  voxelArrayShift: 1000
  label: 1
"""

EXAMPLE_MR_3MM = f"""\
imageType:
  Original: {{}}
  LoG:
    sigma: [2.0, 3.0, 4.0, 5.0]
  Wavelet: {{}}

featureClass:
  shape:
  firstorder:
  glcm:
{GLCM_NO_SUMAVERAGE}  glrlm:
  glszm:
  gldm:

setting:
  normalize: true
  normalizeScale: 100
  interpolator: 'sitkBSpline'
  resampledPixelSpacing: [2, 2, 2]
  binWidth: 5
  voxelArrayShift: 300
  label: 1
"""

EXAMPLE_MR_NO_RESAMPLING = """\
imageType:
  Original: {}
  LoG:
    sigma: [1.0, 3.0, 5.0]
  Wavelet: {}

featureClass:
  shape:
  firstorder:
  glcm:
  glrlm:
  glszm:
  gldm:

setting:
  normalize: true
  normalizeScale: 100
  preCrop: true
  force2D: true
  # axial slices, for coronal slices, use dimension 1 and for sagittal, dimension 2.
  force2Ddimension: 0
  binWidth: 5
  voxelArrayShift: 300
  label: 1
"""

EXAMPLE_VOXEL = """\
imageType:
  Original: {}

featureClass:
  glcm:
    - JointEntropy

setting:
  binWidth: 25
  force2D: true
  label: 1

voxelSetting:
  kernelRadius: 2
  maskedKernel: true
  initValue: nan
  voxelBatch: 10000
"""

# Everything else that PyRadiomics accepts, with non-default values.
EVERYTHING_JSON = {
    "imageType": {
        "Original": {},
        "LoG": {"sigma": [1, 2.5], "binWidth": 10},
        "Wavelet": {"wavelet": "db2", "start_level": 1, "level": 2},
        "Square": {},
        "SquareRoot": {},
        "Logarithm": {},
        "Exponential": {},
        "Gradient": {"gradientUseSpacing": False},
        "LBP2D": {"lbp2DRadius": 2, "lbp2DSamples": 16, "lbp2DMethod": "ror"},
        "LBP3D": {"lbp3DLevels": 3, "lbp3DIcosphereRadius": 1.5, "lbp3DIcosphereSubdivision": 2},
    },
    "featureClass": {"shape2D": None, "ngtdm": [], "firstorder": ["Mean", "Entropy"]},
    "setting": {
        "label": 2,
        "label_channel": 1,
        "minimumROIDimensions": 3,
        "minimumROISize": 50,
        "geometryTolerance": 1e-4,
        "correctMask": True,
        "additionalInfo": False,
        "binWidth": 0.5,
        "binCount": 32,
        "normalize": True,
        "normalizeScale": 500,
        "removeOutliers": 3,
        "resampledPixelSpacing": [2, 2, 0],
        "interpolator": 2,
        "padDistance": 0,
        "preCrop": True,
        "resegmentRange": [-1000, 400.5],
        "resegmentMode": "sigma",
        "resegmentShape": True,
        "distances": [1, 2],
        "force2D": True,
        "force2Ddimension": 2,
        "symmetricalGLCM": False,
        "weightingNorm": "euclidean",
        "gldm_a": 1,
        "voxelArrayShift": -5,
    },
    "voxelSetting": {"kernelRadius": 3, "maskedKernel": False, "initValue": -1, "voxelBatch": 500},
}

VALID_YAML = {
    "Params": PARAMS_YAML,
    "exampleCT": EXAMPLE_CT,
    "exampleMR_3mm": EXAMPLE_MR_3MM,
    "exampleMR_NoResampling": EXAMPLE_MR_NO_RESAMPLING,
    "exampleVoxel": EXAMPLE_VOXEL,
}

# (name, file text, words the error must contain); PyRadiomics refuses each too.
MALFORMED = [
    # PyRadiomics' own Params.yaml lists `shape:` twice; its YAML reader refuses that.
    (
        "duplicate_key",
        PARAMS_YAML.replace("  shape:\n", "  shape:\n  shape:\n"),
        ["line", "duplicate key 'shape'"],
    ),
    # MR_2D_extraction.yaml in PyRadiomics' repository has this misspelling.
    (
        "misspelt_key",
        "setting:\n  force2D: true\n  force2DDimension: 0\n",
        ["'force2DDimension'", "did you mean 'force2Ddimension'"],
    ),
    ("unknown_key", "setting:\n  binWidht: 25\n", ["unknown key 'binWidht'", "'binWidth'"]),
    ("wrong_type", "setting:\n  binCount: 2.5\n", ["'binCount'", "2.5", "an integer > 0"]),
    ("bool_as_int", "setting:\n  label: true\n", ["'label'", "True", "an integer > 0"]),
    ("yaml11_bool", "setting:\n  normalize: yes\n", ["'normalize'", "'yes'", "true or false"]),
    (
        "bad_interpolator",
        "setting:\n  interpolator: sitkCubic\n",
        ["'interpolator'", "'sitkCubic'", "sitkBSpline"],
    ),
    ("bad_interpolator_code", "setting:\n  interpolator: 11\n", ["'interpolator'", "11", "1-10"]),
    ("negative_binwidth", "setting:\n  binWidth: -25\n", ["'binWidth'", "-25", "> 0"]),
    ("zero_distance", "setting:\n  distances: [1, 0]\n", ["'distances'", "each > 0"]),
    ("scalar_distance", "setting:\n  distances: 1\n", ["'distances'", "list of integers"]),
    ("bad_dimension", "setting:\n  force2Ddimension: 3\n", ["'force2Ddimension'", "<= 2"]),
    ("bad_mode", "setting:\n  resegmentMode: percent\n", ["'resegmentMode'", "'sigma'"]),
    ("bad_norm", "setting:\n  weightingNorm: chebyshev\n", ["'weightingNorm'", "'infinity'"]),
    ("bad_wavelet", "setting:\n  wavelet: coif99\n", ["'wavelet'", "'coif99'", "discrete"]),
    ("bad_lbp", "setting:\n  lbp2DMethod: nri\n", ["'lbp2DMethod'", "'uniform'"]),
    (
        "unknown_section",
        "inputImage:\n  Original: {}\n",
        ["'inputImage'", "old name of 'imageType'"],
    ),
    ("unknown_image_type", "imageType:\n  wavelet: {}\n", ["'wavelet'", "did you mean 'Wavelet'"]),
    ("null_image_type", "imageType:\n  Original:\n", ["'Original'", "null", "Original: {}"]),
    ("null_section", "setting:\nimageType:\n  Original: {}\n", ["section 'setting'", "empty"]),
    ("unknown_class", "featureClass:\n  glcmm:\n", ["'glcmm'", "did you mean 'glcm'"]),
    (
        "string_features",
        "featureClass:\n  glcm: JointEntropy\n",
        ["'glcm'", "list of feature names"],
    ),
    (
        "voxel_key_in_setting",
        "setting:\n  kernelRadius: 2\n",
        ["'kernelRadius'", "voxelSetting section"],
    ),
    ("bad_voxel_setting", "voxelSetting:\n  voxelBatch: 0\n", ["'voxelBatch'", "> 0"]),
    ("not_a_mapping", "- setting\n", ["expected a mapping"]),
    ("empty_file", "", ["empty"]),
    ("bad_yaml", "setting: [\n", ["not valid YAML", "line 2"]),
]

# Refused by radflow although PyRadiomics accepts them: each would fail later
# in PyRadiomics or be silently ignored by it.
STRICTER = [
    ("binwidth_null", "setting:\n  binWidth:\n", ["'binWidth'", "binCount"]),
    ("distances_empty", "setting:\n  distances: []\n", ["'distances'", "non-empty"]),
    (
        "resegment_three",
        "setting:\n  resegmentRange: [1, 2, 3]\n",
        ["'resegmentRange'", "length 1 or 2"],
    ),
    (
        "spacing_one",
        "setting:\n  resampledPixelSpacing: [2]\n",
        ["'resampledPixelSpacing'", "length 2 or 3"],
    ),
    ("continuous_wavelet", "setting:\n  wavelet: morl\n", ["'wavelet'", "discrete"]),
    ("numeric_string_label", "setting:\n  label: '1'\n", ["'label'", "an integer"]),
    (
        "per_type_resampling",
        "imageType:\n  LoG:\n    sigma: [1]\n    resampledPixelSpacing: [1, 1, 1]\n",
        ["'LoG'", "'resampledPixelSpacing'", "setting section"],
    ),
    ("null_label", "setting:\n  label:\n", ["'label'", "null is not allowed"]),
]


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def _pyradiomics_extractor(source):
    radiomics = pytest.importorskip("radiomics")
    from radiomics import featureextractor

    radiomics.setVerbosity(logging.CRITICAL)
    logging.getLogger("pykwalify").setLevel(logging.CRITICAL)
    # The extractor sets SimpleITK's process-wide tolerance from geometryTolerance: restore it.
    process = sitk.ProcessObject
    before = (
        process.GetGlobalDefaultCoordinateTolerance(),
        process.GetGlobalDefaultDirectionTolerance(),
    )
    try:
        return featureextractor.RadiomicsFeatureExtractor(source)
    finally:
        process.SetGlobalDefaultCoordinateTolerance(before[0])
        process.SetGlobalDefaultDirectionTolerance(before[1])


def _same(ours, theirs) -> bool:
    if isinstance(theirs, (list, tuple)):
        return isinstance(ours, list) and len(ours) == len(theirs) and all(map(_same, ours, theirs))
    if isinstance(theirs, float) and math.isnan(theirs):
        return isinstance(ours, float) and math.isnan(ours)
    if isinstance(theirs, str) and isinstance(
        ours, float
    ):  # pykwalify passes numeric strings through
        return _same(ours, float(theirs))
    if isinstance(ours, bool) or isinstance(theirs, bool):
        return ours is theirs
    return ours == theirs


def _assert_matches_pyradiomics(params: ExtractionParams, extractor) -> None:
    ours = params_to_dict(params)
    assert list(ours["imageType"]) == list(extractor.enabledImagetypes)
    for name, custom in extractor.enabledImagetypes.items():
        assert set(ours["imageType"][name]) == set(custom)
        for key, value in custom.items():
            assert _same(ours["imageType"][name][key], value), (name, key)
    assert list(ours["featureClass"]) == list(extractor.enabledFeatures)
    for name, names in extractor.enabledFeatures.items():
        assert ours["featureClass"][name] == (names or None), name
    flat = {**ours["setting"], **ours["voxelSetting"]}
    for key, value in extractor.settings.items():
        if key == "interpolator" and isinstance(value, int):
            value = {2: "sitkLinear"}[value]
        assert _same(flat[key], value), (key, flat[key], value)


@pytest.mark.oracle
@pytest.mark.parametrize("name", list(VALID_YAML))
def test_example_files_read_as_pyradiomics_reads_them(tmp_path, name):
    path = _write(tmp_path, name, VALID_YAML[name])
    _assert_matches_pyradiomics(load_params(path), _pyradiomics_extractor(str(path)))


@pytest.mark.oracle
def test_every_setting_read_as_pyradiomics_reads_it(tmp_path):
    path = tmp_path / "everything.json"
    path.write_text(json.dumps(EVERYTHING_JSON))
    params = load_params(path)
    _assert_matches_pyradiomics(params, _pyradiomics_extractor(str(path)))
    assert load_params(EVERYTHING_JSON) == params


@pytest.mark.oracle
def test_no_parameters_gives_pyradiomics_defaults():
    params = load_params(None)
    assert params == ExtractionParams()
    assert load_params(params) is params
    _assert_matches_pyradiomics(params, _pyradiomics_extractor(None))
    # An explicit but empty featureClass section enables shape2D as well, in both.
    _assert_matches_pyradiomics(
        load_params({"featureClass": {}}), _pyradiomics_extractor({"featureClass": {}})
    )


def test_example_values():
    ct = load_params({"setting": {"resampledPixelSpacing": [1, 1, 1], "binWidth": 25}})
    assert ct.settings.resampled_spacing_xyz == (1.0, 1.0, 1.0)
    assert ct.settings.resampling
    voxel = load_params(_yaml(EXAMPLE_VOXEL))
    assert voxel.feature_classes == {"glcm": ("JointEntropy",)}
    assert voxel.settings.force_2d is True
    assert math.isnan(voxel.voxel_settings.init_value)
    assert voxel.voxel_settings.kernel_radius == 2 and voxel.voxel_settings.voxel_batch == 10000
    assert not load_params(None).settings.resampling


def _yaml(text: str):
    """Parse with radflow's reader (YAML 1.2 core schema)."""
    from radflow._config import YAML12Loader

    return yaml.load(text, Loader=YAML12Loader)  # a SafeLoader subclass


@pytest.mark.parametrize("name, text, words", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_files_name_key_value_and_allowed(tmp_path, name, text, words):
    path = _write(tmp_path, name, text)
    with pytest.raises(SettingsError) as info:
        load_params(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    for word in words:
        assert word in message


@pytest.mark.oracle
@pytest.mark.parametrize("name, text, words", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_files_are_refused_by_pyradiomics_too(tmp_path, name, text, words):
    path = _write(tmp_path, name, text)
    with pytest.raises(Exception):  # noqa: B017 - pykwalify, ruamel and ValueError alike
        _pyradiomics_extractor(str(path))


@pytest.mark.parametrize("name, text, words", STRICTER, ids=[m[0] for m in STRICTER])
def test_stricter_than_pyradiomics(tmp_path, name, text, words):
    with pytest.raises(SettingsError) as info:
        load_params(_write(tmp_path, name, text))
    for word in words:
        assert word in str(info.value)


def test_file_errors(tmp_path):
    with pytest.raises(SettingsError, match="not found"):
        load_params(tmp_path / "missing.yaml")
    other = tmp_path / "params.txt"
    other.write_text("setting: {}\n")
    with pytest.raises(SettingsError, match="unknown parameter file type '.txt'"):
        load_params(other)
    dup = tmp_path / "dup.json"
    dup.write_text('{"setting": {"binWidth": 5, "binWidth": 6}}')
    with pytest.raises(SettingsError, match="duplicate key 'binWidth'"):
        load_params(dup)
    with pytest.raises(SettingsError, match="mapping"):
        load_params(42)


def test_interpolator_codes_mean_what_pyradiomics_documents():
    # PyRadiomics' customization docs: sitkNearestNeighbor (= 1) ... sitkBSpline (= 3) ...
    # sitkBlackmanWindowedSinc (= 10): SimpleITK 1.x numbering.
    names = [
        "sitkNearestNeighbor",
        "sitkLinear",
        "sitkBSpline",
        "sitkGaussian",
        "sitkLabelGaussian",
        "sitkHammingWindowedSinc",
        "sitkCosineWindowedSinc",
        "sitkWelchWindowedSinc",
        "sitkLanczosWindowedSinc",
        "sitkBlackmanWindowedSinc",
    ]
    for code, name in enumerate(names, start=1):
        assert Settings.from_mapping({"interpolator": code}).interpolator == name
        assert Settings.from_mapping({"interpolator": name}).interpolator == name
    assert Settings.from_mapping({"interpolator": None}).interpolator is None


def test_settings_validated_when_built_directly():
    with pytest.raises(SettingsError, match="'binWidth'.*-1"):
        Settings(bin_width=-1)
    with pytest.raises(SettingsError, match="'distances'"):
        Settings(distances=(1.5,))
    with pytest.raises(SettingsError, match="'kernelRadius'"):
        VoxelSettings(kernel_radius=0)
    assert Settings(bin_width=None, bin_count=16).bin_count == 16
    assert Settings(distances=[1, 2]).distances == (1, 2)


def test_image_type_settings_override_global_ones():
    params = load_params(EVERYTHING_JSON)
    log = params.settings_for("LoG")
    assert log.sigma == (1.0, 2.5) and log.bin_width == 10.0
    assert params.settings_for("Original").bin_width == 0.5
    assert params.settings_for("Wavelet").wavelet == "db2"
    with pytest.raises(SettingsError, match="not enabled"):
        load_params(None).settings_for("LoG")
    overridden = params.with_settings({"binWidth": 3})
    assert overridden.settings.bin_width == 3.0 and params.settings.bin_width == 0.5
    with pytest.raises(SettingsError, match="unknown key 'binwidth'"):
        params.with_settings({"binwidth": 3})


# -- defaults and keys, taken from PyRadiomics' own source and schema -------------------------


def _pyradiomics_source_defaults() -> dict:
    """Every ``<kwargs|settings>.get('key', default)`` in PyRadiomics, as its extractor resolves
    it.
    """
    radiomics = pytest.importorskip("radiomics")
    from radiomics.featureextractor import RadiomicsFeatureExtractor

    pattern = re.compile(
        r"(?:kwargs|settings)\.get\(\s*'(\w+)'\s*(?:,\s*([^()]*(?:\([^()]*\))?[^()]*))?\)"
    )
    found: dict[str, set] = {}
    for source in Path(radiomics.__file__).parent.glob("*.py"):
        for match in pattern.finditer(source.read_text()):
            text = (match.group(2) or "None").strip()
            value = text.split(".")[-1] if text.startswith("sitk.") else ast.literal_eval(text)
            found.setdefault(match.group(1), set()).add(json.dumps(value))
    defaults = {key: json.loads(next(iter(v))) for key, v in found.items() if len(v) == 1}
    # The extractor always passes its own defaults, which win over the functions' fallbacks.
    defaults.update(RadiomicsFeatureExtractor._getDefaultSettings())
    assert set(found) <= set(defaults), f"conflicting defaults: {set(found) - set(defaults)}"
    defaults.pop("voxelBased")  # set by execute(voxelBased=True), not a setting
    return defaults


@pytest.mark.oracle
def test_defaults_are_pyradiomics_defaults():
    expected = _pyradiomics_source_defaults()
    ours = {**Settings().to_mapping(), **VoxelSettings().to_mapping()}
    ours["voxelBatch"] = -1 if ours["voxelBatch"] is None else ours["voxelBatch"]  # -1: all at once
    assert set(expected) == set(ours)
    for key, value in expected.items():
        assert _same(ours[key], value), (key, ours[key], value)


@pytest.mark.oracle
def test_keys_are_pyradiomics_schema_keys():
    radiomics = pytest.importorskip("radiomics")
    schema = _yaml(Path(radiomics.getParameterValidationFiles()[0]).read_text())
    assert set(SETTING_KEYS) == set(schema["mapping"]["setting"]["mapping"])
    assert set(VOXEL_SETTING_KEYS) == set(schema["mapping"]["voxelSetting"]["mapping"])
    assert set(schema["mapping"]) == {"setting", "voxelSetting", "featureClass", "imageType"}
    # Every attribute has a key: PyRadiomics' own, or radflow's (skeletonSpacing).
    keys = set(SETTING_KEYS.values()) | set(SETTING_EXTENSION_KEYS.values())
    assert keys == {f.name for f in Settings.__dataclass_fields__.values()}


# -- YAML reading ------------------------------------------------------------------------------

SCALARS = [
    "true",
    "True",
    "TRUE",
    "false",
    "yes",
    "no",
    "on",
    "Off",
    "1e-5",
    "1.0e-5",
    ".5",
    "5.",
    "017",
    "0o17",
    "0x1F",
    "0b11",
    "1_000",
    "+5",
    "-0",
    "1E5",
    "1.5e+3",
    "+.5",
    "-.5e-2",
    "~",
    "null",
    "Null",
    "",
    "nan",
    ".nan",
    ".NaN",
    ".inf",
    "-.inf",
    "+.inf",
    "12:30",
    "sitkBSpline",
]


def test_yaml_scalars_read_as_yaml_1_2_like_pyradiomics_reader():
    ruamel = pytest.importorskip("ruamel.yaml")  # PyRadiomics' reader, through pykwalify
    reference = ruamel.YAML(typ="safe", pure=True)
    for text in SCALARS:
        ours, theirs = _yaml(f"a: {text}\n")["a"], reference.load(f"a: {text}\n")["a"]
        assert type(ours) is type(theirs), text
        assert ours == theirs or (
            isinstance(ours, float) and math.isnan(ours) and math.isnan(theirs)
        ), text


# -- normalised dict and hash --------------------------------------------------------------------


def test_params_to_dict_round_trips_and_is_json():
    for source in [None, EVERYTHING_JSON, _yaml(EXAMPLE_MR_3MM)]:
        params = load_params(source)
        normalised = params_to_dict(params)
        text = json.dumps(normalised, allow_nan=False)
        assert load_params(json.loads(text)) == params
    voxel = params_to_dict(load_params(_yaml(EXAMPLE_VOXEL)))
    json.dumps(voxel, allow_nan=False)
    assert voxel["voxelSetting"]["initValue"] == "nan"
    assert math.isnan(load_params(voxel).voxel_settings.init_value)


def test_hash_depends_on_meaning_only():
    base = params_hash(load_params({"setting": {"binWidth": 25}}))
    assert re.fullmatch(r"[0-9a-f]{16}", base)
    same = [
        {"setting": {"binWidth": 25.0}},
        {},
        {"setting": {"interpolator": 3}},
        {
            "featureClass": {
                name: []
                for name in (
                    "firstorder",
                    "shape",
                    "shape2D",
                    "glcm",
                    "glrlm",
                    "glszm",
                    "gldm",
                    "ngtdm",
                )
            }
        },
        {"imageType": {"Original": {}}, "setting": {"label": 1, "distances": [1]}},
    ]
    for source in same:
        assert params_hash(load_params(source)) == base, source
    different = [
        {"setting": {"binWidth": 20}},
        {"setting": {"label": 2}},
        {"featureClass": {"glcm": None}},
        {"imageType": {"Original": {}, "Square": {}}},
    ]
    for source in different:
        assert params_hash(load_params(source)) != base, source
    a = {"featureClass": {"glcm": ["Id", "Idm"], "firstorder": None}}
    b = {"featureClass": {"firstorder": [], "glcm": ["Idm", "Id"]}}
    assert params_hash(load_params(a)) == params_hash(load_params(b))


def test_hash_is_stable_across_processes():
    code = (
        "from radflow.params.pyradiomics_params import load_params, params_hash;"
        "print(params_hash(load_params({'setting': {'binWidth': 5, 'distances': [1, 2]}})))"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(runs) == 1
    assert runs.pop().strip() == params_hash(
        load_params({"setting": {"binWidth": 5, "distances": [1, 2]}})
    )


# -- feature names, checked against radflow.params.names (the families' own lists) -------------


def test_feature_names_checked_against_the_name_lists():
    from radflow.params.names import FEATURE_NAMES

    assert load_params({"featureClass": {"glcm": ["JointEntropy"]}}).feature_classes == {
        "glcm": ("JointEntropy",)
    }
    valid = ", ".join(FEATURE_NAMES["glcm"])
    with pytest.raises(
        SettingsError,
        match=r"unknown feature 'JointEntropie' \(did you mean 'JointEntropy'\?\); "
        r"valid: Autocorrelation, JointAverage, ",
    ) as info:
        load_params({"featureClass": {"glcm": ["JointEntropie"]}})
    assert str(info.value).endswith(valid)
    # No family is skipped: every class's names are data, checked without importing its kernels.
    with pytest.raises(SettingsError, match="unknown feature 'Anything'"):
        load_params({"featureClass": {"ngtdm": ["Anything"]}})
