"""Ingest end to end: archive -> store -> manifest, on the synthetic archive and on bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
import SimpleITK as sitk

from radflow.demo.synthetic import write_demo_archive
from radflow.errors import InputError
from radflow.io.dicom_write import write_image_series, write_rtstruct
from radflow.pipeline.ingest import ingest_archive
from radflow.pipeline.manifest import read_manifest
from radflow.store.catalogue import list_series
from radflow.store.convert import to_sitk
from radflow.store.read import open_label, open_volume


@pytest.fixture(scope="module")
def demo_archive(tmp_path_factory) -> tuple[Path, object]:
    root = tmp_path_factory.mktemp("archive")
    return root, write_demo_archive(root, patients=3, seed=7)


@pytest.fixture(scope="module")
def demo_store(demo_archive, tmp_path_factory):
    # A key file (not the environment's key text), so that ingest writes its
    # lookup of patient folders beside it.
    key_file = tmp_path_factory.mktemp("keys") / "study.key"
    key_file.write_text("radflow-test-key-file-0123456789\n")
    key_file.chmod(0o600)
    store = tmp_path_factory.mktemp("store")
    summary = ingest_archive(demo_archive[0], store, key_file=key_file, progress=False)
    return store, summary


def _all_output_bytes(root: Path):
    for path in root.rglob("*"):
        if path.is_file():
            yield path, path.read_bytes()


def test_demo_archive_ingests_completely(demo_archive, demo_store):
    store, summary = demo_store
    assert summary.failed == 0, summary.report()
    assert summary.ingested == 9  # 3 patients x (CT, PET, MR)
    infos = list_series(store)
    assert sorted(i.modality for i in infos) == ["CT"] * 3 + ["MR"] * 3 + ["PT"] * 3
    for info in infos:
        if info.modality == "CT":
            assert set(info.label_keys) >= {"gtv"} and len(info.label_keys) == 2
            assert open_volume(store, info.case, info.series).dtype == np.int16
        if info.modality == "PT":
            volume = open_volume(store, info.case, info.series)
            assert volume.dtype == np.float32
            # SUV body weight: background ~1, tumour uptake well above.
            assert 0.3 < float(np.median(volume.values)) < 3.0 or float(volume.max()) > 2.5
        if info.modality == "MR":
            label = open_label(store, info.case, info.series, info.label_keys[0])
            assert set(np.unique(label.values)) == {0, 1, 2}
    manifest = read_manifest(store)
    assert set(manifest["status"]) == {"ok"}
    assert manifest["acq_manufacturer"].notna().sum() == 6  # CT and PET carry scanner tags
    # DICOM series carry their study's pseudonym (one per patient here); NIfTI has none.
    studies = {(i.case, i.modality): i.attrs.get("study") for i in list_series(store)}
    for (case, modality), study in studies.items():
        if modality == "MR":
            assert study is None
        else:
            assert study.startswith("ST") and len(study) == 18
            assert study == studies[(case, "CT" if modality == "PT" else "PT")]
    assert manifest["institution"].nunique() == 3


def test_no_identifier_in_any_output(demo_archive, demo_store, capsys):
    _, archive = demo_archive
    store, summary = demo_store
    # Identifiers are really in the source headers (else the test would prove nothing).
    ct_file = next((archive.root).rglob("CT/*.dcm"))
    header = pydicom.dcmread(ct_file, stop_before_pixels=True)
    assert str(header.PatientName) in archive.identifiers
    assert str(header.PatientID) in archive.identifiers
    needles = [s.encode() for s in archive.identifiers if len(s) >= 5]
    assert needles
    leaks = [
        (path.name, n) for path, data in _all_output_bytes(store) for n in needles if n in data
    ]
    assert leaks == []
    assert not any(s in summary.report() for s in archive.identifiers if len(s) >= 5)
    # The local lookup (patient folder -> pseudonym) holds the patient ids, beside
    # the key file with its permissions, outside the store that was searched above.
    lookup = summary.lookup
    assert lookup is not None and lookup.name == "study.lookup.csv"
    assert (lookup.parent / "study.key").is_file()
    assert not lookup.resolve().is_relative_to(store.resolve())
    assert lookup.stat().st_mode & 0o777 == 0o600
    rows = pd.read_csv(lookup, dtype=str)
    assert set(rows["patient"]) == set(archive.patients)
    assert set(rows["patient"]) <= archive.identifiers
    assert set(rows["case_id"]) == set(read_manifest(store)["case_id"])


def test_dicom_round_trip_is_exact(demo_archive, demo_store):
    root, _ = demo_archive
    store, _ = demo_store
    ct_dir = next(root.rglob("CT"))
    reader = sitk.ImageSeriesReader()
    reference = sitk.ReadImage(reader.GetGDCMSeriesFileNames(str(ct_dir)))
    ct = [i for i in list_series(store) if i.modality == "CT"]
    matches = []
    for info in ct:
        image = to_sitk(open_volume(store, info.case, info.series))
        if image.GetSize() != reference.GetSize() or image.GetOrigin() != reference.GetOrigin():
            continue
        assert image.GetSpacing() == pytest.approx(reference.GetSpacing(), abs=1e-9)
        assert image.GetDirection() == reference.GetDirection()
        np.testing.assert_array_equal(
            sitk.GetArrayViewFromImage(image), sitk.GetArrayViewFromImage(reference)
        )
        matches.append(info)
    assert len(matches) == 1


def test_reingest_skips_unchanged_and_redoes_changed(demo_archive, tmp_path):
    root = tmp_path / "archive"
    shutil.copytree(demo_archive[0], root)
    store = tmp_path / "store"
    first = ingest_archive(root, store, progress=False)
    assert first.ingested == 9
    again = ingest_archive(root, store, progress=False)
    assert (again.ingested, again.unchanged, again.failed) == (0, 9, 0)
    # Change one MR voxel: only that series is re-ingested.
    mr = next(root.rglob("MR/t1.nii.gz"))
    image = sitk.ReadImage(str(mr))
    image[0, 0, 0] = image[0, 0, 0] + 1.0
    sitk.WriteImage(image, str(mr))
    third = ingest_archive(root, store, progress=False)
    assert (third.ingested, third.unchanged) == (1, 8)
    manifest = read_manifest(store)
    assert (manifest["action"] == "ingested").sum() == 1


def _write_ct(folder: Path, pid: str, **series) -> list[Path]:
    volume = np.full((6, 16, 16), 1024, dtype=np.int16)
    volume[2:5, 4:12, 4:12] = 1100
    return write_image_series(
        volume,
        folder,
        modality="CT",
        spacing_zyx=(2.0, 1.0, 1.0),
        origin_zyx=(0.0, -8.0, -8.0),
        patient={"PatientID": pid, "PatientName": f"DOE^{pid}"},
        study={},
        series=series,
        rescale_intercept=-1024.0,
    )


def test_bad_inputs_are_recorded_and_the_rest_ingested(tmp_path):
    root = tmp_path / "archive" / "SITE"
    # good: a CT with an RTSTRUCT
    good = root / "GOOD01"
    files = _write_ct(good / "CT", "GOOD01")
    mask = np.zeros((6, 16, 16), bool)
    mask[2:5, 5:11, 5:11] = True
    write_rtstruct(good / "RS.dcm", files, {"GTV": mask})
    # corrupt: a truncated DICOM file beside a good series
    corrupt = root / "CORRUPT1"
    files = _write_ct(corrupt / "CT", "CORRUPT1")
    bad = corrupt / "CT" / "broken.dcm"
    bad.write_bytes(files[0].read_bytes()[:-100])  # pixel data cut short
    # missing referenced series: RTSTRUCT whose image series is gone
    orphan = root / "ORPHAN1"
    files = _write_ct(orphan / "CT", "ORPHAN1")
    write_rtstruct(orphan / "RS.dcm", files, {"GTV": mask})
    shutil.rmtree(orphan / "CT")
    # empty ROI and geometry mismatch: NIfTI label maps
    nifti = root / "NIFTI01"
    nifti.mkdir(parents=True)
    img = sitk.GetImageFromArray(np.random.default_rng(0).normal(size=(5, 8, 8)).astype(np.float32))
    img.SetSpacing((1.0, 1.0, 2.0))
    sitk.WriteImage(img, str(nifti / "t2.nii.gz"))
    empty = sitk.Image(8, 8, 5, sitk.sitkUInt8)
    empty.CopyInformation(img)
    sitk.WriteImage(empty, str(nifti / "t2_label.nii.gz"))
    shifted = sitk.GetImageFromArray(np.ones((5, 8, 8), np.uint8))
    shifted.SetOrigin((5.0, 0.0, 0.0))
    sitk.WriteImage(img, str(nifti / "flair.nii.gz"))
    sitk.WriteImage(shifted, str(nifti / "flair_mask.nii.gz"))
    # PET without PatientWeight
    pet = root / "PET01"
    write_image_series(
        np.full((4, 8, 8), 100, np.uint16),
        pet / "PET",
        modality="PT",
        spacing_zyx=(3, 3, 3),
        origin_zyx=(0, 0, 0),
        patient={"PatientID": "PET01"},
        study={},
        series={"SeriesTime": "100000"},
        pet={
            "Units": "BQML",
            "DecayCorrection": "START",
            "RadionuclideTotalDose": 3.7e8,
            "RadionuclideHalfLife": 6586.2,
            "RadiopharmaceuticalStartDateTime": "20200101090000",
        },
    )

    store = tmp_path / "store"
    summary = ingest_archive(tmp_path / "archive", store, progress=False)
    manifest = read_manifest(store)
    failed = manifest[manifest["status"] == "failed"]
    reasons = " | ".join(failed["error"])
    assert "broken.dcm" in reasons
    assert "1.2.826" not in reasons  # UIDs are scrubbed from messages
    assert "referenced series" in reasons.lower() or "references" in reasons.lower()
    assert "empty" in reasons.lower()
    assert "geometry" in reasons.lower()
    assert "PatientWeight" in reasons
    assert summary.failed == len(failed) >= 5
    ok = manifest[(manifest["status"] == "ok") & (manifest["item"] == "series")]
    # GOOD01 CT with its GTV and both NIfTI images (without their bad masks).
    assert len(ok) == 3
    assert any(list(r) == ["gtv"] for r in ok["rois"])
    # Raw patient ids never reach the manifest; nothing half-written is left.
    text = manifest.to_csv()
    for pid in ("GOOD01", "CORRUPT1", "ORPHAN1", "NIFTI01", "PET01", "DOE^"):
        assert pid not in text
    leftovers = [p for p in store.rglob(".*") if p.name != ".zgroup"]
    assert leftovers == []


def test_csv_manifest_archive(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    arr = np.arange(4 * 6 * 6, dtype=np.int16).reshape(4, 6, 6)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.8, 0.8, 3.0))
    sitk.WriteImage(img, str(data / "scan_001.nrrd"))
    lab = np.zeros_like(arr, dtype=np.uint8)
    lab[1:3, 2:4, 2:4] = 1
    lab_img = sitk.GetImageFromArray(lab)
    lab_img.CopyInformation(img)
    sitk.WriteImage(lab_img, str(data / "tumour_001.nrrd"))
    csv = tmp_path / "cohort.csv"
    pd.DataFrame(
        [
            {
                "patient": "X1",
                "institution": "Site 2",
                "modality": "CT",
                "image": "data/scan_001.nrrd",
                "mask": "data/tumour_001.nrrd",
                "roi": "GTV",
            }
        ]
    ).to_csv(csv, index=False)
    store = tmp_path / "store"
    summary = ingest_archive(csv, store, progress=False)
    assert (summary.ingested, summary.failed) == (1, 0), summary.report()
    (info,) = list_series(store)
    assert info.modality == "CT"
    label = open_label(store, info.case, info.series, info.label_keys[0])
    np.testing.assert_array_equal(label.values, lab)
    assert "GTV" in str(label.attrs)
    assert read_manifest(store)["institution"].tolist() == ["Site_2"]


def test_ibsi_ct_phantom_from_dicom_through_the_store(ibsi_dir, tmp_path):
    phantom = ibsi_dir / "ibsi1" / "ct_phantom"
    archive = tmp_path / "archive" / "IBSI" / "PAT1"
    archive.mkdir(parents=True)
    shutil.copytree(phantom / "dicom", archive / "dicom")
    store = tmp_path / "store"
    summary = ingest_archive(tmp_path / "archive", store, progress=False)
    assert summary.failed == 0, summary.report()
    (info,) = list_series(store)
    image = to_sitk(open_volume(store, info.case, info.series))
    mask = to_sitk(open_label(store, info.case, info.series, info.label_keys[0]))
    # Resample the NIfTI reference onto the store's grid (handles its flipped axes exactly:
    # the grids coincide, so nearest neighbour only permutes voxels).
    ref_image = sitk.Resample(
        sitk.ReadImage(str(phantom / "nifti" / "image.nii.gz")),
        image,
        sitk.Transform(),
        sitk.sitkNearestNeighbor,
        -3024,
    )
    ref_mask = sitk.Resample(
        sitk.ReadImage(str(phantom / "nifti" / "mask.nii.gz")),
        image,
        sitk.Transform(),
        sitk.sitkNearestNeighbor,
        0,
    )
    hu = sitk.GetArrayViewFromImage(image)
    np.testing.assert_array_equal(hu, sitk.GetArrayViewFromImage(ref_image).astype(hu.dtype))
    a = sitk.GetArrayViewFromImage(mask) > 0
    b = sitk.GetArrayViewFromImage(ref_mask) > 0
    dice = 2 * (a & b).sum() / (a.sum() + b.sum())
    assert dice >= 0.98, f"Dice {dice:.4f}"


def test_extract_cli_on_the_synthetic_archive_nifti_and_its_store_copy(
    demo_archive, demo_store, tmp_path, capsys
):
    import json

    from radflow.cli import main

    _, archive = demo_archive
    store, _ = demo_store
    patient = archive.patients[0]
    mr, label = archive.files[patient]["MR"], archive.files[patient]["MR_label"]
    params = tmp_path / "p.yaml"
    params.write_text("setting:\n  binCount: 16\nfeatureClass:\n  shape:\n  firstorder:\n  glcm:\n")

    def features(*argv):
        assert (
            main(["extract", *map(str, argv), "-p", str(params), "--label", "2", "-f", "json"]) == 0
        )
        out = json.loads(capsys.readouterr().out)
        return {k: v for k, v in out.items() if k.startswith("original_")}

    from_nifti = features(mr, label)
    assert from_nifti["original_shape_VoxelVolume"] > 0
    # The same MR series in the store: find it by its label key and compare.
    (series,) = [
        i
        for i in list_series(store)
        if i.modality == "MR"
        and np.array_equal(
            open_label(store, i.case, i.series, i.label_keys[0]).values,
            sitk.GetArrayFromImage(sitk.ReadImage(str(label))),
        )
    ]
    folder = store / series.case / series.series
    from_store = features(folder, folder / "labels" / series.label_keys[0])
    assert from_store.keys() == from_nifti.keys()
    for key, value in from_nifti.items():
        assert from_store[key] == pytest.approx(value, rel=1e-9), key


def _nrrd(path: Path, value: int = 100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(np.full((3, 6, 6), value, np.int16))
    image.SetSpacing((1.0, 1.0, 2.0))
    sitk.WriteImage(image, str(path))
    return path


def _csv(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    lines = ["patient,institution,modality,image,mask,roi"]
    lines += [f"{pid},SITE,{modality},{image},," for pid, modality, image in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_pet_ct_and_spaced_modalities_map_to_dicom_codes(tmp_path):
    # "PET/CT" once raised ValueError from the series id and aborted the whole ingest
    # before the manifest was written; "CT thorax" was kept, unusable as a partition.
    for name in ("a", "b", "c", "d"):
        _nrrd(tmp_path / "img" / f"{name}.nrrd", value=ord(name))
    csv = _csv(
        tmp_path / "cohort.csv",
        [
            ("P1", "PET/CT", "img/a.nrrd"),
            ("P2", "pet-ct", "img/b.nrrd"),
            ("P3", "CT thorax", "img/c.nrrd"),
            ("P4", " MRI ", "img/d.nrrd"),
        ],
    )
    store = tmp_path / "store"
    summary = ingest_archive(csv, store, progress=False)
    assert (summary.ingested, summary.failed) == (4, 0), summary.report()
    assert sorted(i.modality for i in list_series(store)) == ["CT", "MR", "PT", "PT"]
    for info in list_series(store):
        assert info.series.startswith(f"{info.modality}-")
    manifest = read_manifest(store)
    assert sorted(manifest["modality"]) == ["CT", "MR", "PT", "PT"]
    assert all(m.isalnum() and m.isupper() for m in manifest["modality"])


def test_an_unmappable_modality_fails_that_series_only(tmp_path):
    _nrrd(tmp_path / "img" / "photo.nrrd", value=1)
    _nrrd(tmp_path / "img" / "ct.nrrd", value=2)
    _nrrd(tmp_path / "img" / "pet.nrrd", value=3)
    csv = _csv(
        tmp_path / "cohort.csv",
        [
            ("P1", "wound photograph", "img/photo.nrrd"),
            ("P1", "CT", "img/ct.nrrd"),
            ("P2", "PET/CT", "img/pet.nrrd"),
            ("P3", "CT/MR", "img/ct.nrrd"),
        ],
    )
    store = tmp_path / "store"
    summary = ingest_archive(csv, store, progress=False)
    assert (summary.ingested, summary.failed) == (2, 2), summary.report()
    manifest = read_manifest(store)
    failed = manifest[manifest["status"] == "failed"].sort_values("error")
    assert list(failed["item"]) == ["series", "series"]
    unknown, ambiguous = sorted(failed["error"], key=lambda e: "several" in e)
    assert "'wound photograph' is not a DICOM modality" in unknown
    assert "modality column" in unknown  # says where to fix it
    assert "'CT/MR' names several modalities (CT, MR)" in ambiguous
    # The user's summary names the image file and the CSV, not the pseudonym.
    message = next(m for m in summary.messages if "photograph" in m)
    assert message.startswith(f"P1 in {csv}: {tmp_path / 'img' / 'photo.nrrd'}")
    ok = manifest[manifest["status"] == "ok"]
    assert sorted(ok["modality"]) == ["CT", "PT"]


def test_hidden_folders_are_not_read_and_every_one_is_listed(tmp_path):
    archive = tmp_path / "archive"
    _nrrd(archive / "SITE" / "P1" / "CT" / "ct.nrrd")
    _nrrd(archive / "SITE" / "P1" / ".thumbs" / "ct.nrrd")  # inside a patient
    _nrrd(archive / "SITE" / ".case2" / "CT" / "ct.nrrd")  # a hidden patient folder
    _nrrd(archive / ".snapshot" / "SITE" / "P1" / "CT" / "ct.nrrd")  # a NAS snapshot
    _write_ct(archive / "SITE" / "P1" / "dicom" / ".old", "P1")  # hidden DICOM folder
    store = tmp_path / "store"
    summary = ingest_archive(archive, store, progress=False)
    hidden = [
        archive / ".snapshot",
        archive / "SITE" / ".case2",
        archive / "SITE" / "P1" / ".thumbs",
        archive / "SITE" / "P1" / "dicom" / ".old",
    ]
    assert summary.skipped == sorted(str(p) for p in hidden)
    assert (summary.cases, summary.ingested, summary.failed) == (1, 1, 0)
    report = summary.report()
    assert "hidden folders skipped: 4" in report
    for path in hidden:
        assert f"skipped (hidden folder, not read): {path}" in report
    (info,) = list_series(store)
    assert info.modality == "CT"


def test_failure_messages_name_the_paths_the_user_gave(tmp_path):
    root = tmp_path / "archive" / "SITE"
    files = _write_ct(root / "SMITH_J" / "CT", "SMITH_J")
    broken = root / "SMITH_J" / "CT" / "broken.dcm"
    broken.write_bytes(files[0].read_bytes()[:-100])
    nifti = root / "DOE_A"
    _nrrd(nifti / "t2.nrrd")
    empty = sitk.Image(6, 6, 3, sitk.sitkUInt8)
    empty.CopyInformation(sitk.ReadImage(str(nifti / "t2.nrrd")))
    sitk.WriteImage(empty, str(nifti / "t2_label.nrrd"))
    store = tmp_path / "store"
    summary = ingest_archive(tmp_path / "archive", store, progress=False)
    assert summary.failed == 2, summary.report()
    manifest = read_manifest(store)
    for message in summary.messages:
        # Every failure names a file or folder that exists on disk, as given.
        path = Path(message.split(": ", 1)[0])
        assert path.exists(), message
        assert str(root) in message
        assert not any(case in message for case in manifest["case_id"])
    assert any(str(broken) in m for m in summary.messages)
    assert any(str(nifti / "t2_label.nrrd") in m for m in summary.messages)
    # What is stored names no folder of the archive.
    text = manifest.to_csv()
    assert "SMITH_J" not in text and "DOE_A" not in text and str(tmp_path) not in text


def test_lookup_beside_the_key_file_keeps_its_permissions_and_merges(tmp_path, monkeypatch):
    monkeypatch.delenv("RADFLOW_PSEUDONYM_KEY")
    key_file = tmp_path / "keys" / "study.key"
    key_file.parent.mkdir()
    key_file.write_text("a-study-key-0123456789abcdef\n")
    key_file.chmod(0o640)
    monkeypatch.setenv("RADFLOW_PSEUDONYM_KEY_FILE", str(key_file))
    first = tmp_path / "first"
    _nrrd(first / "SITE" / "MRN001" / "CT" / "ct.nrrd")
    store = tmp_path / "store"
    summary = ingest_archive(first, store, progress=False)
    lookup = key_file.with_name("study.lookup.csv")
    assert summary.lookup == lookup and "lookup (folder -> pseudonym" in summary.report()
    assert lookup.stat().st_mode & 0o777 == 0o640
    (case,) = {i.case for i in list_series(store)}
    rows = pd.read_csv(lookup, dtype=str)
    assert rows.to_dict("records") == [
        {
            "case_id": case,
            "institution": "SITE",
            "patient": "MRN001",
            "location": str((first / "SITE" / "MRN001").absolute()),
            "key_id": rows["key_id"][0],
        }
    ]
    # A second archive adds its patients; the first stays.
    second = tmp_path / "second"
    _nrrd(second / "SITE" / "MRN002" / "CT" / "ct.nrrd", value=7)
    ingest_archive(second, store, progress=False)
    assert sorted(pd.read_csv(lookup, dtype=str)["patient"]) == ["MRN001", "MRN002"]
    # Nothing of the lookup reaches the store.
    for path, data in _all_output_bytes(store):
        assert b"MRN00" not in data, path


def test_no_lookup_for_a_key_given_as_text_and_none_inside_the_store(tmp_path):
    archive = tmp_path / "archive"
    _nrrd(archive / "SITE" / "P1" / "ct.nrrd")
    summary = ingest_archive(archive, tmp_path / "store", progress=False)
    assert summary.lookup is None and list(tmp_path.rglob("*.lookup.csv")) == []
    # A key kept in the store would put its lookup there: refused before anything is written.
    store = tmp_path / "store2"
    key_file = store / "keys" / "study.key"
    key_file.parent.mkdir(parents=True)
    key_file.write_text("a-study-key-0123456789abcdef\n")
    with pytest.raises(InputError, match="inside the store"):
        ingest_archive(archive, store, key_file=key_file, progress=False)
    assert sorted(p.name for p in store.rglob("*")) == ["keys", "study.key"]


def test_hidden_folders_inside_a_listed_dicom_folder_are_listed(tmp_path):
    _write_ct(tmp_path / "dicom" / "P7", "P7")
    _write_ct(tmp_path / "dicom" / "P7" / ".Trashes", "P7", SeriesDescription="deleted")
    csv = _csv(tmp_path / "cohort.csv", [("P7", "", "dicom/P7")])
    summary = ingest_archive(csv, tmp_path / "store", progress=False)
    assert (summary.ingested, summary.failed) == (1, 0), summary.report()
    assert summary.skipped == [str((tmp_path / "dicom" / "P7" / ".Trashes").resolve())]


def test_no_identifier_in_the_feature_table_and_the_lookup_outside_it(
    demo_archive, demo_store, tmp_path
):
    from distributed import LocalCluster

    from radflow.pipeline.run import run

    _, archive = demo_archive
    store, summary = demo_store
    table = tmp_path / "features"
    threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    with LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0"
    ) as cluster:
        run(
            store,
            {"featureClass": {"firstorder": ["Mean"]}},
            table,
            scheduler=cluster.scheduler_address,
            progress=False,
        )
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    outputs = [p for root in tmp_path.glob("features*") for p in root.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in outputs)
    needles = [s.encode() for s in archive.identifiers if len(s) >= 5]
    leaks = [(p.name, n) for p in outputs for n in needles if n in p.read_bytes()]
    assert leaks == []
    for root in tmp_path.glob("features*"):
        assert not summary.lookup.resolve().is_relative_to(root.resolve())


def test_manifest_ids_need_no_sql_quoting_and_old_manifests_read_with_new_names(tmp_path):
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    from radflow.pipeline.manifest import manifest_path, update_manifest

    row = {"case_id": "P1", "institution": "A", "series_id": "CT-S1", "modality": "CT"}
    update_manifest(tmp_path, [{**row, "item": "series", "roi": "", "status": "ok"}])
    path = manifest_path(tmp_path)
    query = f"select case_id, series_id from read_parquet('{path}')"
    assert duckdb.sql(query).fetchall() == [("P1", "CT-S1")]
    # A manifest written before the rename: read under today's names, rewritten with them.
    legacy = pa.table(
        {
            "case": ["P0"],
            "institution": ["A"],
            "series": ["CT-S0"],
            "modality": ["CT"],
            "item": ["series"],
            "roi": [""],
            "status": ["ok"],
        }
    )
    pq.write_table(legacy, path)
    assert read_manifest(tmp_path)[["case_id", "series_id"]].values.tolist() == [["P0", "CT-S0"]]
    update_manifest(tmp_path, [{**row, "item": "series", "roi": "", "status": "ok"}])
    assert set(pq.read_schema(path).names) >= {"case_id", "series_id"}
    assert "case" not in pq.read_schema(path).names
    assert sorted(read_manifest(tmp_path)["case_id"]) == ["P0", "P1"]
