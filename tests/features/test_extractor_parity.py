"""End-to-end parity of :func:`radflow.extract` with PyRadiomics 3.0.1's extractor.

Every key PyRadiomics returns must be returned, no other, and every feature
value must agree to rtol 1e-6 (NaN where PyRadiomics gives NaN). Diagnostic
values must agree too, except the ones that name software versions or echo
the settings (PyRadiomics echoes only the keys it was given, radflow every
setting in force).

Exceptions, explicitly:
- LBP3D: PyRadiomics 3.0.1 needs ``trimesh`` (not installed) and
  ``scipy.special.sph_harm`` (removed in SciPy 1.15). The fixture
  ``lbp3d_oracle`` supplies both: an icosphere written here from its
  definition, and ``sph_harm`` as the same function under SciPy's new name
  (``sph_harm_y``, arguments reordered). Nothing of radflow is used for it.
"""

from __future__ import annotations

import logging
import sys
import types
import warnings

import numpy as np
import pytest
import SimpleITK as sitk
import volumes

from radflow.errors import InputError
from radflow.extraction.extractor import extract
from radflow.features.registry import family_module

radiomics = pytest.importorskip("radiomics")
# After importorskip: without PyRadiomics (the oracle extra) the module is skipped, not an error.
from radiomics import featureextractor  # noqa: E402

pytestmark = pytest.mark.oracle

RTOL = 1e-6
# Diagnostics whose values legitimately differ: software versions, settings echo.
_UNCOMPARED = ("diagnostics_Versions_", "diagnostics_Configuration_")

ALL_TYPES = {
    "Original": {}, "LoG": {"sigma": [1.0, 2.5]}, "Wavelet": {}, "Square": {}, "SquareRoot": {},
    "Logarithm": {}, "Exponential": {}, "Gradient": {}, "LBP2D": {}, "LBP3D": {"lbp3DLevels": 2},
}  # fmt: skip


def _every_feature(*classes):
    """featureClass section enabling every feature, deprecated ones included."""
    return {c: [f.name for f in family_module(c).FEATURES] for c in classes}


