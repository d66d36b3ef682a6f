"""The IBSI 2 filters as radflow image types (Mean, LoGIBSI, Laws, Gabor, WaveletIBSI, Simoncelli).

The filters themselves are checked against the IBSI 2 consensus response maps
and phase-2 values (tests/filters/ibsi). Here: the wiring (settings -> the
filter functions' arguments, spacing order, degrees), the image names, the
settings' validation, and that the ROI box grown by read_box's margin gives
the whole image's values inside the ROI.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import SimpleITK as sitk
from _filter_images import ct_like
from scipy import ndimage

from radflow.errors import SettingsError
from radflow.filters import ibsi
from radflow.filters.image_types import (
    WHOLE_AXIS,
    image_types,
    read_box,
    required_margin_voxels,
)
from radflow.params.ibsi_filters import filter_settings
from radflow.params.pyradiomics_params import load_params, params_hash, params_to_dict

SPACING_XYZ = (0.8, 0.7, 2.5)
SPACING_ZYX = SPACING_XYZ[::-1]
VOLUME = ct_like(shape=(18, 50, 46), spacing_xyz=SPACING_XYZ, seed=7)
CT = sitk.GetArrayFromImage(VOLUME).astype(np.float64)


def _ellipsoid(centre_zyx, radii_zyx) -> np.ndarray:
    z, y, x = np.indices(CT.shape)
    r = sum(((c - o) / a) ** 2 for c, o, a in zip((z, y, x), centre_zyx, radii_zyx))
    return (r <= 1).astype(np.uint8)


MASKS = {
    "interior": _ellipsoid((9, 25, 23), (2, 5, 6)),
    "at_edge": _ellipsoid((2, 24, 3), (2, 5, 5)),  # touches z = 0 and x = 0
}

#: (image type, entry, image names), the names written out by hand from the documented grammar.
CASES = [
    ("Mean", {"support_voxels": [3, 5], "dimensions": 2}, ["mean-m3-2D", "mean-m5-2D"]),
    ("Mean", {"support_voxels": 3, "boundary": "periodic"}, ["mean-m3-3D-periodic"]),
    ("LoGIBSI", {"sigma_mm": 1.5}, ["logibsi-s1p5mm-t4-3D"]),
    (
        "LoGIBSI",
        {"sigma_mm": [2, 0.75], "truncate": 3, "dimensions": 2, "boundary": "constant"},
        ["logibsi-s2mm-t3-2D-constant", "logibsi-s0p75mm-t3-2D-constant"],
    ),
    (
        "Laws",
        {"kernel": "L5E5E5", "rotation_invariant": True, "energy_distance": 2},
        ["laws-L5E5E5-energy2-rinv-max"],
    ),
    (
        "Laws",
        {"kernel": ["E3W5", "S5S5"], "boundary": "nearest"},
        ["laws-E3W5-nearest", "laws-S5S5-nearest"],
    ),
    (
        "Gabor",
        {
            "sigma_mm": 2,
            "wavelength_mm": 1.5,
            "gamma": 1.5,
            "rotation_invariant": True,
            "theta_step_deg": 45,
            "pooling": "max",
        },
        ["gabor-s2mm-g1p5-l1p5mm-rinv45deg-max-2D"],
    ),
    (
        "Gabor",
        {
            "sigma_mm": 1.5,
            "wavelength_mm": 3,
            "theta_deg": 60,
            "orthogonal_planes": True,
            "response": "real",
            "boundary": "periodic",
        },
        ["gabor-s1p5mm-g1-l3mm-th60deg-real-3D-periodic"],
    ),
    (
        "WaveletIBSI",
        {
            "wavelet": "db3",
            "decomposition": ["LLH", "HHH"],
            "level": [1, 2],
            "rotation_invariant": True,
        },
        [
            "waveletibsi-db3-LLH-level1-rinv-avg",
            "waveletibsi-db3-LLH-level2-rinv-avg",
            "waveletibsi-db3-HHH-level1-rinv-avg",
            "waveletibsi-db3-HHH-level2-rinv-avg",
        ],
    ),
    (
        "WaveletIBSI",
        {"wavelet": "coif1", "decomposition": "HL", "boundary": "constant"},
        ["waveletibsi-coif1-HL-level1-constant"],
    ),
    (
        "Simoncelli",
        {"level": [1, 2], "dimensions": 2},
        ["simoncelli-level1-2D", "simoncelli-level2-2D"],
    ),
    (
        "Simoncelli",
        {"frequency_grid": "dft", "boundary": "mirror"},
        ["simoncelli-level1-3D-dft-mirror"],
    ),
]
CASE_IDS = [f"{t}-{i}" for i, (t, _, _) in enumerate(CASES)]


def _image(array, box=None) -> sitk.Image:
    image = sitk.GetImageFromArray(array if box is None else array[box])
    image.SetSpacing(SPACING_XYZ)
    start = [0, 0, 0] if box is None else [s.start for s in box[::-1]]
    image.SetOrigin(VOLUME.TransformIndexToPhysicalPoint(start))
    return image


def _roi_values(enabled, mask, box=None) -> dict[str, np.ndarray]:
    roi = (mask if box is None else mask[box]).astype(bool)
    return {
        name: sitk.GetArrayFromImage(out)[roi]
        for name, out, _ in image_types(_image(CT, box), _image(mask, box), enabled, {})
    }


@pytest.mark.parametrize(("image_type", "entry", "names"), CASES, ids=CASE_IDS)
def test_image_names(image_type, entry, names):
    mask = MASKS["interior"]
    out = [name for name, _, _ in image_types(_image(CT), _image(mask), {image_type: entry}, {})]
    assert out == names
    assert all(re.fullmatch(r"[A-Za-z0-9-]+", name) for name in out)


def test_responses_are_the_filter_functions_with_the_documented_arguments():
    # Each entry and the call it stands for, written out independently:
    # spacing in (z, y, x) from SimpleITK's (x, y, z), angles in radians.
    calls = [
        (
            {"Mean": {"support_voxels": 5, "dimensions": 2, "boundary": "constant"}},
            lambda a: ibsi.mean_filter(a, support_voxels=5, dimensions=2, boundary="constant"),
        ),
        (
            {"LoGIBSI": {"sigma_mm": 1.5}},
            lambda a: ibsi.laplacian_of_gaussian(
                a, spacing_zyx=(2.5, 0.7, 0.8), sigma_mm=1.5, truncate=4.0
            ),
        ),
        (
            {"Laws": {"kernel": "L5E5", "rotation_invariant": True, "energy_distance": 3}},
            lambda a: ibsi.laws_filter(
                a, kernel="L5E5", rotation_invariant=True, pooling="max", energy_distance=3
            ),
        ),
        (
            {
                "Gabor": {
                    "sigma_mm": 3,
                    "wavelength_mm": 2,
                    "gamma": 1.5,
                    "rotation_invariant": True,
                    "theta_step_deg": 22.5,
                }
            },
            lambda a: ibsi.gabor_filter(
                a,
                spacing_zyx=(2.5, 0.7, 0.8),
                sigma_mm=3,
                wavelength_mm=2,
                gamma=1.5,
                rotation_invariant=True,
                theta_step_rad=math.pi / 8,
                pooling="average",
            ),
        ),
        (
            {
                "Gabor": {
                    "sigma_mm": 3,
                    "wavelength_mm": 2,
                    "theta_deg": 135,
                    "orthogonal_planes": True,
                }
            },
            lambda a: ibsi.gabor_filter(
                a,
                spacing_zyx=(2.5, 0.7, 0.8),
                sigma_mm=3,
                wavelength_mm=2,
                gamma=1.0,
                theta_rad=3 * math.pi / 4,
                orthogonal_planes=True,
            ),
        ),
        (
            {
                "WaveletIBSI": {
                    "wavelet": "db3",
                    "decomposition": "HHH",
                    "level": 2,
                    "rotation_invariant": True,
                }
            },
            lambda a: ibsi.wavelet_filter(
                a, wavelet="db3", decomposition="HHH", level=2, rotation_invariant=True
            ),
        ),
        (
            {"Simoncelli": {"level": 2}},
            lambda a: ibsi.simoncelli_filter(a, level=2, boundary="periodic"),
        ),
    ]
    whole = np.ones(CT.shape, np.uint8)
    for enabled, call in calls:
        [(name, out, _)] = list(image_types(_image(CT), _image(whole), enabled, {}))
        assert out.GetSpacing() == SPACING_XYZ and out.GetOrigin() == VOLUME.GetOrigin()
        np.testing.assert_allclose(
            sitk.GetArrayFromImage(out), call(CT), rtol=0, atol=1e-9, err_msg=name
        )


@pytest.mark.parametrize("where", list(MASKS))
@pytest.mark.parametrize(("image_type", "entry", "names"), CASES, ids=CASE_IDS)
def test_roi_box_plus_margin_gives_the_whole_image_values(where, image_type, entry, names):
    mask = MASKS[where]
    enabled = {image_type: entry}
    box = read_box(enabled, {}, ndimage.find_objects(mask)[0], CT.shape, SPACING_ZYX)
    if image_type != "Simoncelli":
        assert any(s.stop - s.start < n for s, n in zip(box, CT.shape)), (
            "the box should be a real crop"
        )
    whole, crop = _roi_values(enabled, mask), _roi_values(enabled, mask, box)
    assert list(crop) == names
    for name in names:
        # The same sums in another order (running means, FFT lengths): the last bits only.
        scale = np.abs(whole[name]).max()
        np.testing.assert_allclose(
            crop[name], whole[name], rtol=0, atol=1e-10 * scale, err_msg=name
        )


@pytest.mark.parametrize(
    ("image_type", "entry", "names"),
    [c for c in CASES if c[0] != "Simoncelli"],
    ids=[i for i, c in zip(CASE_IDS, CASES) if c[0] != "Simoncelli"],
)
def test_margin_is_needed(image_type, entry, names):
    # One voxel less than the margin in-plane changes values at the ROI's edge (of the image
    # of a sweep that needs the largest margin).
    mask = MASKS["interior"]
    margin = required_margin_voxels(image_type, entry, SPACING_ZYX)
    bbox = ndimage.find_objects(mask)[0]
    short = tuple(
        slice(max(s.start - m + (axis > 0), 0), min(s.stop + m - (axis > 0), n))
        for axis, (s, m, n) in enumerate(zip(bbox, margin, CT.shape))
    )
    whole, crop = (
        _roi_values({image_type: entry}, mask),
        _roi_values({image_type: entry}, mask, short),
    )
    assert any(
        np.abs(crop[name] - whole[name]).max() > 1e-6 * np.abs(whole[name]).max() for name in names
    )


def test_margins_by_hand():
    # Mean: (M - 1) / 2 per filtered axis.
    assert required_margin_voxels("Mean", {"support_voxels": [3, 7]}, SPACING_ZYX) == (3, 3, 3)
    assert required_margin_voxels("Mean", {"support_voxels": 5, "dimensions": 2}, SPACING_ZYX) == (
        0,
        2,
        2,
    )
    # LoG: floor(4 sigma / spacing + 0.5): 4 x 2 mm over 2.5, 0.7, 0.8 mm.
    assert required_margin_voxels("LoGIBSI", {"sigma_mm": [1, 2]}, SPACING_ZYX) == (3, 11, 10)
    # Laws: half of a 5-tap kernel + the energy distance.
    assert required_margin_voxels(
        "Laws", {"kernel": "L5E5E5", "energy_distance": 7}, SPACING_ZYX
    ) == (9, 9, 9)
    assert required_margin_voxels("Laws", {"kernel": "E3L3"}, SPACING_ZYX) == (0, 1, 1)
    # Gabor: 4 max(sigma, sigma / gamma) = 8 mm: 3, 11, 10 voxels; in-plane unless orthogonal;
    # gamma < 1 widens the envelope across the wave: 4 x 2 mm / 0.5 = 16 mm, 6, 23, 20 voxels.
    gabor = {"sigma_mm": 2, "wavelength_mm": 3, "gamma": 2}
    assert required_margin_voxels("Gabor", gabor, SPACING_ZYX) == (0, 11, 10)
    assert required_margin_voxels("Gabor", {**gabor, "orthogonal_planes": True}, SPACING_ZYX) == (
        3,
        11,
        10,
    )
    assert required_margin_voxels(
        "Gabor", {**gabor, "gamma": 0.5, "orthogonal_planes": True}, SPACING_ZYX
    ) == (6, 23, 20)
    # db3: 6 taps -> 7 with the centre, half-width 3 at level 1, 6 at level 2 (dilated): 3 + 6.
    assert required_margin_voxels(
        "WaveletIBSI", {"wavelet": "db3", "decomposition": "LH", "level": 2}, SPACING_ZYX
    ) == (0, 9, 9)
    assert required_margin_voxels("Simoncelli", {}, SPACING_ZYX) == (WHOLE_AXIS,) * 3
    bbox = (slice(5, 9), slice(20, 30), slice(18, 28))
    assert read_box({"Simoncelli": {"dimensions": 2}}, {}, bbox, CT.shape, SPACING_ZYX) == (
        slice(5, 9),
        slice(0, 50),
        slice(0, 46),
    )
    # Periodic: the whole axis where the margin leaves the volume (z here), else the margin.
    assert read_box(
        {"Mean": {"support_voxels": 15, "boundary": "periodic"}}, {}, bbox, CT.shape, SPACING_ZYX
    ) == (slice(0, 18), slice(13, 37), slice(11, 35))


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"Laws": {"kernal": "L5E5"}},
            r"imageType 'Laws': unknown key 'kernal' \(did you mean 'kernel'\?\)",
        ),
        ({"Laws": {"kernel": "W3L5"}}, r"imageType 'Laws' setting 'kernel': 'W3L5' is not allowed"),
        (
            {"Laws": {"kernel": "L5E5", "pooling": "average"}},
            r"'pooling'.*no effect unless rotation_invariant is true",
        ),
        (
            {"Laws": {"kernel": "L5E5", "energy_distance": -1}},
            r"'energy_distance': -1 is not allowed",
        ),
        (
            {"Mean": {"support_voxels": 4}},
            r"'support_voxels': 4 is not allowed; expected an odd number",
        ),
        ({"Mean": {}}, r"imageType 'Mean' setting 'support_voxels' is required"),
        ({"Mean": {"support_voxels": []}}, r"'support_voxels': \[\] is not allowed"),
        ({"Mean": {"support_voxels": 3, "sigma": [1.0]}}, r"imageType 'Mean': unknown key 'sigma'"),
        (
            {"Mean": {"support_voxels": 3, "resegmentRange": [0, 1]}},
            r"'resegmentRange' cannot differ per image type",
        ),
        (
            {"Mean": {"support_voxels": 3, "boundary": "reflect"}},
            r"'boundary': 'reflect' is not allowed",
        ),
        ({"LoGIBSI": {"sigma_mm": 0}}, r"'sigma_mm': 0 is not allowed; expected a number > 0"),
        (
            {"Gabor": {"sigma_mm": 1, "wavelength_mm": 2, "rotation_invariant": True}},
            r"'theta_step_deg' is required when rotation_invariant is true",
        ),
        (
            {"Gabor": {"sigma_mm": 1, "wavelength_mm": 2, "theta_step_deg": 45}},
            r"'theta_step_deg'.*no effect",
        ),
        (
            {"Gabor": {"sigma_mm": 1, "wavelength_mm": 2, "theta_deg": 360}},
            r"'theta_deg': 360 is not allowed",
        ),
        (
            {"WaveletIBSI": {"wavelet": "mexh", "decomposition": "LH"}},
            r"'wavelet': 'mexh' is not allowed",
        ),
        (
            {"WaveletIBSI": {"wavelet": "db2", "decomposition": "LHLH"}},
            r"'decomposition': 'LHLH' is not allowed",
        ),
        ({"Simoncelli": {"level": 0}}, r"imageType 'Simoncelli' setting 'level': 0 is not allowed"),
        (
            {"Simoncelli": {"dimension": 2}},
            r"unknown key 'dimension' \(did you mean 'dimensions'\?\)",
        ),
        ({"Laplace": {}}, r"imageType 'Laplace' is not known"),
    ],
)
def test_bad_settings_name_the_key(entry, message):
    with pytest.raises(SettingsError, match=message):
        load_params({"imageType": entry})
    mask = MASKS["interior"]
    with pytest.raises(SettingsError, match=message):  # the dispatcher checks raw entries alike
        next(image_types(_image(CT), _image(mask), entry, {}))


def test_filter_keys_belong_in_their_entry():
    with pytest.raises(SettingsError, match=r"'kernel' is a key of the image type\(s\) Laws"):
        load_params({"setting": {"kernel": "L5E5"}})
    # A global PyRadiomics setting of the same name does not reach an IBSI filter.
    params = load_params(
        {
            "imageType": {"WaveletIBSI": {"wavelet": "haar", "decomposition": "LH"}},
            "setting": {"wavelet": "db2", "level": 3},
        }
    )
    assert params.image_types["WaveletIBSI"]["level"] == (1,)
    [(name, _)] = filter_settings("WaveletIBSI", params.image_types["WaveletIBSI"]).images()
    assert name == "waveletibsi-haar-LH-level1"


def test_entry_overrides_settings_applied_after_filtering():
    params = load_params(
        {
            "imageType": {"Original": {}, "Laws": {"kernel": "L5E5", "binWidth": 2}},
            "setting": {"binWidth": 25},
        }
    )
    assert params.settings_for("Laws").bin_width == 2.0
    assert params.settings_for("Original").bin_width == 25.0


def test_normalised_parameters_round_trip_and_hash():
    short = load_params({"imageType": {"Laws": {"kernel": "L5E5E5", "rotation_invariant": True}}})
    long = load_params(
        {
            "imageType": {
                "Laws": {
                    "kernel": ["L5E5E5"],
                    "rotation_invariant": True,
                    "pooling": "max",
                    "boundary": "mirror",
                    "energy_distance": None,
                }
            }
        }
    )
    assert short == long and params_hash(short) == params_hash(long)
    assert load_params(params_to_dict(short)) == short
    other = load_params(
        {
            "imageType": {
                "Laws": {"kernel": "L5E5E5", "rotation_invariant": True, "pooling": "average"}
            }
        }
    )
    assert params_hash(other) != params_hash(short)


def test_extraction_on_a_laws_energy_map():
    from radflow.extraction.extractor import extract

    mask = MASKS["interior"]
    params = {
        "imageType": {
            "Original": {},
            "Laws": {
                "kernel": "L5E5",
                "rotation_invariant": True,
                "energy_distance": 3,
                "binWidth": 10,
            },
        },
        "featureClass": {"firstorder": ["Mean", "Maximum"], "glcm": ["JointEnergy"]},
        "setting": {"additionalInfo": False},
    }
    out = extract(_image(CT), _image(mask), params)
    prefix = "laws-L5E5-energy3-rinv-max"
    assert sorted(k for k in out if k.startswith(prefix)) == [
        f"{prefix}_firstorder_Maximum",
        f"{prefix}_firstorder_Mean",
        f"{prefix}_glcm_JointEnergy",
    ]
    energy = ibsi.laws_filter(
        CT, kernel="L5E5", rotation_invariant=True, pooling="max", energy_distance=3
    )
    inside = energy[mask.astype(bool)]
    assert out[f"{prefix}_firstorder_Mean"] == pytest.approx(inside.mean(), rel=1e-9)
    assert out[f"{prefix}_firstorder_Maximum"] == pytest.approx(inside.max(), rel=1e-9)
