"""Archive discovery: conventional folders and CSV manifests."""

import pytest

from radflow.errors import InputError
from radflow.io.discovery import dicom_modality, discover, discover_archive, guess_modality


def _touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_folders_pair_images_with_masks_and_find_dicom(tmp_path):
    p = tmp_path / "SITE_1" / "PAT7"
    _touch(p / "MR" / "t1.nii.gz")
    _touch(p / "MR" / "t1_label.nii.gz")
    _touch(p / "MR" / "t1_label.json")
    _touch(p / "MR" / "flair.nrrd")
    _touch(p / "scans" / "IM0001")  # extension-less: a DICOM candidate
    (case,) = discover_archive(tmp_path)
    assert (case.institution, case.patient) == ("SITE_1", "PAT7")
    files = {f.image.name: f for f in case.files}
    assert set(files) == {"t1.nii.gz", "flair.nrrd"}
    assert [m.path.name for m in files["t1.nii.gz"].masks] == ["t1_label.nii.gz"]
    assert files["flair.nrrd"].masks == ()
    assert files["t1.nii.gz"].modality == "MR"
    assert [d.folder for d in case.dicom] == [p]
    assert case.errors == ()


def test_orphan_mask_is_an_error(tmp_path):
    p = tmp_path / "S" / "P"
    _touch(p / "ct.nii")
    _touch(p / "pet.nii")
    _touch(p / "tumour_mask.nii")
    (case,) = discover_archive(tmp_path)
    assert len(case.errors) == 1 and "tumour_mask.nii" in str(case.errors[0])


def test_modality_tokens(tmp_path):
    assert guess_modality(tmp_path / "PET" / "a.nii", tmp_path) == "PT"
    assert guess_modality(tmp_path / "x" / "T2w_axial.nrrd", tmp_path) == "MR"
    assert guess_modality(tmp_path / "x" / "scan.nrrd", tmp_path) == "OT"


def test_csv_manifest_groups_rows_and_reports_missing(tmp_path):
    _touch(tmp_path / "img" / "a.nii.gz")
    _touch(tmp_path / "img" / "a_gtv.nii.gz")
    _touch(tmp_path / "img" / "a_node.nii.gz")
    (tmp_path / "dcm").mkdir()
    csv = tmp_path / "m.csv"
    csv.write_text(
        "patient,institution,modality,image,mask,roi\n"
        "P1,H1,CT,img/a.nii.gz,img/a_gtv.nii.gz,GTV\n"
        "P1,H1,CT,img/a.nii.gz,img/a_node.nii.gz,Node\n"
        "P1,H1,PT,dcm,,\n"
        "P2,H1,CT,img/missing.nii.gz,,\n"
    )
    p1, p2 = discover_archive(csv)
    (series,) = p1.files
    assert [(m.path.name, m.roi) for m in series.masks] == [
        ("a_gtv.nii.gz", "GTV"),
        ("a_node.nii.gz", "Node"),
    ]
    assert series.modality == "CT"
    assert [d.folder.name for d in p1.dicom] == ["dcm"]
    assert len(p2.errors) == 1 and "not found" in str(p2.errors[0])


def test_missing_columns_and_empty_archive(tmp_path):
    csv = tmp_path / "m.csv"
    csv.write_text("subject,file\nA,b\n")
    with pytest.raises(InputError, match="patient"):
        discover_archive(csv)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="institution"):
        discover_archive(tmp_path / "empty")


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("CT", "CT"),
        ("ct ", "CT"),
        ("PT", "PT"),
        ("PET", "PT"),
        ("pet", "PT"),
        ("PET/CT", "PT"),
        ("PET-CT", "PT"),
        ("PET CT", "PT"),
        ("PET/MRI", "PT"),
        ("MRI", "MR"),
        ("mr", "MR"),
        ("T1 post-contrast", "MR"),
        ("CT thorax", "CT"),
        ("SPECT", "NM"),
        ("US", "US"),
        ("OT", "OT"),
    ],
)
def test_modalities_map_to_dicom_codes(text, code):
    assert dicom_modality(text, "img.nii") == code


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "modality is empty"),
        ("   ", "modality is empty"),
        ("photograph", "'photograph' is not a DICOM modality"),
        ("CT/MR", "'CT/MR' names several modalities (CT, MR)"),
    ],
)
def test_unmappable_modalities_name_the_file_and_the_fix(text, reason):
    with pytest.raises(InputError, match="modality column") as info:
        dicom_modality(text, "img/a.nii")
    assert info.value.source == "img/a.nii"
    assert reason in info.value.reason


def test_csv_modality_is_mapped_or_kept_for_ingest_to_report(tmp_path):
    _touch(tmp_path / "a.nii")
    _touch(tmp_path / "b.nii")
    csv = tmp_path / "m.csv"
    csv.write_text(
        "patient,institution,modality,image,mask,roi\n"
        "P1,H1,PET/CT,a.nii,,\n"
        "P2,H1,wound photo,b.nii,,\n"
        ",H1,CT,a.nii,,\n"
    )
    archive = discover(csv)
    p1, p2 = archive.cases
    assert [f.modality for f in p1.files] == ["PT"]
    assert [f.modality for f in p2.files] == ["wound photo"]
    # A row without a patient belongs to no case: an archive error naming its line.
    (error,) = archive.errors
    assert error.source == f"{csv}:4" and "empty patient" in error.reason
    assert p1.listed_in == csv and p1.location == f"P1 in {csv}"


def test_hidden_folders_are_listed_not_read(tmp_path):
    _touch(tmp_path / "SITE" / "P1" / "ct.nii")
    _touch(tmp_path / "SITE" / "P1" / ".thumbs" / "ct.nii")
    _touch(tmp_path / "SITE" / "P1" / "MR" / ".git" / "x.nii")
    _touch(tmp_path / "SITE" / ".case2" / "ct.nii")
    _touch(tmp_path / ".snapshot" / "SITE" / "P1" / "ct.nii")
    archive = discover(tmp_path)
    (case,) = archive.cases
    assert case.patient == "P1" and [f.image.name for f in case.files] == ["ct.nii"]
    assert archive.skipped == (tmp_path / ".snapshot", tmp_path / "SITE" / ".case2")
    assert case.skipped == (
        tmp_path / "SITE" / "P1" / ".thumbs",
        tmp_path / "SITE" / "P1" / "MR" / ".git",
    )
    assert case.location == str(tmp_path / "SITE" / "P1")


def test_only_hidden_folders_say_so(tmp_path):
    _touch(tmp_path / ".SITE" / "P1" / "ct.nii")
    with pytest.raises(InputError, match=r"hidden folders not read: \.SITE"):
        discover_archive(tmp_path)


def test_csv_manifest_with_a_bom_or_binary_bytes(tmp_path):
    _touch(tmp_path / "a.nii")
    csv = tmp_path / "excel.csv"
    csv.write_bytes("\ufeffpatient,image\nP1,a.nii\n".encode())  # Excel's UTF-8 BOM
    (case,) = discover_archive(csv)
    assert case.patient == "P1"
    csv.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InputError, match="not a readable CSV manifest"):
        discover_archive(csv)
