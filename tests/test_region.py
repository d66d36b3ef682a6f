"""The region one extraction reads (radflow.extraction.region.read_region), and the
stability study reading the same region as the extractor."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from radflow._geometry import grow_box
from radflow.errors import SettingsError
from radflow.extraction import extractor
from radflow.extraction.region import interpolator_reach_voxels, read_region
from radflow.filters.image_types import read_box
from radflow.io.records import LabelMap
from radflow.params.pyradiomics_params import load_params

BBOX = (slice(30, 36), slice(40, 50), slice(42, 47))
SHAPE = (70, 96, 96)
SPACING_ZYX = (2.0, 1.0, 1.0)


def _params(setting: dict, image_types: dict | None = None):
    return load_params(
        {
            "setting": setting,
            "imageType": image_types or {"Original": {}},
            "featureClass": {"firstorder": ["Mean"]},
        }
    )


@pytest.mark.parametrize(
    ("interpolator", "reach"),
    [("sitkBSpline", 20), ("sitkLinear", 1), ("sitkLanczosWindowedSinc", 8)],
)
def test_resampling_reads_the_padded_box_and_the_interpolators_reach(interpolator, reach):
    assert interpolator_reach_voxels(interpolator) == reach
    params = _params(
        {"resampledPixelSpacing": [2, 2, 0], "interpolator": interpolator, "padDistance": 5}
    )
    box, needs_grid = read_region(params, BBOX, SHAPE, SPACING_ZYX)
    assert needs_grid
    # padDistance + 1 = 6 resampled voxels, in original voxels: z 6 * 2 / 2, y and x 6 * 2 / 1.
    assert box == grow_box(BBOX, (6 + reach, 12 + reach, 12 + reach), SHAPE)


def test_pre_crop_and_filters():
    params = _params({"preCrop": True, "padDistance": 3})
    box, needs_grid = read_region(params, BBOX, SHAPE, SPACING_ZYX)
    assert (box, needs_grid) == (grow_box(BBOX, 3, SHAPE), False)
    log = {"LoG": {"sigma": [2.0]}}
    box, needs_grid = read_region(_params({}, log), BBOX, SHAPE, SPACING_ZYX)
    assert not needs_grid
    assert box == read_box(_params({}, log), None, BBOX, SHAPE, SPACING_ZYX)
    assert box != BBOX


def test_resampling_needs_three_spacings():
    params = _params({"resampledPixelSpacing": [2, 2], "interpolator": "sitkLinear"})
    with pytest.raises(SettingsError, match="resampledPixelSpacing"):
        read_region(params, BBOX, SHAPE, SPACING_ZYX)


def test_stability_study_reads_the_region_the_extractor_reads(tmp_path, monkeypatch):
    """Resampled with a B-spline: the box the study reads holds all the extractor reads.

    The extractor, run by the study on the box it read, must read the same voxels
    around the ROI as on the whole volume: the same region relative to the ROI's
    box, not one clipped by the study's box (it was, when the study allowed one
    voxel for the interpolator instead of the B-spline's reach).
    """
    from radflow.model.stability import perturbed_features
    from radflow.store.read import open_label, open_volume
    from radflow.store.write import write_series

    rng = np.random.default_rng(0)
    values = (50 + 10 * rng.normal(size=SHAPE)).astype(np.float32)
    roi = np.zeros(SHAPE, np.uint8)
    roi[BBOX] = 1
    image = sitk.GetImageFromArray(values)
    image.SetSpacing(SPACING_ZYX[::-1])
    label = sitk.GetImageFromArray(roi)
    label.CopyInformation(image)
    store = tmp_path / "store"
    write_series(
        store,
        "P0",
        "S1",
        image,
        [LabelMap("rs", "labelmap", label, {1: "GTV"})],
        attrs={"modality": "CT", "institution": "A"},
        fingerprint="fp0",
    )
    params = tmp_path / "params.yaml"
    params.write_text(
        "setting:\n  binWidth: 5\n  resampledPixelSpacing: [2, 2, 2]\n"
        "  interpolator: sitkBSpline\nfeatureClass:\n  firstorder: [Mean]\n"
    )

    calls = []

    def spy(params_, bbox_zyx, shape_zyx, spacing_zyx):
        out = read_region(params_, bbox_zyx, shape_zyx, spacing_zyx)
        calls.append((tuple(bbox_zyx), tuple(int(n) for n in shape_zyx), out))
        return out

    monkeypatch.setattr(extractor, "read_region", spy)
    image, mask = open_volume(store, "P0", "S1"), open_label(store, "P0", "S1", "rs")
    extractor.extract(image, mask, params, label=1)
    (whole,) = calls
    assert whole[0] == BBOX and whole[1] == SHAPE
    assert whole[2].box_zyx == grow_box(BBOX, (6 + 20, 12 + 20, 12 + 20), SHAPE)  # not clipped

    calls.clear()
    rois = list(perturbed_features(store, params, perturbations=["original"]))
    assert len(rois) == 1 and not rois[0].failures
    (in_box,) = calls

    def relative(call):
        bbox, _, (region, needs_grid) = call
        return [(r.start - b.start, r.stop - b.stop) for r, b in zip(region, bbox)], needs_grid

    assert relative(in_box) == relative(whole)
