"""IBSI texture families: reference values, naive re-implementations, aggregation, errors.

- Every texture tag of the IBSI 1 reference tables for the digital phantom,
  and for the CT phantom under configurations A (2D, 2.5D) and C (3D),
  within the published tolerance.
- The matrices of each family against slow, obviously correct Python loops
  written from the manual's definitions, on a small irregular ROI (holes, an
  isolated voxel, a one-voxel slice), with non-default distance and
  coarseness.
- The aggregation rules, the role of N_g, the hand example of the manual,
  and input errors.
"""

from __future__ import annotations

import csv
import itertools
import math
import re
from functools import cache

import numpy as np
import pytest

from radflow.errors import InputError, SettingsError
from radflow.features.ibsi import glcm, gldzm, glrlm, glszm, ngldm, ngtdm
from radflow.features.ibsi.aggregation import level_index
from radflow.features.ibsi.registry import DIRECTIONAL_AGGREGATIONS, ZONE_AGGREGATIONS, tags

FAMILIES = {"cm": glcm, "rlm": glrlm, "szm": glszm, "dzm": gldzm, "ngt": ngtdm, "ngl": ngldm}


def _compute(family, levels, intensity_mask, n_levels, aggregations, morph_mask=None, **settings):
    module = FAMILIES[family]
    extra = (
        {"morph_mask": intensity_mask if morph_mask is None else morph_mask}
        if family == "dzm"
        else {}
    )
    valid = DIRECTIONAL_AGGREGATIONS if family in ("cm", "rlm") else ZONE_AGGREGATIONS
    aggregations = tuple(a for a in valid if a in aggregations)
    return module.compute(
        levels,
        intensity_mask=intensity_mask,
        n_levels=n_levels,
        aggregations=aggregations,
        **extra,
        **settings,
    )


def _reference(ibsi_dir, name):
    path = ibsi_dir / "ibsi1" / "reference" / f"ibsi_1_reference_values_{name}.csv"
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return {row["tag"]: row for row in csv.DictReader(handle) if row["reference value"]}


def _within(value, reference: str, tolerance: str) -> bool:
    """The IBSI check: |value - reference| <= tolerance; tolerance 0 means the
    printed value (3 significant digits) is the value rounded."""
    ref, tol = float(reference), float(tolerance or 0)
    if tol == 0:
        tol = 0.5 * 10 ** (math.floor(math.log10(abs(ref))) - 2) if ref else 1e-12
    return abs(value - ref) <= tol * (1 + 1e-9)


def _check_table(values, reference, family):
    expected = {tag: row for tag, row in reference.items() if tag.startswith(family + "_")}
    assert expected, f"no {family} rows in the reference table"
    assert set(expected) <= set(values), f"missing: {sorted(set(expected) - set(values))}"
    off = {
        tag: (values[tag], row["reference value"], row["tolerance"])
        for tag, row in expected.items()
        if not _within(values[tag], row["reference value"], row["tolerance"])
    }
    assert not off, (
        f"{len(off)} of {len(expected)} {family} values off (value, reference, tolerance): {off}"
    )


@pytest.mark.shared
@pytest.mark.parametrize("family", FAMILIES)
def test_digital_phantom_reference_values(phantom, ibsi_dir, family):
    # The phantom's values are its grey levels; N_g = 6 (levels 2 and 5 are absent from the ROI).
    image, mask = phantom
    values = _compute(family, image, mask, 6, DIRECTIONAL_AGGREGATIONS + ZONE_AGGREGATIONS)
    assert sorted(values) == sorted(tags(family))
    _check_table(values, _reference(ibsi_dir, "digital_phantom"), family)


