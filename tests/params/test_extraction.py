"""ExtractionParams as the typed contract between layers: frozen, picklable, hash-stable."""

from __future__ import annotations

import math
import pickle

import pytest

from radflow.errors import SettingsError
from radflow.params.extraction import ExtractionParams, Settings
from radflow.params.ibsi_filters import LawsFilter
from radflow.params.pyradiomics_params import load_params, params_hash, params_to_dict

SOURCES = [
    None,
    {
        "setting": {"binWidth": 10, "resampledPixelSpacing": [1, 1, 2], "interpolator": 3},
        "imageType": {
            "Original": {},
            "LoG": {"sigma": [1, 2.5]},
            "Wavelet": {"wavelet": "haar"},
            "Laws": {"kernel": ["L5E5E5", "E5E5E5"], "rotation_invariant": True, "binWidth": 2},
        },
        "featureClass": {"glcm": ["Contrast", "Idm"], "firstorder": None},
        "voxelSetting": {"initValue": "nan", "kernelRadius": 2},
    },
]


@pytest.mark.parametrize("source", SOURCES)
def test_params_pickle_and_round_trip(source):
    params = load_params(source)
    again = pickle.loads(pickle.dumps(params))
    # NaN (initValue) is unequal to itself once copied: compare the normalised mappings.
    assert params_to_dict(again) == params_to_dict(params)
    assert again == params or math.isnan(params.voxel_settings.init_value)
    assert params_hash(again) == params_hash(params)
    assert params_to_dict(load_params(params_to_dict(again))) == params_to_dict(params)
    with pytest.raises(AttributeError):  # frozen: tasks can share one object safely
        again.settings = Settings()


def test_filter_settings_of_an_enabled_type():
    params = load_params(SOURCES[1])
    laws = params.filter_settings("Laws")
    assert (
        isinstance(laws, LawsFilter)
        and laws.kernel == ("L5E5E5", "E5E5E5")
        and laws.rotation_invariant
    )
    assert pickle.loads(pickle.dumps(laws)) == laws
    assert params.settings_for("Laws").bin_width == 2
    with pytest.raises(SettingsError, match="not an IBSI filter image type"):
        params.filter_settings("LoG")
    with pytest.raises(SettingsError, match="not enabled"):
        params.filter_settings("Mean")


@pytest.mark.parametrize(
    "setting, value",
    [
        ("binWidth", "25"),  # the README: a wrong type is an error
        ("label", "1"),
        ("distances", ["1"]),
        ("normalize", "true"),
        ("resampledPixelSpacing", ["1", "1", "1"]),
    ],
)
def test_numbers_written_as_strings_are_refused(setting, value):
    with pytest.raises(SettingsError, match=rf"setting '{setting}': .* is not allowed; expected"):
        load_params({"setting": {setting: value}})


def test_typed_params_are_what_the_extraction_defaults_to():
    assert ExtractionParams() == load_params(None)
    assert list(ExtractionParams().image_types) == ["Original"]


def test_params_hash_unchanged_by_the_typed_settings():
    # Values computed before settings.py was split (commit ae63c0e): feature-set partitions
    # and incremental runs of existing tables depend on them.
    assert params_hash(load_params(None)) == "5213d97f168971a2"
    assert (
        params_hash(load_params({"setting": {"binWidth": 5, "distances": [1, 2]}}))
        == "8785bb8d441c423b"
    )
    assert params_hash(load_params(SOURCES[1])) == "1375c70048fe6815"


def test_settings_for_is_built_once_per_image_type_and_not_shipped():
    """settings_for caches per image type (an extraction asks per class and filter); the cache
    is not part of the pickled object, its equality, its parameter hash or its Dask token."""
    from dask.base import tokenize

    params = load_params({"imageType": {"Original": {}, "Wavelet": {"binWidth": 10}}})
    shipped = pickle.dumps(params)
    first = params.settings_for("Wavelet")
    assert params.settings_for("Wavelet") is first and first.bin_width == 10
    assert params.settings_for("Original").bin_width == 25
    with pytest.raises(SettingsError, match="not enabled"):
        params.settings_for("LoG")
    again = pickle.loads(pickle.dumps(params))
    assert pickle.dumps(params) == shipped and "_settings_cache" not in again.__dict__
    assert again == params and params_hash(again) == params_hash(params)
    assert tokenize(again) == tokenize(params)
