"""GLCM maps: every ROI voxel against PyRadiomics 3.0.1 voxel mode; MCC and empty offsets.

The cases are small (a few hundred ROI voxels): PyRadiomics' voxel-mode GLCM takes ~6 ms a
voxel. :func:`compare_maps` also serves the GLRLM tests (weighting settings, which the shared
``texture_maps.compare`` does not pass on).
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest
import SimpleITK as sitk
import volumes  # tests/features/volumes.py

from radflow.errors import InputError, SettingsError
from radflow.features.voxel import glcm
from radflow.params.extraction import Settings
from radflow.preprocess.discretise import discretise

RTOL = 1e-6
ATOL = 1e-12

SMALL = (8, 14, 14)  # ROIs of ~200-450 voxels


def small_volume(name):
    """(image, mask, label): small CT / PET / MR; ``border``: CT cut so its ROI touches 3 faces."""
    if name == "mr":
        return (*volumes.mr(SMALL), 1)
    image, mask = getattr(volumes, "ct" if name == "border" else name)(SMALL)
    if name == "border":
        z, y, x = np.nonzero(sitk.GetArrayFromImage(mask) == 1)
        cut = (slice(int(x.min()), None), slice(None, int(y.max()) + 1), slice(int(z.min()), None))
        image, mask = image[cut], mask[cut]
    return image, mask, 1


def compare_maps(family, module, image, mask, label, settings, voxel, features=None):
    """PyRadiomics' voxel maps of ``family`` and radflow's ``module.compute_maps`` at the ROI
    voxels; returns ``{name: (ours, PyRadiomics')}``.

    The inputs are rebuilt as PyRadiomics builds them: its crop (read back from the maps'
    origin), discretisation in the image's own dtype over the ROI (masked) or the whole crop
    (unmasked).
    """
    featureextractor = pytest.importorskip("radiomics.featureextractor")
    logging.getLogger("radiomics").setLevel(logging.CRITICAL)
    extractor = featureextractor.RadiomicsFeatureExtractor(label=label, **settings, **voxel)
    extractor.disableAllFeatures()
    extractor.enableFeaturesByName(**{family: list(features or [])})
    with warnings.catch_warnings():  # its NaN kernels warn
        warnings.simplefilter("ignore", RuntimeWarning)
        result = extractor.execute(image, mask, voxelBased=True)
    prefix = f"original_{family}_"
    maps = {k[len(prefix) :]: v for k, v in result.items() if k.startswith(prefix)}
    reference = next(iter(maps.values()))
    start = image.TransformPhysicalPointToIndex(reference.GetOrigin())[::-1]
    box = tuple(slice(s, s + n) for s, n in zip(start, reference.GetSize()[::-1]))
    native = sitk.GetArrayFromImage(image)[box]  # PyRadiomics' texture classes bin this dtype
    roi = sitk.GetArrayFromImage(mask)[box] == label
    region = roi if voxel.get("maskedKernel", True) else np.ones_like(roi)
    binned, _ = discretise(
        native,
        region,
        bin_width=None if "binCount" in settings else settings.get("binWidth", 25),
        bin_count=settings.get("binCount"),
    )
    centres = np.argwhere(roi)
    ours = module.compute_maps(
        native.astype(np.float64),
        binned,
        region,
        centres,
        n_levels=int(binned[region].max()),
        kernel_radius=voxel.get("kernelRadius", 1),
        settings=Settings.from_mapping(settings),
        spacing_zyx=image.GetSpacing()[::-1],
        features=list(maps),
    )
    assert sorted(ours) == sorted(maps)
    at = tuple(centres.T)
    return {name: (ours[name], sitk.GetArrayFromImage(m)[at]) for name, m in maps.items()}


# (volume, settings, voxelSetting): CT / PET / MR, binWidth and binCount, kernelRadius 1-3,
# masked and unmasked, force2D, distances, symmetricalGLCM, every weightingNorm, the border.
CASES = {
    "ct_r1_masked": ("ct", {"binWidth": 25}, {"kernelRadius": 1}),
    "ct_r2_unmasked": ("ct", {"binWidth": 25}, {"kernelRadius": 2, "maskedKernel": False}),
    "ct_r3_unmasked_bincount": (
        "ct",
        {"binCount": 12},
        {"kernelRadius": 3, "maskedKernel": False},
    ),
    # kernels of more than 64 grey levels (up to 69): the kernel's cells ordered by a sort
    # rather than by one bit mask per row
    "ct_r3_unmasked_over_64_levels": (
        "ct",
        {"binWidth": 10},
        {"kernelRadius": 3, "maskedKernel": False},
    ),
    "pet_r1_distances_asymmetric": (
        "pet",
        {"binCount": 16, "distances": [1, 2], "symmetricalGLCM": False},
        {"kernelRadius": 1},
    ),
    "pet_r2_force2d_infinity": (
        "pet",
        {"binWidth": 0.5, "force2D": True, "weightingNorm": "infinity"},
        {"kernelRadius": 2},
    ),
    "mr_r1_unmasked_euclidean": (
        "mr",
        {"binWidth": 20, "weightingNorm": "euclidean", "distances": [1, 2]},
        {"kernelRadius": 1, "maskedKernel": False},
    ),
    # In-plane: MR's 5 mm slices give out-of-plane weights e^-25 and below, under the float64
    # epsilon beside the in-plane ones, where both PyRadiomics' values and ours are rounding
    # noise (Imc1 of a near-flat kernel, e.g.).
    "mr_r2_manhattan_force2d": (
        "mr",
        {"binCount": 20, "weightingNorm": "manhattan", "force2D": True},
        {"kernelRadius": 2},
    ),
    "border_r2_masked_no_weighting": (
        "border",
        {"binWidth": 25, "weightingNorm": "no_weighting"},
        {"kernelRadius": 2},
    ),
    "border_r1_unmasked_force2d_x": (
        "border",
        {"binWidth": 25, "force2D": True, "force2Ddimension": 2},
        {"kernelRadius": 1, "maskedKernel": False},
    ),
}


@pytest.mark.oracle
@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_pyradiomics(case):
    name, settings, voxel = CASES[case]
    pairs = compare_maps("glcm", glcm, *small_volume(name), settings, voxel)
    assert len(pairs) == 24
    ours, theirs = pairs.pop("MCC")
    if voxel.get("maskedKernel", True) and np.all(theirs == 0) and np.any(ours != 0):
        # PyRadiomics' eigvals refused an empty offset's NaN somewhere: the whole MCC map kept
        # initValue (module docstring). That happens only where some kernel has an empty
        # offset, which JointAverage's NaN shows when there is no weighting.
        if "weightingNorm" not in settings:
            assert np.isnan(pairs["JointAverage"][1]).any()
    else:
        pairs["MCC"] = (ours, theirs)
    for feature, (ours, theirs) in pairs.items():
        assert np.isfinite(theirs).any(), feature  # a real comparison
        np.testing.assert_allclose(
            ours, theirs, rtol=RTOL, atol=ATOL, equal_nan=True, err_msg=f"{case}: {feature}"
        )


@pytest.mark.oracle
def test_mcc_where_pyradiomics_keeps_it_and_empty_offsets():
    """A thin masked ROI: offsets empty in some kernels (JointAverage NaN there, the other
    features averaged over the rest), MCC compared through the unmasked kernel of the same ROI.
    """
    image, mask, label = small_volume("ct")
    roi = sitk.GetArrayFromImage(mask) == label
    sheet = np.zeros_like(roi)
    z = int(np.argmax(roi.sum(axis=(1, 2))))
    sheet[z - 1 : z + 1] = roi[z - 1 : z + 1]  # two slices
    sheet_mask = sitk.GetImageFromArray(sheet.astype(np.uint8))
    sheet_mask.CopyInformation(mask)
    pairs = compare_maps("glcm", glcm, image, sheet_mask, 1, {"binWidth": 25}, {"kernelRadius": 1})
    ours, theirs = pairs["JointAverage"]
    assert np.isnan(theirs).any() and not np.isnan(theirs).all()
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL, equal_nan=True)
    pairs = compare_maps(
        "glcm",
        glcm,
        image,
        sheet_mask,
        1,
        {"binWidth": 25},
        {"kernelRadius": 1, "maskedKernel": False},
        features=["MCC", "Imc2", "Correlation"],
    )
    for feature, (ours, theirs) in pairs.items():
        np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL, err_msg=feature)


def test_mcc_eigen_solver_against_numpy():
    """The compiled solver behind MCC (Householder tridiagonalisation, then the largest
    eigenvalue) against numpy.linalg.eigvalsh: random, clustered, repeated (block-diagonal)
    and GLCM-shaped matrices (C less its top eigenpair, as MCC builds it)."""
    rng = np.random.default_rng(7)
    size = 40
    for trial in range(400):
        n = int(rng.integers(1, 30))
        kind = trial % 4
        if kind == 0:
            a = rng.random((n, n))
            matrix = a @ a.T / n
        elif kind == 1:  # eigenvalues in clusters of equal values
            q, _ = np.linalg.qr(rng.standard_normal((n, n)))
            matrix = (q * np.round(rng.random(n), 1)) @ q.T
        elif kind == 2:  # C - sqrt(px) sqrt(px)^T of a symmetric co-occurrence matrix
            counts = rng.integers(0, 3, (n, n)).astype(float)
            counts = counts + counts.T + np.eye(n)
            p = counts / counts.sum()
            px = p.sum(axis=1)
            matrix = p / np.sqrt(np.outer(px, px)) - np.outer(np.sqrt(px), np.sqrt(px))
        else:  # every eigenvalue repeated
            b = rng.random((2, 2))
            matrix = np.kron(np.eye(max(n // 2, 1)), b @ b.T)
        n = matrix.shape[0]
        work = np.zeros((size, size))
        work[:n, :n] = matrix
        d, e2, v, p_work = (np.zeros(size) for _ in range(4))
        glcm._tridiagonalise(work, n, d, e2, v, p_work)
        expected = np.linalg.eigvalsh(matrix)
        top = glcm._largest_eigenvalue(d, e2, n, np.inf)
        np.testing.assert_allclose(top, expected[-1], rtol=0, atol=1e-13 * max(1, expected[-1]))
        # the tridiagonal form keeps every eigenvalue (Sturm counts between them)
        for k, value in enumerate(expected):
            assert glcm._count_below(d, e2, n, value - 1e-9) <= k
            assert glcm._count_below(d, e2, n, value + 1e-9) >= k + 1


def _flat_case():
    binned = np.zeros((3, 5, 5), np.int32)
    binned[1, 1:4, 1:4] = 2
    binned[1, 2, 2] = 3  # the ROI has levels 2 and 3; most kernels see one level only
    mask = binned > 0
    return binned, mask, np.argwhere(mask)


def test_one_level_kernels_and_deprecated_features():
    binned, mask, centres = _flat_case()
    names = [f.name for f in glcm._segment.FEATURES]
    maps = glcm.compute_maps(
        binned.astype(float),
        binned,
        mask,
        centres,
        n_levels=3,
        kernel_radius=1,
        settings=Settings(force_2d=True),
        spacing_zyx=(1.0, 1.0, 1.0),
        features=names,
    )
    corner = 0  # centre (1, 1, 1): its kernel holds levels 2 and 3
    assert maps["Correlation"].shape == (9,)
    np.testing.assert_array_equal(maps["Dissimilarity"], maps["DifferenceAverage"])
    np.testing.assert_array_equal(maps["Homogeneity1"], maps["Id"])
    np.testing.assert_array_equal(maps["Homogeneity2"], maps["Idm"])
    np.testing.assert_array_equal(maps["SumVariance"], maps["ClusterTendency"])
    assert 0.0 < maps["MCC"][corner] <= 1.0
    # a single-level ROI: MCC is 1 and Correlation 1 everywhere, as PyRadiomics gives
    flat = np.where(mask, 2, 0).astype(np.int32)
    maps = glcm.compute_maps(
        flat.astype(float),
        flat,
        mask,
        centres,
        n_levels=2,
        kernel_radius=1,
        settings=Settings(force_2d=True),
        spacing_zyx=(1.0, 1.0, 1.0),
        features=["MCC", "Correlation", "JointEntropy", "Imc1", "Imc2"],
    )
    np.testing.assert_array_equal(maps["MCC"], 1.0)
    np.testing.assert_array_equal(maps["Correlation"], 1.0)
    np.testing.assert_array_equal(maps["Imc1"], 0.0)
    np.testing.assert_array_equal(maps["Imc2"], 0.0)


def test_default_features_and_unknown_name():
    binned, mask, centres = _flat_case()
    kwargs = dict(
        n_levels=3,
        kernel_radius=1,
        settings=Settings(),
        spacing_zyx=(1.0, 1.0, 1.0),
    )
    maps = glcm.compute_maps(binned.astype(float), binned, mask, centres, features=None, **kwargs)
    assert list(maps) == [f.name for f in glcm._segment.FEATURES if f.default]
    with pytest.raises(SettingsError, match="Contrastt"):
        glcm.compute_maps(
            binned.astype(float), binned, mask, centres, features=["Contrastt"], **kwargs
        )


@pytest.mark.oracle
@pytest.mark.parametrize(
    "voxel_setting, glcm_features",
    [
        ({"kernelRadius": 2, "maskedKernel": False}, []),  # every default feature, MCC too
        ({"kernelRadius": 1}, ["JointAverage", "Imc1", "Imc2", "Idmn", "Correlation"]),
    ],
)
def test_through_extract_with_a_filtered_image_type(voxel_setting, glcm_features):
    """radflow.extract(voxel_based=True) against PyRadiomics' extractor: GLCM and GLRLM maps of
    the original and a LoG image, every voxel of the maps (ROI and initValue alike)."""
    import radflow

    featureextractor = pytest.importorskip("radiomics.featureextractor")
    logging.getLogger("radiomics").setLevel(logging.CRITICAL)
    image, mask, _ = small_volume("pet")
    params = {
        "setting": {"binCount": 16, "weightingNorm": "euclidean", "distances": [1, 2]},
        "voxelSetting": voxel_setting,
        "featureClass": {"glcm": glcm_features, "glrlm": []},
        "imageType": {"Original": {}, "LoG": {"sigma": [2.0]}},
    }
    ours = radflow.extract(image, mask, params, voxel_based=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        theirs = featureextractor.RadiomicsFeatureExtractor(params).execute(
            image, mask, voxelBased=True
        )
    maps = {k: v for k, v in theirs.items() if isinstance(v, sitk.Image)}
    assert len(maps) == 2 * ((len(glcm_features) or 24) + 16)
    for key, expected in maps.items():
        np.testing.assert_allclose(
            sitk.GetArrayFromImage(ours[key]),
            sitk.GetArrayFromImage(expected),
            rtol=RTOL,
            atol=ATOL,
            equal_nan=True,
            err_msg=key,
        )


def test_input_checks():
    binned, mask, centres = _flat_case()
    kwargs = dict(settings=Settings(), spacing_zyx=(1.0, 1.0, 1.0), features=None)
    image = binned.astype(float)
    with pytest.raises(SettingsError, match="kernelRadius"):
        glcm.compute_maps(image, binned, mask, centres, n_levels=3, kernel_radius=0, **kwargs)
    with pytest.raises(InputError, match="kernel_mask"):
        glcm.compute_maps(
            image, binned, mask[:, :4], centres, n_levels=3, kernel_radius=1, **kwargs
        )
    with pytest.raises(InputError, match="0..2"):
        glcm.compute_maps(image, binned, mask, centres, n_levels=2, kernel_radius=1, **kwargs)
    with pytest.raises(InputError, match="centres"):
        glcm.compute_maps(image, binned, mask, centres + 5, n_levels=3, kernel_radius=1, **kwargs)
    empty = glcm.compute_maps(
        image, binned, mask, centres[:0], n_levels=3, kernel_radius=1, **kwargs
    )
    assert all(v.shape == (0,) for v in empty.values())