@cache
def _ct_phantom_processed(ibsi_dir, config):
    sitk = pytest.importorskip("SimpleITK")
    from radflow.extraction.ibsi import process_ibsi

    folder = ibsi_dir / "ibsi1" / "ct_phantom" / "nifti"
    image = sitk.ReadImage(str(folder / "image.nii.gz"))
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "mask.nii.gz"))).astype(bool)
    return process_ibsi(
        sitk.GetArrayFromImage(image), mask, spacing_zyx=image.GetSpacing()[::-1], config=config
    )


@pytest.mark.shared
@pytest.mark.parametrize(
    "config, aggregations",
    [
        ("A", ("2D_avg", "2D_comb", "2_5D_avg", "2_5D_comb", "2D", "2_5D")),
        ("C", ("3D_avg", "3D_comb", "3D")),
    ],
)
@pytest.mark.parametrize("family", FAMILIES)
def test_ct_phantom_reference_values(ibsi_dir, config, aggregations, family):
    # IBSI processing (interpolation, re-segmentation, discretisation) is radflow.extraction.ibsi's.
    p = _ct_phantom_processed(ibsi_dir, config)
    values = _compute(
        family, p.levels, p.intensity_mask, p.n_levels, aggregations, morph_mask=p.morph_mask
    )
    _check_table(values, _reference(ibsi_dir, f"config_{config}"), family)


# --------------------------------------------------------------------------
# Naive re-implementations on a small irregular ROI
# --------------------------------------------------------------------------


def _small_case(seed=3):
    """(levels, intensity mask, morph mask, N_g): 5 slices, holes, an isolated voxel,
    a slice holding one voxel, levels 1..5 of N_g = 7 (6 and 7 absent)."""
    rng = np.random.default_rng(seed)
    levels = rng.integers(1, 6, size=(5, 6, 7))
    levels[1:3, 1:4, 2:5] = 2  # a larger zone
    morph = np.zeros(levels.shape, bool)
    morph[0:3, 0:6, 0:6] = True
    morph[1, 2, 3] = False  # a hole
    morph[3, 3, 3] = True  # a slice with one voxel
    morph[0, 5, 6] = morph[2, 0, 6] = True
    intensity = morph & (rng.random(levels.shape) > 0.15)  # re-segmentation removes voxels
    intensity[3, 3, 3] = True
    intensity[4, 1, 1] = morph[4, 1, 1] = True  # isolated in 3D and in 2D
    return levels, intensity, morph, 7


def _inside(shape, position):
    return all(0 <= p < n for p, n in zip(position, shape))


def _neighbourhood(distance, planar):
    steps = range(-distance, distance + 1)
    return [
        (dz, dy, dx)
        for dz, dy, dx in itertools.product([0] if planar else steps, steps, steps)
        if (dz, dy, dx) != (0, 0, 0)
    ]


def _planes(mask, dimension):
    if dimension == "3D":
        return [np.ones(mask.shape, bool)]
    return [
        np.arange(mask.shape[0])[:, None, None] == z for z in range(mask.shape[0]) if mask[z].any()
    ]


def _naive_cooccurrence(levels, mask, n_levels, directions, dimension):
    out = []
    for plane in _planes(mask, dimension):
        matrices = np.zeros((len(directions), n_levels, n_levels))
        for v in zip(*np.nonzero(mask & plane)):
            for a, step in enumerate(directions):
                w = tuple(np.add(v, step))
                if _inside(mask.shape, w) and mask[w]:
                    matrices[a, levels[v] - 1, levels[w] - 1] += 1
        out.append(matrices)
    return np.array(out)


def _naive_runs(levels, mask, n_levels, directions, dimension):
    out = []
    for plane in _planes(mask, dimension):
        matrices = np.zeros((len(directions), n_levels, max(mask.shape)))
        roi = mask & plane
        for v in zip(*np.nonzero(roi)):
            for a, step in enumerate(directions):
                before = tuple(np.subtract(v, step))
                if _inside(mask.shape, before) and roi[before] and levels[before] == levels[v]:
                    continue
                run, w = 1, tuple(np.add(v, step))
                while _inside(mask.shape, w) and roi[w] and levels[w] == levels[v]:
                    run, w = run + 1, tuple(np.add(w, step))
                matrices[a, levels[v] - 1, run - 1] += 1
        out.append(matrices)
    return np.array(out)


