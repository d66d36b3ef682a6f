"""Each image type against PyRadiomics 3.0.1's own generator, on whole small images.

Same image, same settings: the names must be PyRadiomics' in the same order,
and the filtered values and pixel types the same (LBP 3D: inside the ROI, the
only voxels PyRadiomics defines).
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from _filter_images import box_mask, ct_like, install_lbp3d_shims, pet_like, pyradiomics_images

from radflow.filters.image_types import image_types

pytestmark = [
    pytest.mark.oracle,
    # PyRadiomics' own import of map_coordinates, and scikit-image's advice on float LBP input
    pytest.mark.filterwarnings("ignore:Please import `map_coordinates`:DeprecationWarning"),
    pytest.mark.filterwarnings(
        "ignore:Applying `local_binary_pattern` to floating-point:UserWarning"
    ),
]

CT = ct_like()
PET = pet_like()
IMAGES = {"ct": CT, "pet": PET}
ROI = (slice(6, 18), slice(10, 30), slice(8, 32))
MASKS = {"ct": box_mask(CT, ROI), "pet": box_mask(PET, ROI)}


def radflow_images(image, mask, image_type, custom, settings=None):
    return {
        name: sitk.GetArrayFromImage(out)
        for name, out, _ in image_types(image, mask, {image_type: custom}, settings or {})
    }


def assert_same(ours: dict, theirs: dict, roi=None, rtol=0.0):
    assert list(ours) == list(theirs)
    for name in theirs:
        a, b = ours[name], theirs[name]
        assert a.dtype == b.dtype, name
        if roi is not None:
            a, b = a[roi], b[roi]
        # values that are 0 in exact arithmetic may come out as +-1e-17
        atol = rtol * float(np.max(np.abs(b), initial=0.0))
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=name)


CASES = [
    ("Original", {}),
    ("LoG", {"sigma": [1.0, 2.5]}),
    ("LoG", {"sigma": [2, 0.5]}),  # an int sigma is named without "-0"
    ("Wavelet", {}),
    ("Wavelet", {"wavelet": "haar", "start_level": 1, "level": 2}),
    ("Wavelet", {"wavelet": "db2", "level": 2}),
    ("Wavelet", {"wavelet": "bior1.3", "force2D": True, "force2Ddimension": 0}),
    ("Wavelet", {"wavelet": "sym3", "force2D": True, "force2Ddimension": 1}),
    ("Wavelet", {"force2D": True, "force2Ddimension": 2}),
    ("Wavelet", {"force2D": False, "force2Ddimension": 1}),  # dimension ignored without force2D
    ("Square", {}),
    ("SquareRoot", {}),
    ("Logarithm", {}),
    ("Exponential", {}),
    ("Gradient", {}),
    ("Gradient", {"gradientUseSpacing": False}),
]


@pytest.mark.parametrize("kind", list(IMAGES))
@pytest.mark.parametrize(
    ("image_type", "custom"), CASES, ids=[f"{t}-{i}" for i, (t, _) in enumerate(CASES)]
)
def test_matches_pyradiomics(kind, image_type, custom):
    pytest.importorskip("radiomics")
    image, mask = IMAGES[kind], MASKS[kind]
    ours = radflow_images(image, mask, image_type, custom)
    theirs = pyradiomics_images(image, mask, image_type, custom)
    assert ours, "no image"
    assert_same(ours, theirs)


@pytest.mark.parametrize("method", ["default", "ror", "uniform", "var"])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_lbp2d_matches_pyradiomics(method, axis):
    pytest.importorskip("radiomics")
    custom = {
        "lbp2DMethod": method,
        "force2D": True,
        "force2Ddimension": axis,
        "lbp2DRadius": 1.5 if axis else 1,
        "lbp2DSamples": 12 if method == "ror" else 8,
    }
    for image, mask in ((CT, MASKS["ct"]), (PET, MASKS["pet"])):
        with np.errstate(invalid="ignore"):  # "var" overflows int16, in PyRadiomics too
            ours = radflow_images(image, mask, "LBP2D", custom)
            theirs = pyradiomics_images(image, mask, "LBP2D", custom)
        assert_same(ours, theirs)


@pytest.mark.parametrize(
    "custom",
    [
        {},
        {"lbp3DLevels": 3, "lbp3DIcosphereRadius": 2, "lbp3DIcosphereSubdivision": 2},
        {"lbp3DLevels": 2, "lbp3DIcosphereRadius": 1.5, "lbp3DIcosphereSubdivision": 0, "label": 2},
    ],
)
def test_lbp3d_matches_pyradiomics(monkeypatch, custom):
    pytest.importorskip("radiomics")
    install_lbp3d_shims(monkeypatch)
    label = custom.get("label", 1)
    for image in (CT, PET):
        mask = box_mask(image, ROI, label=label)
        ours = radflow_images(image, mask, "LBP3D", custom)
        theirs = pyradiomics_images(image, mask, "LBP3D", custom)
        assert list(ours) == [
            f"lbp-3D-m{n}" for n in range(1, custom.get("lbp3DLevels", 2) + 1)
        ] + ["lbp-3D-k"]
        assert_same(ours, theirs, roi=ROI, rtol=1e-12)


def test_log_skips_sigmas_as_pyradiomics():
    pytest.importorskip("radiomics")
    # 6 slices of 2.5 mm: sigma 15 mm needs ceil(15 / 2.5) + 1 = 7
    image = ct_like(shape=(6, 20, 20))
    mask = box_mask(image, (slice(2, 4), slice(5, 15), slice(5, 15)))
    custom = {"sigma": [1.0, 15.0, 2.0]}
    with pytest.warns(UserWarning, match="sigma 15.0 mm skipped"):
        ours = radflow_images(image, mask, "LoG", custom)
    assert_same(ours, pyradiomics_images(image, mask, "LoG", custom))
    assert list(ours) == ["log-sigma-1-0-mm-3D", "log-sigma-2-0-mm-3D"]

    tiny = ct_like(shape=(3, 20, 20))
    tiny_mask = box_mask(tiny, (slice(1, 2), slice(5, 15), slice(5, 15)))
    with pytest.warns(UserWarning, match="below 4 voxels"):
        assert radflow_images(tiny, tiny_mask, "LoG", custom) == {}
    assert pyradiomics_images(tiny, tiny_mask, "LoG", custom) == {}


def test_all_types_in_file_order_with_settings_in_force():
    pytest.importorskip("radiomics")
    enabled = {
        "Gradient": {},
        "Original": {},
        "Wavelet": {"binWidth": 5, "wavelet": "haar"},
        "LoG": {"sigma": [1.0]},
    }
    settings = {"binWidth": 25, "force2D": False}
    out = list(image_types(CT, MASKS["ct"], enabled, settings))
    assert [name for name, _, _ in out] == [
        "gradient",
        "original",
        *[f"wavelet-{b}" for b in ("LLH", "LHL", "LHH", "HLL", "HLH", "HHL", "HHH", "LLL")],
        "log-sigma-1-0-mm-3D",
    ]
    in_force = {name: kw for name, _, kw in out}
    assert in_force["original"] == settings
    assert in_force["wavelet-HHH"] == {"binWidth": 5, "force2D": False, "wavelet": "haar"}
    for name, filtered, _ in out:  # every filtered image keeps the input's geometry
        assert (
            filtered.GetOrigin() == CT.GetOrigin() and filtered.GetSpacing() == CT.GetSpacing()
        ), name


def test_lbp3d_single_level_is_the_count_of_brighter_samples():
    # PyRadiomics crashes with lbp3DLevels 1 (its harmonics table is then 1D);
    # radflow gives degree 0 alone: c00 = S Y00 with S the number of samples
    # >= the centre and Y00 = 1 / (2 sqrt(pi)), so m1 = sqrt(Nv) S / (4 pi).
    from radflow.filters.lbp import icosphere_vertices, lbp3d_images

    mask = MASKS["ct"]
    one = dict(lbp3d_images(CT, mask, levels=1))
    two = dict(lbp3d_images(CT, mask, levels=2))
    assert list(one) == ["lbp-3D-m1", "lbp-3D-k"]
    m1 = sitk.GetArrayFromImage(one["lbp-3D-m1"])
    np.testing.assert_allclose(m1, sitk.GetArrayFromImage(two["lbp-3D-m1"]), rtol=1e-12)
    n_vertices = len(icosphere_vertices(1, 1.0))
    counts = m1[ROI] * 4 * np.pi / np.sqrt(n_vertices)
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-9)
    counts = np.round(counts)
    assert counts.min() >= 0 and counts.max() <= n_vertices and len(np.unique(counts)) > 10
