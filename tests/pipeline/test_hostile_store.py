"""Silent wrong numbers from the store and from files (issue 12), end to end.

- a chunk file deleted or damaged after ingest: ``radflow run`` records the ROIs that read it
  in the errors table (naming the series and the chunk file) and extracts the others as before;
  ``radflow extract`` on the store exits 2 with one line;
- an infinite voxel outside every ROI: ingest keeps the series (and the other patients), the ROI
  extracts normally, an ROI containing it fails alone;
- NaN in a NIfTI file (which ITK's reader turns into 0): ``radflow extract`` and ingest see it.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import nibabel
import numpy as np
import pytest
import SimpleITK as sitk

from radflow.cli import main
from radflow.io.records import LabelMap
from radflow.pipeline.ingest import ingest_archive
from radflow.pipeline.run import run
from radflow.pipeline.table import read_errors
from radflow.store.catalogue import list_series
from radflow.store.read import open_volume
from radflow.store.write import write_series

PARAMS = {
    "imageType": {"Original": {}},
    "featureClass": {"firstorder": ["Mean", "Minimum", "Maximum"]},
    "setting": {"binWidth": 25},
}
#: (8, 256, 256) int16 is stored in (8, 128, 128) chunks: a 1 x 2 x 2 grid.
SHAPE = (8, 256, 256)
ROI_1 = np.s_[2:6, 20:60, 20:60]  # inside chunk (0, 0, 0)
ROI_2 = np.s_[2:6, 150:200, 150:200]  # inside chunk (0, 1, 1)


def _series(seed: int) -> tuple[sitk.Image, LabelMap]:
    values = np.random.default_rng(seed).normal(100, 20, size=SHAPE).astype(np.int16)
    image = sitk.GetImageFromArray(values)
    image.SetSpacing((0.8, 0.8, 2.0))
    labels = np.zeros(SHAPE, np.uint8)
    labels[ROI_1], labels[ROI_2] = 1, 2
    label = sitk.GetImageFromArray(labels)
    label.CopyInformation(image)
    return image, LabelMap("gtv", "labelmap", label, {1: "GTV", 2: "Node"})


@pytest.fixture
def store(tmp_path) -> Path:
    root = tmp_path / "store"
    for seed, case in enumerate(["P1", "P2"]):
        image, label = _series(seed)
        write_series(
            root, case, "CT", image, [label], attrs={"modality": "CT"}, fingerprint=f"fp-{case}"
        )
    return root


def _rows(table: Path):
    return duckdb.sql(
        f"SELECT * FROM read_parquet('{table}/**/*.parquet', hive_partitioning=true) "
        "ORDER BY case_id, label"
    ).df()


def _features(rows) -> dict:
    columns = [c for c in rows.columns if c.startswith("firstorder_")]
    return {(r.case_id, r.label): tuple(r[c] for c in columns) for _, r in rows.iterrows()}


def test_run_records_the_rois_reading_a_missing_chunk_and_extracts_the_others(
    store, tmp_path, scheduler
):
    before = tmp_path / "before"
    run(store, PARAMS, before, scheduler=scheduler, progress=False, retries=0)
    expected = _features(_rows(before))
    assert len(expected) == 4 and all(len(values) == 3 for values in expected.values())

    chunk = store / "P1" / "CT" / "0" / "c" / "0" / "0" / "0"
    chunk.unlink()  # zarr would read it as zeros: Mean/Min/Max 0
    table = tmp_path / "after"
    summary = run(store, PARAMS, table, scheduler=scheduler, progress=False, retries=0)
    assert (summary.extracted, summary.failed) == (3, 1)

    errors = read_errors(table).to_pandas()
    assert len(errors) == 1
    error = errors.iloc[0]
    assert (error.case_id, error.series_id, error.label) == ("P1", "CT", 1)
    assert error.error_type == "DamagedChunkError" and not error.permanent
    assert str(chunk) in error.message and "series P1/CT is missing on disk" in error.message
    # The ROIs that do not read the chunk: exactly the numbers of the undamaged store.
    after = _features(_rows(table))
    assert after == {k: v for k, v in expected.items() if k != ("P1", 1)}
    assert all(0.0 not in values for values in after.values())


def test_extract_on_a_store_with_a_missing_chunk_exits_2_naming_it(store, capsys):
    series = store / "P1" / "CT"
    (series / "0" / "c" / "0" / "0" / "0").unlink()
    assert main(["extract", str(series), str(series / "labels" / "gtv")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"{series}/0/c/0/0/0: chunk (0, 0, 0) of the image of series P1/CT" in err
    # Label 2 does not read that chunk.
    assert main(["extract", str(series), str(series / "labels" / "gtv"), "--label", "2"]) == 0


def test_extract_on_a_corrupt_chunk_names_the_series_and_the_file(store, capsys):
    series = store / "P2" / "CT"
    chunk = series / "labels" / "gtv" / "0" / "c" / "0" / "1" / "1"
    chunk.write_bytes(chunk.read_bytes()[:-7])  # truncated: blosc alone would decode garbage
    assert main(["extract", str(series), str(series / "labels" / "gtv"), "--label", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"{chunk}: chunk (0, 1, 1) of the label map 'gtv' of series P2/CT" in err
    assert "cannot be decoded" in err and "blosc decompression: -1" not in err


def _nifti(path: Path, values_zyx: np.ndarray) -> None:
    affine = np.diag([-1.0, -1.0, 2.0, 1.0])
    nibabel.save(nibabel.Nifti1Image(values_zyx.transpose(2, 1, 0), affine), path)


def _pet(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).gamma(4.0, 1.5, size=(12, 24, 24)).astype(np.float32)


def _mask(box) -> np.ndarray:
    values = np.zeros((12, 24, 24), np.uint8)
    values[box] = 1
    return values


def test_ingest_keeps_a_series_with_an_infinite_voxel_outside_the_roi(tmp_path, scheduler):
    archive = tmp_path / "archive" / "SITE"
    for patient, seed in (("INF01", 1), ("GOOD01", 2)):
        folder = archive / patient
        folder.mkdir(parents=True)
        values = _pet(seed)
        if patient == "INF01":
            values[0, 0, 0] = np.inf  # outside the ROI
            values[11, 23, 23] = -np.inf  # inside the second ROI
            _nifti(folder / "pet_seg.nii.gz", _mask(np.s_[9:12, 20:24, 20:24]))
        _nifti(folder / "pet.nii.gz", values)
        _nifti(folder / "pet_mask.nii.gz", _mask(np.s_[4:8, 8:16, 8:16]))
    store = tmp_path / "store"
    summary = ingest_archive(tmp_path / "archive", store, progress=False)
    assert summary.failed == 0
    infos = list_series(store)
    assert len(infos) == 2
    flagged = [i for i in infos if len(i.label_keys) == 2]
    assert len(flagged) == 1
    stored = open_volume(store, flagged[0].case, flagged[0].series).attrs["summary"]
    assert stored["nonfinite"] == 2 and np.isnan(stored["mean"])  # +inf and -inf
    assert stored["maximum"] == np.inf and stored["minimum"] == -np.inf

    table = tmp_path / "features"
    result = run(store, PARAMS, table, scheduler=scheduler, progress=False, retries=0)
    assert (result.extracted, result.failed) == (2, 1)
    errors = read_errors(table).to_pandas()
    assert list(errors.label_key) == ["pet_seg"]
    assert "NaN or infinite intensities in the region read" in errors.message[0]
    rows = _rows(table)
    assert np.isfinite(rows["firstorder_Mean"]).all()


def test_extract_sees_the_nan_a_nifti_file_holds(tmp_path, capsys):
    values = _pet(3)
    values[5, 10, 10] = np.nan  # inside the ROI: ITK's NIfTI reader made it 0
    image, mask = tmp_path / "pet.nii.gz", tmp_path / "pet_mask.nii.gz"
    _nifti(image, values)
    _nifti(mask, _mask(np.s_[4:8, 8:16, 8:16]))
    assert main(["extract", str(image), str(mask)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"{image}: 1 voxel(s) hold NaN or infinite intensities" in err

    values[5, 10, 10] = 1.0  # outside the ROI instead: extracted as the file holds it
    values[0, 0, 0] = np.nan
    _nifti(image, values)
    assert main(["extract", str(image), str(mask), "--format", "json"]) == 0
    assert '"diagnostics_Image-original_Mean": NaN' in capsys.readouterr().out


@pytest.mark.parametrize("from_store", [False, True])
def test_whole_volume_statistics_with_an_infinite_voxel_are_an_error(tmp_path, from_store):
    # Normalisation and the intensity filters scale the ROI by the whole image's mean, sigma or
    # max |x|: one infinite voxel anywhere turned every value into NaN (or 0), silently.
    from radflow.errors import InputError
    from radflow.extraction.extractor import extract
    from radflow.store.read import open_label

    values = _pet(4)
    values[0, 0, 0] = np.inf
    image = sitk.GetImageFromArray(values)
    mask = sitk.GetImageFromArray(_mask(np.s_[4:8, 8:16, 8:16]))
    if from_store:
        label = LabelMap("gtv", "labelmap", mask, {1: "GTV"})
        write_series(tmp_path, "P", "PT", image, [label], fingerprint="f")
        image, mask = open_volume(tmp_path, "P", "PT"), open_label(tmp_path, "P", "PT", "gtv")
    plain = extract(image, mask, PARAMS)
    assert np.isfinite(plain["original_firstorder_Mean"])
    assert plain["diagnostics_Image-original_Maximum"] == np.inf  # as NumPy (and PyRadiomics)
    normalised = {**PARAMS, "setting": {"binWidth": 0.5, "normalize": True}}
    with pytest.raises(InputError, match=r"normalize: the whole image's statistics are not fin"):
        extract(image, mask, normalised)
    squared = {**PARAMS, "imageType": {"Square": {}}}
    with pytest.raises(
        InputError, match=r"Square, .*not finite, 1 voxel\(s\) of the image are NaN"
    ):
        extract(image, mask, squared)