def _naive_zones(levels, mask, dimension):
    """[(plane number, grey level, voxel list)] by breadth-first search."""
    zones, seen = [], np.zeros(mask.shape, bool)
    neighbours = _neighbourhood(1, dimension == "2D")
    for number, plane in enumerate(_planes(mask, dimension)):
        for start in zip(*np.nonzero(mask & plane)):
            if seen[start]:
                continue
            seen[start], queue, voxels = True, [start], []
            while queue:
                v = queue.pop()
                voxels.append(v)
                for step in neighbours:
                    w = tuple(np.add(v, step))
                    if (
                        _inside(mask.shape, w)
                        and mask[w]
                        and not seen[w]
                        and levels[w] == levels[v]
                    ):
                        seen[w] = True
                        queue.append(w)
            zones.append((number, int(levels[start]), voxels))
    return zones


def _naive_border_distance(morph, v, dimension):
    """Fewest face steps from v to a voxel outside the morphological mask (or the array)."""
    axes = (1, 2) if dimension == "2D" else (0, 1, 2)
    best = min(min(v[a] + 1, morph.shape[a] - v[a]) for a in axes)
    for w in zip(*np.nonzero(~morph)):
        if dimension == "3D" or w[0] == v[0]:
            best = min(best, sum(abs(p - q) for p, q in zip(v, w)))
    return best


def _naive_neighbours(mask, v, distance, planar):
    for step in _neighbourhood(distance, planar):
        w = tuple(np.add(v, step))
        if _inside(mask.shape, w) and mask[w]:
            yield w


@pytest.mark.parametrize("dimension", ["2D", "3D"])
@pytest.mark.parametrize("distance, symmetric", [(1, True), (2, False)])
def test_cooccurrence_matches_naive_count(dimension, distance, symmetric):
    levels, mask, _, n_levels = _small_case()
    index, _ = level_index(levels, mask, n_levels, pad=distance)
    planar = [(0, 1, 1), (0, 1, 0), (0, 1, -1), (0, 0, 1)]
    volume = [d for d in _neighbourhood(1, False) if d > (0, 0, 0)]  # one of each +/- pair
    directions = [tuple(distance * np.array(d)) for d in (planar if dimension == "2D" else volume)]
    expected = _naive_cooccurrence(levels, mask, n_levels, directions, dimension)
    if symmetric:
        expected = expected + expected.transpose(0, 1, 3, 2)
    got = glcm.cooccurrence_matrices(
        index, n_levels, dimension, distance=distance, symmetric=symmetric
    )
    assert got.shape == expected.shape
    # the same directions, possibly in another order: compare each direction's matrix
    assert sorted(map(bytes, got.reshape(-1, n_levels**2))) == sorted(
        map(bytes, expected.reshape(-1, n_levels**2))
    )
    np.testing.assert_array_equal(got.sum(axis=1), expected.sum(axis=1))


@pytest.mark.parametrize("dimension", ["2D", "3D"])
def test_run_lengths_match_naive_walk(dimension):
    levels, mask, _, n_levels = _small_case()
    index, _ = level_index(levels, mask, n_levels, pad=1)
    got = glrlm.run_length_matrices(index, n_levels, dimension)
    directions = _neighbourhood(1, dimension == "2D")[
        len(_neighbourhood(1, dimension == "2D")) // 2 :
    ]
    expected = _naive_runs(levels, mask, n_levels, directions, dimension)
    expected = expected[..., : got.shape[-1]]
    assert sorted(map(bytes, got.reshape(-1, got.shape[-1] * n_levels))) == sorted(
        map(bytes, expected.reshape(-1, got.shape[-1] * n_levels))
    )
    # every ROI voxel lies in exactly one run per direction, including the isolated one
    if dimension == "2D":
        voxels = mask.sum(axis=(1, 2))[mask.any(axis=(1, 2))][:, None]  # per plane with ROI
    else:
        voxels = mask.sum()
    np.testing.assert_array_equal(
        (got * np.arange(1, got.shape[-1] + 1)).sum(axis=(2, 3)),
        np.broadcast_to(voxels, got.shape[:2]),
    )


