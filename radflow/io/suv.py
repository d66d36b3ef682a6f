"""Standardised uptake value, body weight (SUVbw), from the tags of a PET image.

    SUVbw = C * W / D

with C the activity concentration of the voxel (Bq/ml, ``Units == "BQML"``),
W the patient weight in g and D the injected dose (Bq) decay-corrected to
the time the image values refer to:

* ``DecayCorrection == "START"``: the image is decay-corrected to the start
  of the acquisition, taken as SeriesDate/SeriesTime (0008,0021)/(0008,0031)
  as in the DICOM PET Series module; the dose is decayed from the injection
  time to then: ``D = dose * 2 ** (-(t_series - t_injection) / half_life)``.
  AcquisitionDateTime is not used: it is per frame and some consoles rewrite it.
* ``DecayCorrection == "ADMIN"``: the image is decay-corrected to the
  injection itself, so ``D = dose``.

``NONE`` (each frame at its own time) and units other than BQML (CNTS needs
vendor-private factors) are refused rather than guessed.

Reference: QIBA, "SUV vendor-neutral pseudo-code",
https://qibawiki.rsna.org/index.php/Standardized_Uptake_Value_(SUV).
"""

from __future__ import annotations

from datetime import datetime
from os import PathLike

from pydicom.dataset import Dataset
from pydicom.valuerep import DA, DT, TM

from radflow.errors import InputError

_TAGS = {
    "PatientWeight": "(0010,1030)",
    "Units": "(0054,1001)",
    "DecayCorrection": "(0054,1102)",
    "RadiopharmaceuticalInformationSequence": "(0054,0016)",
    "RadionuclideTotalDose": "(0018,1074)",
    "RadionuclideHalfLife": "(0018,1075)",
    "RadiopharmaceuticalStartDateTime": "(0018,1078)",
    "RadiopharmaceuticalStartTime": "(0018,1072)",
    "SeriesDate": "(0008,0021)",
    "SeriesTime": "(0008,0031)",
}

_WHY = {
    "PatientWeight": "SUV needs the patient weight",
    "Units": "SUV needs activity concentrations in BQML",
    "DecayCorrection": "SUV needs to know the time the image is decay-corrected to",
    "RadiopharmaceuticalInformationSequence": "SUV needs the injected dose and its time",
    "RadionuclideTotalDose": "SUV needs the injected dose",
    "RadionuclideHalfLife": "SUV needs the half-life to decay-correct the dose",
    "RadiopharmaceuticalStartDateTime": "SUV needs the injection time",
    "RadiopharmaceuticalStartTime": "SUV needs the injection time",
    "SeriesDate": "SUV needs the acquisition start date",
    "SeriesTime": "SUV needs the acquisition start time",
}


def _source(ds: Dataset, source) -> str:
    if source is not None:
        return str(source)
    return str(getattr(ds, "filename", None) or "<PET dataset>")


def _missing(source: str, keyword: str) -> InputError:
    return InputError(source, f"{keyword} {_TAGS[keyword]} missing; {_WHY[keyword]}")


def _positive(ds: Dataset, keyword: str, source: str, unit: str) -> float:
    value = ds.get(keyword)
    if value is None or value == "":
        raise _missing(source, keyword)
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not number > 0:
        raise InputError(
            source,
            f"{keyword} {_TAGS[keyword]} is {value!r}; "
            f"{_WHY[keyword]} as a positive number ({unit})",
        )
    return number


def _series_start(ds: Dataset, source: str) -> datetime:
    for keyword in ("SeriesDate", "SeriesTime"):
        if not ds.get(keyword):
            raise _missing(source, keyword)
    try:
        return datetime.combine(DA(ds.SeriesDate), TM(ds.SeriesTime))
    except (TypeError, ValueError) as exc:
        raise InputError(
            source, f"SeriesDate/SeriesTime {ds.SeriesDate!r} {ds.SeriesTime!r} unreadable ({exc})"
        ) from None


def _injection(item: Dataset, series_start: datetime, source: str) -> datetime:
    try:
        if item.get("RadiopharmaceuticalStartDateTime"):
            value = DT(item.RadiopharmaceuticalStartDateTime)
            # A time zone on one side only cannot be compared: drop it (same site).
            return value.replace(tzinfo=None)
        if item.get("RadiopharmaceuticalStartTime"):
            # Time only: assume the injection was on the day of the scan.
            return datetime.combine(series_start.date(), TM(item.RadiopharmaceuticalStartTime))
    except (TypeError, ValueError) as exc:
        raise InputError(source, f"injection time unreadable ({exc})") from None
    raise InputError(
        source,
        "RadiopharmaceuticalStartDateTime (0018,1078) and "
        "RadiopharmaceuticalStartTime (0018,1072) missing; "
        "SUV needs the injection time",
    )


def suv_bw_factor(ds: Dataset, *, source: str | PathLike | None = None) -> float:
    """Factor turning activity concentration (Bq/ml) into SUV body weight (g/ml).

    Parameters
    ----------
    ds : pydicom.Dataset
        Header of a PET image (any slice of the series; these tags are
        per series).
    source : str or path-like, optional
        File named in errors; defaults to ``ds.filename``.

    Returns
    -------
    float
        ``W / D`` in g/Bq: weight (g) over the decay-corrected dose (Bq); see
        the module docstring. Multiply the rescaled pixel values by it.

    Raises
    ------
    InputError
        Naming the file and the tag, for each missing or invalid tag, for
        ``Units`` other than BQML, ``DecayCorrection`` other than START/ADMIN,
        and an injection after the series start.
    """
    src = _source(ds, source)
    weight_kg = _positive(ds, "PatientWeight", src, "kg")
    units = str(ds.get("Units", "")).upper()
    if not units:
        raise _missing(src, "Units")
    if units != "BQML":
        raise InputError(
            src, f"Units (0054,1001) is {units!r}; SUV needs activity concentrations in BQML"
        )
    decay = str(ds.get("DecayCorrection", "")).upper()
    if not decay:
        raise _missing(src, "DecayCorrection")
    if decay not in ("START", "ADMIN"):
        raise InputError(
            src, f"DecayCorrection (0054,1102) is {decay!r}; SUV supports START and ADMIN"
        )
    sequence = ds.get("RadiopharmaceuticalInformationSequence")
    if not sequence:
        raise _missing(src, "RadiopharmaceuticalInformationSequence")
    item = sequence[0]
    dose_bq = _positive(item, "RadionuclideTotalDose", src, "Bq")
    if decay == "START":
        half_life_s = _positive(item, "RadionuclideHalfLife", src, "s")
        start = _series_start(ds, src)
        elapsed_s = (start - _injection(item, start, src)).total_seconds()
        if elapsed_s < 0:
            raise InputError(
                src,
                f"injection time is {-elapsed_s:.0f} s after SeriesTime "
                "(0008,0031); cannot decay-correct the dose",
            )
        dose_bq = dose_bq * 2.0 ** (-elapsed_s / half_life_s)
    return weight_kg * 1000.0 / dose_bq
