"""Acquisition metadata of an image series, the seed of later harmonisation.

Only technical parameters are kept, from an explicit allow-list: no name,
identifier, birth date, accession number, institution, station, device
serial number, UID or full date ever leaves this module (the study date is
reduced to its year).
"""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

#: Output key -> (DICOM keyword, kind). Every key is always present (None when
#: the tag is absent or empty) so that tables built from these dicts share one
#: schema.
FIELDS = {
    "modality": ("Modality", "str"),
    "manufacturer": ("Manufacturer", "str"),
    "manufacturer_model": ("ManufacturerModelName", "str"),
    "software_versions": ("SoftwareVersions", "str"),
    "body_part": ("BodyPartExamined", "str"),
    "image_type": ("ImageType", "str"),
    "slice_thickness_mm": ("SliceThickness", "float"),
    "pixel_spacing_mm": ("PixelSpacing", "floats"),  # (row spacing, column spacing)
    "rows": ("Rows", "int"),
    "columns": ("Columns", "int"),
    "bits_stored": ("BitsStored", "int"),
    "patient_position": ("PatientPosition", "str"),
    # CT
    "convolution_kernel": ("ConvolutionKernel", "str"),
    "kvp": ("KVP", "float"),
    "exposure_mas": ("Exposure", "float"),
    "tube_current_ma": ("XRayTubeCurrent", "float"),
    "exposure_time_ms": ("ExposureTime", "float"),
    "ctdi_vol_mgy": ("CTDIvol", "float"),
    "spiral_pitch_factor": ("SpiralPitchFactor", "float"),
    "reconstruction_diameter_mm": ("ReconstructionDiameter", "float"),
    "contrast_agent": ("ContrastBolusAgent", "str"),
    # MR
    "repetition_time_ms": ("RepetitionTime", "float"),
    "echo_time_ms": ("EchoTime", "float"),
    "inversion_time_ms": ("InversionTime", "float"),
    "flip_angle_deg": ("FlipAngle", "float"),
    "magnetic_field_strength_t": ("MagneticFieldStrength", "float"),
    "sequence_name": ("SequenceName", "str"),
    "scanning_sequence": ("ScanningSequence", "str"),
    "sequence_variant": ("SequenceVariant", "str"),
    "mr_acquisition_type": ("MRAcquisitionType", "str"),
    "receive_coil": ("ReceiveCoilName", "str"),
    # PET
    "units": ("Units", "str"),
    "decay_correction": ("DecayCorrection", "str"),
    "corrected_image": ("CorrectedImage", "str"),
    "reconstruction_method": ("ReconstructionMethod", "str"),
    "attenuation_correction_method": ("AttenuationCorrectionMethod", "str"),
    "scatter_correction_method": ("ScatterCorrectionMethod", "str"),
}


def _value(raw, kind: str):
    if raw is None or raw == "":
        return None
    if kind == "float":
        try:
            return float(raw)
        except (TypeError, ValueError):
            return None
    if kind == "int":
        return int(raw)
    if kind == "floats":
        try:
            return tuple(float(v) for v in raw)
        except (TypeError, ValueError):
            return None
    if isinstance(raw, (list, tuple, MultiValue)):
        return "\\".join(str(v) for v in raw)
    return str(raw).strip() or None


def acquisition_metadata(ds: Dataset) -> dict:
    """Technical acquisition parameters of a DICOM image header, without identifiers.

    Parameters
    ----------
    ds : pydicom.Dataset
        Header of one image of the series (values per series are assumed
        equal on every slice).

    Returns
    -------
    dict
        Keys of :data:`FIELDS` (units in the names: mm, ms, T, kVp as ``kvp``,
        mAs as ``exposure_mas``) plus ``radiopharmaceutical``,
        ``radionuclide_half_life_s`` and ``study_year`` (int, from StudyDate,
        else SeriesDate). Absent tags give None. Multi-valued strings are
        joined with a backslash as in DICOM.
    """
    out = {key: _value(ds.get(keyword), kind) for key, (keyword, kind) in FIELDS.items()}
    items = ds.get("RadiopharmaceuticalInformationSequence") or []
    item = items[0] if len(items) else Dataset()
    out["radiopharmaceutical"] = _value(item.get("Radiopharmaceutical"), "str")
    out["radionuclide_half_life_s"] = _value(item.get("RadionuclideHalfLife"), "float")
    year = None
    for keyword in ("StudyDate", "SeriesDate"):
        date = str(ds.get(keyword) or "")
        if len(date) >= 4 and date[:4].isdigit():
            year = int(date[:4])
            break
    out["study_year"] = year
    return out