@pytest.mark.parametrize("dimension", ["2D", "3D"])
def test_size_and_distance_zones_match_naive_search(dimension):
    levels, mask, morph, n_levels = _small_case()
    zones = _naive_zones(levels, mask, dimension)
    n_planes = len(_planes(mask, dimension))
    sizes_expected = np.zeros((n_planes, n_levels, mask.sum() + 1))
    distances_expected = np.zeros((n_planes, n_levels, max(mask.shape) + 1))
    for plane, level, voxels in zones:
        sizes_expected[plane, level - 1, len(voxels)] += 1
        nearest = min(_naive_border_distance(morph, v, dimension) for v in voxels)
        distances_expected[plane, level - 1, nearest] += 1

    index, box = level_index(levels, mask, n_levels, pad=1)
    matrices, sizes = glszm.size_zone_matrices(index, n_levels, dimension)
    np.testing.assert_array_equal(matrices, sizes_expected[..., sizes])

    index, box = level_index(levels, mask, n_levels, pad=0)
    distance = gldzm.border_distance(morph, dimension)[box]
    matrices, n_voxels = gldzm.distance_zone_matrices(index, distance, n_levels, dimension)
    np.testing.assert_array_equal(matrices, distances_expected[..., 1 : matrices.shape[-1] + 1])
    assert distances_expected[..., matrices.shape[-1] + 1 :].sum() == 0
    assert n_voxels.sum() == mask.sum()


@pytest.mark.parametrize("dimension", ["2D", "3D"])
@pytest.mark.parametrize("distance", [1, 2])
def test_tone_differences_match_naive_neighbourhoods(dimension, distance):
    levels, mask, _, n_levels = _small_case()
    planes = _planes(mask, dimension)
    n_expected, s_expected = np.zeros((len(planes), n_levels)), np.zeros((len(planes), n_levels))
    for k, plane in enumerate(planes):
        for v in zip(*np.nonzero(mask & plane)):
            around = [levels[w] for w in _naive_neighbours(mask, v, distance, dimension == "2D")]
            if around:  # voxels without a neighbour have no valid neighbourhood
                n_expected[k, levels[v] - 1] += 1
                s_expected[k, levels[v] - 1] += abs(levels[v] - np.mean(around))
    index, _ = level_index(levels, mask, n_levels, pad=distance)
    n, s = ngtdm.tone_difference_matrices(index, n_levels, dimension, distance=distance)
    np.testing.assert_array_equal(n, n_expected)
    np.testing.assert_allclose(s, s_expected, rtol=1e-12, atol=1e-12)
    if distance == 1:
        assert n.sum() < mask.sum()  # the isolated voxels were left out


@pytest.mark.parametrize("dimension", ["2D", "3D"])
@pytest.mark.parametrize("distance, coarseness", [(1, 0), (2, 1)])
def test_dependence_counts_match_naive_neighbourhoods(dimension, distance, coarseness):
    levels, mask, _, n_levels = _small_case()
    planes = _planes(mask, dimension)
    expected = np.zeros(
        (len(planes), n_levels, len(_neighbourhood(distance, dimension == "2D")) + 1)
    )
    for k, plane in enumerate(planes):
        for v in zip(*np.nonzero(mask & plane)):
            around = _naive_neighbours(mask, v, distance, dimension == "2D")
            dependent = sum(abs(int(levels[w]) - int(levels[v])) <= coarseness for w in around)
            expected[k, levels[v] - 1, dependent] += 1
    index, _ = level_index(levels, mask, n_levels, pad=distance)
    got = ngldm.dependence_matrices(
        index, n_levels, dimension, distance=distance, coarseness=coarseness
    )
    np.testing.assert_array_equal(got, expected)


