"""IBSI intensity families: statistics, intensity histogram, intensity-volume histogram, local
intensity.

Checked against the IBSI 1 reference values (digital phantom; CT phantom
configuration C, processed by radflow.extraction.ibsi.process_ibsi),
values worked out by hand from the manual's definitions, the manual's own IVH
table of the digital phantom, scipy.stats, and a brute-force local peak.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import stats as scipy_stats

from radflow.features.ibsi import histogram, ivh, local_intensity, registry, statistics
from radflow.pipeline.ibsi_compliance import read_reference


@pytest.fixture(scope="module")
def phantom(phantom):
    """The IBSI digital phantom (conftest.py) with its 2 mm voxels."""
    return (*phantom, (2.0, 2.0, 2.0))


@pytest.fixture(scope="module")
def config_c(ibsi_dir):
    """CT phantom under IBSI configuration C (2 mm trilinear, [-1000, 400] HU, bins of 25 HU)."""
    from radflow.extraction.ibsi import process_ibsi

    folder = ibsi_dir / "ibsi1" / "ct_phantom" / "nifti"
    image = sitk.ReadImage(str(folder / "image.nii.gz"))
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "mask.nii.gz"))) != 0
    return process_ibsi(
        sitk.GetArrayFromImage(image), mask, spacing_zyx=image.GetSpacing()[::-1], config="C"
    )


def _family_values(family, image, intensity_mask, spacing, *, levels, ivh_input):
    if family == "stat":
        return statistics.compute(image, intensity_mask=intensity_mask)
    if family == "ih":
        return histogram.compute(levels, intensity_mask=intensity_mask)
    if family == "ivh":
        values, value_range, value_step = ivh_input
        return ivh.compute(
            values, intensity_mask=intensity_mask, value_range=value_range, value_step=value_step
        )
    return local_intensity.compute(image, intensity_mask=intensity_mask, spacing_zyx=spacing)


def _off(values, references, family):
    rows = [r for r in references if r.tag.split("_", 1)[0] == family]
    assert rows, f"no reference rows for {family}"
    return rows, [
        f"{r.tag}: {values[r.tag]!r} vs {r.text} +- {r.allowed}"
        for r in rows
        if not abs(values[r.tag] - r.value) <= r.allowed
    ]


@pytest.mark.parametrize("family", ["loc", "stat", "ih", "ivh"])
def test_digital_phantom_reference(family, phantom, ibsi_dir):
    image, mask, spacing = phantom
    values_in_roi = image[mask]
    # The phantom needs no processing: its values are the grey levels, and
    # without IVH discretisation G is the ROI range with w_d = 1.
    ivh_input = (image, (values_in_roi.min(), values_in_roi.max()), 1)
    values = _family_values(family, image, mask, spacing, levels=image, ivh_input=ivh_input)
    assert tuple(values) == registry.tags(family)
    rows, off = _off(values, read_reference(ibsi_dir, "phantom"), family)
    assert not off, f"{len(off)} of {len(rows)} off:\n" + "\n".join(off)


@pytest.mark.parametrize("family", ["loc", "stat", "ih", "ivh"])
def test_ct_phantom_config_c_reference(family, config_c, ibsi_dir):
    p = config_c
    ivh_input = (p.ivh.values, p.ivh.value_range, p.ivh.value_step)
    values = _family_values(
        family, p.image, p.intensity_mask, p.spacing_zyx, levels=p.levels, ivh_input=ivh_input
    )
    rows, off = _off(values, read_reference(ibsi_dir, "C"), family)
    assert not off, f"{len(off)} of {len(rows)} off:\n" + "\n".join(off)


# -- intensity statistics -------------------------------------------------------


def test_statistics_by_hand():
    # X = 1, 2, 3, 6: mean 3, deviations -2, -1, 0, 3.
    out = statistics.compute(np.array([1.0, 2.0, 3.0, 6.0]))
    assert out["stat_mean"] == 3.0
    assert out["stat_var"] == 3.5  # (4 + 1 + 0 + 9) / 4
    assert out["stat_skew"] == pytest.approx(4.5 / 3.5**1.5)  # m3 = (-8 - 1 + 0 + 27) / 4
    assert out["stat_kurt"] == pytest.approx(-1.0)  # m4 = (16 + 1 + 0 + 81) / 4 = 24.5 = 2 m2^2
    assert out["stat_median"] == 2.5
    # Linear percentiles: rank (n - 1) q; P10 at 0.3 -> 1.3, P90 at 2.7 -> 3 + 0.7 * 3.
    assert out["stat_p10"] == pytest.approx(1.3)
    assert out["stat_p90"] == pytest.approx(5.1)
    assert out["stat_iqr"] == pytest.approx(3.75 - 1.75)
    assert out["stat_qcod"] == pytest.approx(2.0 / 5.5)
    assert (out["stat_min"], out["stat_max"], out["stat_range"]) == (1.0, 6.0, 5.0)
    assert out["stat_mad"] == 1.5  # (2 + 1 + 0 + 3) / 4
    assert out["stat_rmad"] == 0.5  # P10 <= X <= P90 keeps 2 and 3
    assert out["stat_medad"] == 1.5  # (1.5 + 0.5 + 0.5 + 3.5) / 4
    assert out["stat_cov"] == pytest.approx(math.sqrt(3.5) / 3)
    assert out["stat_energy"] == 50.0
    assert out["stat_rms"] == pytest.approx(math.sqrt(12.5))
    assert tuple(out) == registry.tags("stat")


def test_statistics_match_scipy_on_random_values():
    rng = np.random.default_rng(7)
    image = rng.gamma(2.0, 30.0, size=(6, 7, 8)) - 40.0
    mask = rng.random(image.shape) < 0.6
    x = image[mask]
    out = statistics.compute(image, intensity_mask=mask)
    assert out["stat_var"] == pytest.approx(np.var(x), rel=1e-12)
    assert out["stat_skew"] == pytest.approx(scipy_stats.skew(x, bias=True), rel=1e-10)
    assert out["stat_kurt"] == pytest.approx(
        scipy_stats.kurtosis(x, fisher=True, bias=True), rel=1e-10
    )
    assert out["stat_p10"] == pytest.approx(scipy_stats.scoreatpercentile(x, 10), rel=1e-12)
    assert out["stat_iqr"] == pytest.approx(scipy_stats.iqr(x), rel=1e-12)


def test_statistics_flat_and_zero_mean():
    flat = statistics.compute(np.full(5, 7.0))
    # IBSI: skewness and kurtosis of a flat distribution are 0.
    assert (flat["stat_var"], flat["stat_skew"], flat["stat_kurt"], flat["stat_cov"]) == (
        0,
        0,
        0,
        0,
    )
    centred = statistics.compute(np.array([-1.0, 1.0]))
    assert math.isnan(centred["stat_cov"]) and math.isnan(centred["stat_qcod"])
    # P10 = -0.8, P90 = 0.8: no value between them, the robust MAD is undefined.
    assert math.isnan(centred["stat_rmad"])


def test_statistics_use_the_intensity_mask_only():
    image = np.array([[[1.0, 100.0], [3.0, np.nan]]])
    mask = np.array([[[1, 0], [1, 0]]], dtype=np.uint8)
    assert statistics.compute(image, intensity_mask=mask)["stat_mean"] == 2.0


@pytest.mark.parametrize(
    "image, mask, error, match",
    [
        (np.ones((2, 2)), np.ones((2, 3), bool), ValueError, "intensity_mask shape"),
        (np.ones((2, 2)), np.zeros((2, 2), bool), ValueError, "intensity_mask is empty"),
        (np.array([1.0, np.nan]), None, ValueError, "non-finite"),
        (np.array(["a", "b"]), None, TypeError, "real numbers"),
        (np.ones(2), np.ones(2, dtype=float), TypeError, "bool or integer"),
    ],
)
def test_statistics_errors(image, mask, error, match):
    with pytest.raises(error, match=match):
        statistics.compute(image, intensity_mask=mask)


# -- intensity histogram ---------------------------------------------------------


def test_histogram_gradient_of_the_phantom_by_hand(phantom):
    image, mask, _ = phantom
    # Counts of levels 1..6 in the phantom ROI: 50, 0, 1, 16, 0, 7. Gradient:
    # n2 - n1 = -50, (1 - 50)/2, (16 - 0)/2 = 8, (0 - 1)/2, (7 - 16)/2, 7 - 0.
    out = histogram.compute(image, intensity_mask=mask)
    assert (out["ih_max_grad"], out["ih_max_grad_g"]) == (8.0, 3.0)
    assert (out["ih_min_grad"], out["ih_min_grad_g"]) == (-50.0, 1.0)
    p = np.array([50, 1, 16, 7]) / 74
    assert out["ih_entropy"] == pytest.approx(-np.sum(p * np.log2(p)))
    assert out["ih_uniformity"] == pytest.approx(np.sum(p * p))
    # The distribution statistics are those of the statistics family on the levels.
    stat = statistics.compute(image, intensity_mask=mask)
    for name in (
        "mean",
        "var",
        "skew",
        "kurt",
        "median",
        "p10",
        "p90",
        "iqr",
        "mad",
        "rmad",
        "medad",
        "cov",
    ):
        assert out[f"ih_{name}"] == stat[f"stat_{name}"]


def test_histogram_mode_ties():
    # Levels 1 and 3 both twice, mean 2.4: 3 is closer.
    assert histogram.compute(np.array([1, 1, 3, 3, 4]))["ih_mode"] == 3.0
    # Levels 1 and 3 both twice, mean 2: equidistant, the lower one.
    assert histogram.compute(np.array([1, 1, 3, 3]))["ih_mode"] == 1.0


def test_histogram_single_level_and_n_levels():
    one = histogram.compute(np.array([2, 2, 2]))
    assert (one["ih_entropy"], one["ih_uniformity"], one["ih_mode"]) == (0.0, 1.0, 2.0)
    # Counts 0, 3 over levels 1..2: gradient 3, 3.
    assert (one["ih_max_grad"], one["ih_min_grad"]) == (3.0, 3.0)
    # An empty top level (n_levels = 3) changes the gradient at the top only.
    wider = histogram.compute(np.array([2, 2, 2]), n_levels=3)
    assert (wider["ih_max_grad"], wider["ih_min_grad"], wider["ih_min_grad_g"]) == (3.0, -3.0, 3.0)
    assert wider["ih_mean"] == one["ih_mean"]


@pytest.mark.parametrize(
    "levels, kwargs, error, match",
    [
        (np.array([1.0, 2.0]), {}, TypeError, "integer array"),
        (np.array([0, 2]), {}, ValueError, ">= 1"),
        (np.array([1, 5]), {"n_levels": 4}, ValueError, "above n_levels"),
        (np.array([1, 2]), {"n_levels": 0}, ValueError, "n_levels"),
    ],
)
def test_histogram_errors(levels, kwargs, error, match):
    with pytest.raises(error, match=match):
        histogram.compute(levels, **kwargs)


# -- intensity-volume histogram ------------------------------------------------------


def test_ivh_of_the_phantom_as_in_the_manual(phantom):
    image, mask, _ = phantom
    # IBSI manual, table "Example intensity-volume histogram" (G = [1, 6], w = 1):
    # i = 1..6, gamma = 0, .2, .4, .6, .8, 1, nu = 1, .324, .324, .311, .095, .095.
    out = ivh.compute(image, intensity_mask=mask, value_range=(1, 6), value_step=1)
    assert out["ivh_v10"] == pytest.approx(24 / 74)  # first gamma >= 0.1 is 0.2 (i = 2)
    assert out["ivh_v90"] == pytest.approx(7 / 74)  # gamma = 1 (i = 6)
    assert (out["ivh_i10"], out["ivh_i90"]) == (
        5.0,
        2.0,
    )  # nu_5 = 0.095 <= 0.1, nu_2 = 0.324 <= 0.9
    nu = np.array([74, 24, 24, 23, 7, 7]) / 74
    assert out["ivh_auc"] == pytest.approx(np.sum((nu[1:] + nu[:-1]) / 2) * 0.2)
    assert out["ivh_auc"] == pytest.approx(0.32, abs=0.005)  # manual, not in the CSV table


def test_ivh_bin_centres_and_exact_fractions():
    # Bins of 2.5 from 0: centres 1.25, 3.75, ...; G = [1.25, 23.75] -> K = 9 steps.
    centres = np.array([1.25] * 5 + [3.75] * 4 + [23.75])
    out = ivh.compute(centres, value_range=(1.25, 23.75), value_step=2.5)
    # gamma_k = k / 9 >= 0.1 first at k = 1 (3.75): nu = 5 / 10; >= 0.9 at k = 9: 1 / 10.
    assert (out["ivh_v10"], out["ivh_v90"]) == (0.5, 0.1)
    # nu <= 0.1 (exactly 1 voxel of 10 counts as "at most 10 %") first at 6.25.
    assert out["ivh_i10"] == 6.25
    assert out["ivh_i90"] == 3.75  # nu(3.75) = 0.5
    assert out["ivh_diff_i10_i90"] == 2.5


def test_ivh_intensity_beyond_the_range_and_flat_roi():
    # 80 % of the voxels at the top of G: no i in G holds <= 10 %; the next one holds 0 %.
    out = ivh.compute(np.array([0, 4, 4, 4, 4]), value_range=(0, 4), value_step=1)
    assert out["ivh_i10"] == 5.0
    assert out["ivh_i90"] == 1.0
    flat = ivh.compute(np.array([3, 3]), value_range=(3, 3), value_step=1)
    assert math.isnan(flat["ivh_v10"]) and flat["ivh_auc"] == 0.0
    assert flat["ivh_i10"] == 4.0


@pytest.mark.parametrize(
    "value_range, value_step, match",
    [
        ((0, 10), 3, "whole number"),
        ((5, 1), 1, "G_min <= G_max"),
        ((0, 1), 0, "value_step"),
        ((0, np.inf), 1, "finite"),
        ("ab", 1, "value_range"),
    ],
)
def test_ivh_errors(value_range, value_step, match):
    with pytest.raises(ValueError, match=match):
        ivh.compute(np.array([1.0, 2.0]), value_range=value_range, value_step=value_step)


# -- local intensity --------------------------------------------------------------


def _naive_peaks(image, mask, spacing):
    radius = local_intensity.PEAK_RADIUS_MM
    grid = np.stack(
        np.meshgrid(*[np.arange(n) * s for n, s in zip(image.shape, spacing)], indexing="ij"), -1
    )
    peaks = {}
    for index in zip(*np.nonzero(mask)):
        near = np.sum((grid - grid[index]) ** 2, axis=-1) <= radius**2
        peaks[index] = image[near].mean()
    top = image[mask].max()
    local = max(p for i, p in peaks.items() if image[i] == top)
    return local, max(peaks.values())


@pytest.mark.parametrize("spacing", [(3.0, 1.0, 1.5), (2.0, 2.0, 2.0), (5.0, 0.8, 0.8)])
def test_local_intensity_matches_a_brute_force_search(spacing):
    rng = np.random.default_rng(3)
    image = rng.integers(-50, 50, size=(7, 16, 12)).astype(float)
    mask = np.zeros(image.shape, bool)
    mask[1:5, 0:6, 4:10] = True  # touches the image border: partial spheres
    mask[5, 12, 3] = True
    image[2, 3, 5] = image[5, 12, 3] = 80.0  # two maximum voxels
    local, glob = _naive_peaks(image, mask, spacing)
    out = local_intensity.compute(image, intensity_mask=mask, spacing_zyx=spacing)
    assert out["loc_peak_loc"] == pytest.approx(local, rel=1e-12)
    assert out["loc_peak_glob"] == pytest.approx(glob, rel=1e-12)


def test_local_intensity_uses_voxels_outside_the_roi():
    image = np.zeros((1, 1, 5))
    image[0, 0, 1] = 10.0
    image[0, 0, 3] = 5.0
    roi = np.zeros(image.shape, bool)
    roi[0, 0, 3] = True
    # At 2 mm, the sphere (r = 6.2 mm) around x = 3 holds x = 0..4 (x = 6 is off the image).
    out = local_intensity.compute(image, intensity_mask=roi, spacing_zyx=(2, 2, 2))
    assert out == {"loc_peak_loc": 3.0, "loc_peak_glob": 3.0}


@pytest.mark.parametrize(
    "image, mask, spacing, match",
    [
        (np.ones((2, 2)), np.ones((2, 2), bool), (1, 1, 1), "3D"),
        (np.ones((2, 2, 2)), np.ones((2, 2, 1), bool), (1, 1, 1), "shape"),
        (np.ones((2, 2, 2)), np.zeros((2, 2, 2), bool), (1, 1, 1), "empty"),
        (np.ones((2, 2, 2)), np.ones((2, 2, 2), bool), (1, 0, 1), "spacing_zyx"),
        (np.full((2, 2, 2), np.nan), np.ones((2, 2, 2), bool), (1, 1, 1), "non-finite"),
    ],
)
def test_local_intensity_errors(image, mask, spacing, match):
    with pytest.raises(ValueError, match=match):
        local_intensity.compute(image, intensity_mask=mask, spacing_zyx=spacing)
