"""SUV body weight: hand-computed values for START and ADMIN decay correction; each missing tag."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from dicom_cases import ORIGIN_ZYX, PATIENT, SPACING_ZYX, STUDY
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from radflow.errors import InputError
from radflow.io.dicom import scan_dicom
from radflow.io.dicom_series import load_dicom_series
from radflow.io.dicom_write import write_image_series
from radflow.io.suv import suv_bw_factor

# The case: 70 kg patient, 370 MBq of F-18 (half-life 109.77 min = 6586.2 s)
# injected at 10:00:00, PET series started at 11:00:00, i.e. 3600 s later.
#
# START: decayed dose = 370e6 Bq * exp(-ln 2 * 3600 / 6586.2)
#                     = 370e6 * exp(-0.693147 * 0.546597) = 370e6 * exp(-0.378873)
#                     = 370e6 * 0.684633 = 253.3142e6 Bq
#        factor = 70 000 g / 253.3142e6 Bq = 2.763367e-4 g/Bq
# ADMIN: factor = 70 000 g / 370e6 Bq = 1.891892e-4 g/Bq
FACTOR_START = 2.763367e-4
FACTOR_ADMIN = 1.891892e-4

PET = {
    "Units": "BQML",
    "DecayCorrection": "START",
    "CorrectedImage": ["ATTN", "DECY"],
    "Radiopharmaceutical": "Fluorodeoxyglucose",
    "RadionuclideTotalDose": "370000000",
    "RadionuclideHalfLife": "6586.2",
    "RadiopharmaceuticalStartDateTime": "20210314100000",
}
PET_SERIES = {"SeriesDate": "20210314", "SeriesTime": "110000", "Manufacturer": "ACME"}
ITEM_KEYWORDS = {
    "RadionuclideTotalDose",
    "RadionuclideHalfLife",
    "RadiopharmaceuticalStartDateTime",
    "RadiopharmaceuticalStartTime",
}


def _header(**changes) -> Dataset:
    ds = Dataset()
    ds.PatientWeight = "70"
    ds.Units = "BQML"
    ds.DecayCorrection = "START"
    ds.SeriesDate = "20210314"
    ds.SeriesTime = "110000"
    item = Dataset()
    item.RadionuclideTotalDose = "370000000"
    item.RadionuclideHalfLife = "6586.2"
    item.RadiopharmaceuticalStartDateTime = "20210314100000"
    ds.RadiopharmaceuticalInformationSequence = Sequence([item])
    for keyword, value in changes.items():
        target = item if keyword in ITEM_KEYWORDS else ds
        if value is None:
            delattr(target, keyword)
        else:
            setattr(target, keyword, value)
    return ds


def test_start_decay_correction_matches_the_hand_computed_factor():
    assert suv_bw_factor(_header(), source="PET.dcm") == pytest.approx(FACTOR_START, rel=1e-6)


def test_admin_decay_correction_uses_the_injected_dose():
    factor = suv_bw_factor(_header(DecayCorrection="ADMIN"), source="PET.dcm")
    assert factor == pytest.approx(FACTOR_ADMIN, rel=1e-6)


def test_injection_time_without_date_is_on_the_series_day():
    ds = _header(RadiopharmaceuticalStartDateTime=None, RadiopharmaceuticalStartTime="100000")
    assert suv_bw_factor(ds, source="PET.dcm") == pytest.approx(FACTOR_START, rel=1e-6)


@pytest.mark.parametrize(
    ("keyword", "tag"),
    [
        ("PatientWeight", "(0010,1030)"),
        ("Units", "(0054,1001)"),
        ("DecayCorrection", "(0054,1102)"),
        ("RadiopharmaceuticalInformationSequence", "(0054,0016)"),
        ("RadionuclideTotalDose", "(0018,1074)"),
        ("RadionuclideHalfLife", "(0018,1075)"),
        ("SeriesDate", "(0008,0021)"),
        ("SeriesTime", "(0008,0031)"),
    ],
)
def test_each_missing_tag_is_named(keyword, tag):
    with pytest.raises(InputError) as err:
        suv_bw_factor(_header(**{keyword: None}), source="PET.dcm")
    assert err.value.source == "PET.dcm"
    assert err.value.reason.startswith(f"{keyword} {tag} missing; SUV needs")


def test_missing_injection_time_is_named():
    with pytest.raises(InputError, match=r"RadiopharmaceuticalStartDateTime \(0018,1078\)"):
        suv_bw_factor(_header(RadiopharmaceuticalStartDateTime=None), source="PET.dcm")


def test_the_weight_message_reads_as_documented():
    with pytest.raises(InputError) as err:
        suv_bw_factor(_header(PatientWeight=None), source="PET.dcm")
    assert str(err.value) == (
        "PET.dcm: PatientWeight (0010,1030) missing; SUV needs the patient weight"
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"PatientWeight": "0"}, "PatientWeight (0010,1030) is '0'"),
        ({"Units": "CNTS"}, "Units (0054,1001) is 'CNTS'"),
        ({"DecayCorrection": "NONE"}, "DecayCorrection (0054,1102) is 'NONE'"),
        ({"RadiopharmaceuticalStartDateTime": "20210314120000"}, "after SeriesTime"),
        ({"RadionuclideTotalDose": "-5"}, "RadionuclideTotalDose (0018,1074) is '-5'"),
    ],
)
def test_invalid_values_are_refused(changes, message):
    with pytest.raises(InputError) as err:
        suv_bw_factor(_header(**changes), source="PET.dcm")
    assert message in err.value.reason


def test_pet_series_is_loaded_in_suv(tmp_path):
    # Stored 0..4095 with slope 2.5 Bq/ml per unit: 5000 Bq/ml is stored 2000,
    # and SUV = 5000 * 2.763367e-4 = 1.381684.
    stored = np.full((3, 4, 5), 2000, dtype=np.uint16)
    stored[1, 2, 3] = 0
    write_image_series(
        stored,
        tmp_path,
        modality="PT",
        spacing_zyx=SPACING_ZYX,
        origin_zyx=ORIGIN_ZYX,
        patient=PATIENT,
        study=STUDY,
        series=PET_SERIES,
        rescale_slope=2.5,
        pet=PET,
    )
    scan = scan_dicom(tmp_path)
    record = load_dicom_series(scan, next(iter(scan.series)))
    values = sitk.GetArrayFromImage(record.image)
    assert record.modality == "PT"
    assert values.dtype == np.float32
    assert values[0, 0, 0] == pytest.approx(1.381684, rel=1e-6)
    assert values[1, 2, 3] == 0
    assert record.metadata["radiopharmaceutical"] == "Fluorodeoxyglucose"
    assert record.metadata["decay_correction"] == "START"


def test_pet_without_weight_names_the_file(tmp_path):
    files = write_image_series(
        np.ones((2, 3, 3), np.uint16),
        tmp_path,
        modality="PT",
        spacing_zyx=SPACING_ZYX,
        origin_zyx=ORIGIN_ZYX,
        patient={"PatientID": "x"},
        study={},
        series=PET_SERIES,
        pet=PET,
    )
    scan = scan_dicom(tmp_path)
    with pytest.raises(InputError, match="PatientWeight") as err:
        load_dicom_series(scan, next(iter(scan.series)))
    assert err.value.source == str(files[0])
    item = pydicom.dcmread(files[0]).RadiopharmaceuticalInformationSequence[0]
    assert item.RadionuclideHalfLife == 6586.2  # the pet dict's item keywords went into the item