# --------------------------------------------------------------------------
# Aggregation, N_g, the manual's example
# --------------------------------------------------------------------------


def test_manual_glcm_example():
    # IBSI manual, GLCM section: the 4x4 example and its symmetric matrix for direction (1, 0)
    # (along x).
    image = np.array([[1, 2, 2, 3], [1, 2, 3, 3], [4, 2, 4, 1], [4, 1, 2, 3]])[None]
    index, _ = level_index(image, np.ones(image.shape, bool), 4, pad=1)
    along_x = glcm.cooccurrence_matrices(index, 4, "2D")[
        0, 3
    ]  # directions (z, y, x): 4th is (0, 0, 1)
    np.testing.assert_array_equal(along_x, [[0, 3, 0, 2], [3, 2, 3, 2], [0, 3, 2, 0], [2, 2, 0, 0]])


def test_one_slice_roi_gives_the_same_value_per_slice_and_merged():
    levels, mask, _, n_levels = _small_case()
    mask = mask & (np.arange(mask.shape[0]) == 1)[:, None, None]
    for family in ("cm", "rlm"):
        values = _compute(family, levels, mask, n_levels, DIRECTIONAL_AGGREGATIONS)
        for stem in (f.tag_stem for f in FAMILIES[family].FEATURES):
            assert values[f"{stem}_2D_avg"] == pytest.approx(
                values[f"{stem}_2_5D_avg"], nan_ok=True
            )
            assert values[f"{stem}_2D_comb"] == pytest.approx(
                values[f"{stem}_2_5D_comb"], nan_ok=True
            )
    for family in ("szm", "ngt", "ngl"):  # in-plane and volume neighbourhoods coincide
        values = _compute(family, levels, mask, n_levels, ZONE_AGGREGATIONS)
        for stem in (f.tag_stem for f in FAMILIES[family].FEATURES):
            assert values[f"{stem}_2D"] == pytest.approx(values[f"{stem}_2_5D"], nan_ok=True)
            assert values[f"{stem}_2D"] == pytest.approx(values[f"{stem}_3D"], nan_ok=True)


def test_slices_without_pairs_are_left_out_of_the_average():
    levels, mask, _, n_levels = _small_case()
    alone = np.zeros(mask.shape, bool)
    alone[3, 3, 3] = True  # the one-voxel slice: no co-occurrence, no valid neighbourhood
    with_alone = _compute("cm", levels, mask, n_levels, ("2D_avg", "2D_comb"))
    without = _compute("cm", levels, mask & ~alone, n_levels, ("2D_avg", "2D_comb"))
    assert with_alone == without
    with_alone = _compute("ngt", levels, mask, n_levels, ("2D", "2_5D"))
    assert with_alone == _compute("ngt", levels, mask & ~alone, n_levels, ("2D", "2_5D"))


def test_absent_grey_levels_enter_only_through_n_g(phantom):
    image, mask = phantom
    for family in FAMILIES:
        six = _compute(family, image, mask, 6, ("3D_comb", "3D"))
        nine = _compute(family, image, mask, 9, ("3D_comb", "3D"))
        changed = {tag for tag in six if six[tag] != pytest.approx(nine[tag], rel=1e-12)}
        normalised = {"cm_inv_diff_norm_3D_comb", "cm_inv_diff_mom_norm_3D_comb"}
        assert changed == (normalised if family == "cm" else set())
        for tag in changed:
            # |i - j| / N_g: a larger N_g weighs differences less, bringing the value closer to 1
            assert six[tag] < nine[tag] < 1