# With force2D, PyRadiomics' default classes include shape2D, which fails on a 3D ROI.
NO_SHAPE2D = {c: None for c in ("shape", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm")}


def _single_slice(image, mask):
    """The CT ROI restricted to its middle axial slice (for shape2D)."""
    roi = sitk.GetArrayFromImage(mask)
    keep = np.zeros_like(roi)
    z = int(np.round(np.nonzero(roi)[0].mean()))
    keep[z] = roi[z]
    out = sitk.GetImageFromArray(keep)
    out.CopyInformation(mask)
    return image, out


CASES = {
    "ct-all-image-types": ("ct", {"setting": {"binWidth": 25}, "imageType": ALL_TYPES}, None),
    "ct-bincount-distances-asymmetric": (
        "ct",
        {
            "setting": {
                "binCount": 32,
                "distances": [1, 2],
                "weightingNorm": "infinity",
                "gldm_a": 1,
                "symmetricalGLCM": False,
                "voxelArrayShift": 1000,
            },
            "imageType": {"Original": {}, "LoG": {"sigma": [1.5]}},
            "featureClass": _every_feature(
                "firstorder", "shape", "glcm", "glrlm", "glszm", "gldm", "ngtdm"
            ),
        },
        None,
    ),
    "ct-precrop-normalize-outliers-relative": (
        "ct",
        {
            "setting": {
                "binWidth": 0.1,
                "preCrop": True,
                "padDistance": 3,
                "normalize": True,
                "removeOutliers": 2,
                "resegmentRange": [-0.5, 0.9],
                "resegmentMode": "relative",
                "distances": [2],
            },
            "imageType": {
                "Original": {},
                "Gradient": {"gradientUseSpacing": False},
                "SquareRoot": {},
            },
        },
        None,
    ),
    "ct-shape2d-single-slice": (
        "ct-slice",
        {
            "setting": {
                "binWidth": 25,
                "force2D": True,
                "force2Ddimension": 0,
                "minimumROIDimensions": 2,
            },
            "imageType": {"Original": {}, "LBP2D": {"lbp2DRadius": 2, "lbp2DSamples": 12}},
            "featureClass": {
                "shape2D": [f.name for f in family_module("shape2D").FEATURES],
                "shape": None,
                "firstorder": None,
                "glcm": None,
                "glszm": None,
            },
        },
        None,
    ),
    # A volume much larger than the ROI: radflow filters only a box of it.
    "ct-embedded-box-filters": (
        "ct-embedded",
        {
            "setting": {"binWidth": 25},
            "imageType": {
                "Original": {},
                "LoG": {"sigma": [0.5]},
                "Wavelet": {},
                "Square": {},
                "Logarithm": {},
                "Gradient": {},
                "LBP2D": {},
            },
            "featureClass": {"firstorder": None, "glcm": None, "glszm": None},
        },
        None,
    ),
    "ct-embedded-normalize-exponential": (
        "ct-embedded",
        {
            "setting": {
                "binWidth": 0.2,
                "normalize": True,
                "normalizeScale": 2,
                "removeOutliers": 1.5,
            },
            "imageType": {"Original": {}, "Exponential": {}, "SquareRoot": {}},
            "featureClass": {"firstorder": None, "gldm": None},
        },
        None,
    ),
    "pet-resample-bspline-resegment": (
        "pet",
        {
            "setting": {
                "binWidth": 0.25,
                "resampledPixelSpacing": [2.0, 2.0, 2.0],
                "interpolator": "sitkBSpline",
                "resegmentRange": [2.5],
                "resegmentShape": True,
            },
            "imageType": {"Original": {}, "LoG": {"sigma": [2.0, 4.0]}, "Square": {}},
        },
        None,
    ),
    "pet-resample-linear-sigma": (
        "pet",
        {
            "setting": {
                "binCount": 20,
                "resampledPixelSpacing": [3.0, 3.0, 0],
                "interpolator": "sitkLinear",
                "resegmentRange": [-2, 2],
                "resegmentMode": "sigma",
                "padDistance": 2,
            },
            "imageType": {
                "Original": {},
                "Exponential": {},
                "Logarithm": {},
                "Wavelet": {"wavelet": "haar"},
            },
        },
        None,
    ),
    "mr-label2-force2d-normalize-euclidean": (
        "mr",
        {
            "setting": {
                "binWidth": 15,
                "normalize": True,
                "normalizeScale": 100,
                "force2D": True,
                "distances": [1, 2],
                "weightingNorm": "euclidean",
            },
            "imageType": {"Original": {}, "Wavelet": {}, "Exponential": {}, "LBP2D": {}},
            "featureClass": NO_SHAPE2D,
        },
        2,
    ),
    "mr-label2-force2d-dim2-lanczos": (
        "mr",
        {
            "setting": {
                "label": 2,
                "binWidth": 20,
                "force2D": True,
                "force2Ddimension": 2,
                "weightingNorm": "no_weighting",
                "resampledPixelSpacing": [1.0, 1.0, 2.5],
                "interpolator": "sitkLanczosWindowedSinc",
            },
            "imageType": {"Original": {}, "Wavelet": {"level": 2}},
            "featureClass": NO_SHAPE2D,
        },
        None,
    ),
    "mr-label2-dim1-manhattan": (
        "mr",
        {
            "setting": {
                "binWidth": 20,
                "force2D": True,
                "force2Ddimension": 1,
                "weightingNorm": "manhattan",
                "gldm_a": 1,
            },
            "imageType": {"Original": {}, "Gradient": {}},
            "featureClass": NO_SHAPE2D,
        },
        2,
    ),
}


def _volume(name):
    if name == "ct-slice":
        return _single_slice(*volumes.ct())
    if name == "ct-embedded":
        return volumes.embedded(*volumes.ct(), pad_zyx=(6, 30, 24), fill=-1000)
    return getattr(volumes, name)()


@pytest.fixture
def lbp3d_oracle(monkeypatch):
    """Let PyRadiomics' LBP3D run: an icosphere in place of trimesh, sph_harm under its old name."""
    import scipy.special

    def icosphere(subdivisions=1, radius=1.0):
        # The regular icosahedron on the unit sphere; one subdivision adds
        # each of its 30 edges' midpoints, pushed out to the sphere.
        assert subdivisions in (0, 1), "only PyRadiomics' default subdivision is written here"
        t = (1 + 5**0.5) / 2
        points = np.array(
            [
                (-1, t, 0),
                (1, t, 0),
                (-1, -t, 0),
                (1, -t, 0),
                (0, -1, t),
                (0, 1, t),
                (0, -1, -t),
                (0, 1, -t),
                (t, 0, -1),
                (t, 0, 1),
                (-t, 0, -1),
                (-t, 0, 1),
            ],
            float,
        )
        points /= np.linalg.norm(points, axis=1)[:, None]
        if subdivisions:
            d = np.linalg.norm(points[:, None] - points[None], axis=2)
            i, j = np.nonzero(np.triu(np.isclose(d, d[d > 0].min())))
            assert len(i) == 30
            middle = (points[i] + points[j]) / 2
            points = np.vstack([points, middle / np.linalg.norm(middle, axis=1)[:, None]])
        return types.SimpleNamespace(vertices=points * radius)

    creation = types.ModuleType("trimesh.creation")
    creation.icosphere = icosphere
    trimesh = types.ModuleType("trimesh")
    trimesh.creation = creation
    monkeypatch.setitem(sys.modules, "trimesh", trimesh)
    monkeypatch.setitem(sys.modules, "trimesh.creation", creation)
    # Old sph_harm(m, n, azimuth, polar) is sph_harm_y(n, m, polar, azimuth).
    monkeypatch.setattr(
        scipy.special,
        "sph_harm",
        lambda m, n, theta, phi: scipy.special.sph_harm_y(n, m, phi, theta),
        raising=False,
    )


def _spy_filtered_sizes(monkeypatch) -> list:
    """Record the size of every image radflow hands to its filters."""
    from radflow.extraction import extractor as module  # where the extractor binds image_types

    sizes = []
    original = module.image_types

    def spy(image, *args, **kwargs):
        sizes.append(image.GetSize())
        return original(image, *args, **kwargs)

    monkeypatch.setattr(module, "image_types", spy)
    return sizes


def _pyradiomics(image, mask, params, label):
    radiomics.setVerbosity(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return featureextractor.RadiomicsFeatureExtractor(params).execute(image, mask, label=label)


def _same(expected, got) -> bool:
    if isinstance(expected, str):
        return expected == got
    a = np.asarray(expected, dtype=float)
    b = np.asarray(got, dtype=float)
    return a.shape == b.shape and bool(np.all(np.isclose(a, b, rtol=RTOL, atol=0, equal_nan=True)))


@pytest.mark.parametrize("case", list(CASES))
def test_matches_pyradiomics(case, lbp3d_oracle, monkeypatch):
    name, params, label = CASES[case]
    image, mask = _volume(name)
    expected = _pyradiomics(image, mask, params, label)
    filtered_sizes = _spy_filtered_sizes(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = extract(image, mask, params, label=label)
    if name == "ct-embedded":  # the box read, not the volume, was filtered
        assert filtered_sizes and all(
            np.prod(size) < 0.5 * np.prod(image.GetSize()) for size in filtered_sizes
        )

    assert sorted(set(expected) - set(got)) == [], "keys PyRadiomics returns and radflow does not"
    assert sorted(set(got) - set(expected)) == [], "keys radflow returns and PyRadiomics does not"
    features = [k for k in expected if not k.startswith("diagnostics_")]
    assert len(features) > 20
    if "LBP3D" in params.get("imageType", {}):
        assert any(k.startswith("lbp-3D-m2_") for k in features)  # the oracle shim did run
    wrong = {k: (float(expected[k]), got[k]) for k in features if not _same(expected[k], got[k])}
    assert wrong == {}
    wrong = {
        k: (expected[k], got[k])
        for k in expected
        if k.startswith("diagnostics_")
        and not k.startswith(_UNCOMPARED)
        and not _same(expected[k], got[k])
    }
    assert wrong == {}
    assert list(got) == list(expected), "same keys in PyRadiomics' order"


def test_shape2d_on_a_3d_roi_fails_like_pyradiomics():
    """PyRadiomics' extractor raises ValueError from its shape2D class; radflow an InputError
    naming the mask.
    """
    image, mask = volumes.ct()
    params = {"setting": {"force2D": True}, "featureClass": {"shape2D": None}}
    with pytest.raises(ValueError, match="Size of the mask"):
        _pyradiomics(image, mask, params, None)
    with pytest.raises(InputError, match="shape2D"):
        extract(image, mask, params)


def test_integer_sigma_names_the_log_image_as_written():
    image, mask = volumes.ct()
    params = {
        "imageType": {"LoG": {"sigma": [1, 3]}},
        "featureClass": {"firstorder": ["Mean"]},
        "setting": {"additionalInfo": False},
    }
    assert list(extract(image, mask, params)) == list(_pyradiomics(image, mask, params, None))