def test_flat_roi_values():
    levels = np.full((2, 3, 3), 2)
    mask = np.ones(levels.shape, bool)
    values = _compute("ngt", levels, mask, 4, ("3D",))
    assert values == {
        "ngt_coarseness_3D": 1e6,  # IBSI's maximum when sum p_i s_i = 0
        "ngt_contrast_3D": 0.0,
        "ngt_busyness_3D": 0.0,
        "ngt_complexity_3D": 0.0,
        "ngt_strength_3D": 0.0,
    }
    values = _compute("cm", levels, mask, 4, ("3D_comb",))
    assert values["cm_joint_max_3D_comb"] == 1.0 and values["cm_joint_entr_3D_comb"] == 0.0
    assert math.isnan(values["cm_corr_3D_comb"])  # zero marginal variance: undefined
    assert math.isnan(values["cm_info_corr1_3D_comb"])  # HX = HY = 0: undefined
    values = _compute("szm", levels, mask, 4, ("3D",))
    assert values["szm_z_perc_3D"] == 1 / 18 and values["szm_zs_entr_3D"] == 0.0


def test_default_aggregations_are_3d():
    levels, mask, _, n_levels = _small_case()
    assert {t.rsplit("_", 2)[-2] + "_" + t.rsplit("_", 2)[-1] for t in glcm.compute(
        levels, intensity_mask=mask, n_levels=n_levels)} == {"3D_avg", "3D_comb"}  # fmt: skip
    assert {
        t.rsplit("_", 1)[-1] for t in ngldm.compute(levels, intensity_mask=mask, n_levels=n_levels)
    } == {"3D"}


# --------------------------------------------------------------------------
# Input errors
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, error, words",
    [
        (lambda a: a.update(levels=a["levels"].astype(float)), InputError, "integer grey levels"),
        (lambda a: a.update(levels=a["levels"][0]), InputError, "3D (z, y, x)"),
        (
            lambda a: a.update(intensity_mask=a["intensity_mask"][:, :-1]),
            InputError,
            "intensity_mask",
        ),
        (
            lambda a: a.update(intensity_mask=np.zeros_like(a["intensity_mask"])),
            InputError,
            "empty",
        ),
        (lambda a: a.update(intensity_mask=a["intensity_mask"] * 2), InputError, "boolean"),
        (lambda a: a.update(n_levels=4), InputError, "1..n_levels=4"),
        (lambda a: a.update(n_levels=0), SettingsError, "n_levels"),
        (lambda a: a.update(aggregations=("3D",)), SettingsError, "3D_avg"),
        (lambda a: a.update(aggregations=()), SettingsError, "none given"),
        (lambda a: a.update(distance=0), SettingsError, "distance"),
    ],
)
def test_glcm_input_errors(change, error, words):
    levels, mask, _, _ = _small_case()
    arguments = {
        "levels": levels,
        "intensity_mask": mask,
        "n_levels": 7,
        "aggregations": ("3D_avg",),
    }
    change(arguments)
    with pytest.raises(error, match=re.escape(words)):
        glcm.compute(arguments.pop("levels"), **arguments)


def test_other_families_check_their_settings():
    levels, mask, morph, n_levels = _small_case()
    with pytest.raises(SettingsError, match="coarseness"):
        ngldm.compute(levels, intensity_mask=mask, n_levels=n_levels, coarseness=-1)
    with pytest.raises(SettingsError, match="distance"):
        ngtdm.compute(levels, intensity_mask=mask, n_levels=n_levels, distance=1.5)
    with pytest.raises(SettingsError, match="2D_avg"):
        glszm.compute(levels, intensity_mask=mask, n_levels=n_levels, aggregations=("2D_avg",))
    with pytest.raises(InputError, match="morph_mask: does not hold every voxel"):
        gldzm.compute(levels, intensity_mask=mask | ~morph, morph_mask=morph, n_levels=n_levels)
    with pytest.raises(InputError, match="morph_mask"):
        gldzm.compute(levels, intensity_mask=mask, morph_mask=morph[1:], n_levels=n_levels)
