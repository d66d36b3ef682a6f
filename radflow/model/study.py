"""Study assembly: the feature table pivoted to one row per patient, joined with
clinical, genomic and outcome data on the pseudonymised patient id.

The feature table (:mod:`radflow.pipeline.table`) holds one row per
(patient, series, ROI, image type) and feature set. :func:`load_study` turns
one feature set of it into the design matrix of a study::

    patient        CT.gtv.original_glcm_Contrast  PT.gtv.original_firstorder_Maximum ...
    P3f9a0c41d2b7  12.4                           9.1
    ...

Columns are ``<MODALITY>.<roi>.<image type>_<class>_<feature>``; the
partition value of the modality (``CT``, ``PT``, ``MR``) comes first, then the
ROI key (:func:`radflow.io.records.roi_key`) and PyRadiomics' feature key.

The CSV files of an archive (``clinical.csv``, ``genomic.csv``,
``outcomes.csv``) name patients by their raw id; their ids are pseudonymised
with the same key as at ingest (:class:`radflow.io.pseudonym.Pseudonymiser`)
and the raw ids are dropped before anything is returned.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from radflow._lazy import load
from radflow.errors import InputError
from radflow.io.pseudonym import Pseudonymiser, load_key

pa = load("pyarrow")
ds = load("pyarrow.dataset")
pd = load("pandas")
sksurv_util = load("sksurv.util")

__all__ = ["Study", "encode_covariates", "feature_sets", "load_study"]

#: Row identifiers of the table that the pivot uses (the rest are features or provenance).
_PIVOT = ("case_id", "modality", "roi", "image_type")


@dataclass
class Study:
    """One feature set of a feature table, one row per pseudonymised patient.

    Attributes
    ----------
    X : pandas.DataFrame
        Features, index ``patient`` (pseudonymised ids, sorted), columns
        ``<MODALITY>.<roi>.<image type>_<class>_<feature>`` (float64). A
        patient without a modality (or an ROI) has NaN in its columns; see
        `missing`.
    y : numpy structured array or None
        Survival target aligned with `X` (``sksurv.util.Surv.from_arrays``:
        fields ``event`` (bool) and ``time`` (the outcome file's unit,
        months in the demo archive)); None without an outcome file.
    clinical, genomic : pandas.DataFrame or None
        The CSV columns other than the raw id, reindexed on `X`'s index
        (NaN for a patient the file lacks).
    institution : pandas.Series
        Institution of each patient (the table's partition value).
    missing : pandas.DataFrame
        One row per patient lacking something, index ``patient``, boolean
        columns: one per modality (True: no row of that modality), then
        ``clinical``, ``genomic``, ``outcome`` for the files given, and
        ``in_study`` (False for patients of the files absent from the table,
        or dropped for lacking an outcome).
    blocks : dict of str to list of str
        Block name -> columns: one block per modality (columns of `X`), then
        ``"clinical"`` and ``"genomic"`` (columns of those frames).
    feature_set : str
        The table's feature set (``"fs-<params hash>"``).
    key_id : str
        Fingerprint of the pseudonymisation key used for the CSV ids.
    """

    X: pd.DataFrame
    y: np.ndarray | None
    clinical: pd.DataFrame | None
    genomic: pd.DataFrame | None
    institution: pd.Series
    missing: pd.DataFrame
    blocks: dict[str, list[str]]
    feature_set: str
    key_id: str

    def covariates(self) -> pd.DataFrame:
        """Clinical and genomic columns as numbers (see :func:`encode_covariates`)."""
        frames = [encode_covariates(f) for f in (self.clinical, self.genomic) if f is not None]
        if not frames:
            return pd.DataFrame(index=self.X.index)
        return pd.concat(frames, axis=1)


def feature_sets(table) -> list[str]:
    """The feature sets of a table (partition values ``fs-<hash>``), sorted.

    Raises
    ------
    radflow.errors.InputError
        ``table`` is not a folder.
    """
    root = Path(table)
    if not root.is_dir():
        raise InputError(root, "no such feature table folder (written by `radflow run`)")
    return sorted(p.name.split("=", 1)[1] for p in root.glob("feature_set=*") if p.is_dir())


def load_study(
    table,
    *,
    clinical=None,
    genomic=None,
    outcomes=None,
    feature_set: str | None = None,
    institutions=None,
    modalities=None,
    rois=None,
    image_types=None,
    key_file: str | os.PathLike | None = None,
    id_column: str = "patient",
    event: str = "os_event",
    time: str = "os_months",
) -> Study:
    """Assemble a study from a feature table and the archive's CSV files.

    Parameters
    ----------
    table : path-like
        Feature table folder (``radflow run --table``).
    clinical, genomic, outcomes : path-like or pandas.DataFrame, optional
        CSV files (or frames) with one row per patient, keyed by the raw
        patient id in `id_column`.
    feature_set : str, optional
        Feature set to read (``"fs-<hash>"``); needed when the table holds
        several.
    institutions, modalities, rois, image_types : sequence of str, optional
        Keep only these partition values (``"INST_A"``; ``"CT"``, ``"PT"``,
        ``"MR"``), ROI keys (``"gtv"``) and image types (``"original"``,
        ``"wavelet-LLH"``). Default: all.
    key_file : path-like, optional
        Pseudonymisation key file (default: as :func:`radflow.io.pseudonym.load_key`).
    id_column : str, optional
        Column of the raw patient id in the CSV files. Default ``"patient"``.
    event, time : str, optional
        Columns of `outcomes`: event indicator (1/0 or true/false) and
        follow-up time (>= 0). Defaults ``"os_event"``, ``"os_months"``.

    Returns
    -------
    Study
        Patients are those of the (filtered) table; with `outcomes`, only
        those with an outcome. Everything else lacking is in ``missing``.

    Raises
    ------
    radflow.errors.InputError
        No such table or no data after the filters; an unknown feature set,
        institution, modality, ROI or image type (the message lists those
        available); two rows for one (patient, modality, ROI, image type);
        a patient under two institutions; a CSV without the id column,
        with repeated ids, or whose ids match no patient of the table (the
        pseudonymisation key may differ from the one used at ingest); bad
        outcome values.
    """
    root = Path(table)
    fs = _choose_feature_set(root, feature_set)
    long, features = _read_rows(
        root,
        fs,
        institutions=institutions,
        modalities=modalities,
        rois=rois,
        image_types=image_types,
    )
    institution = _institution_of(long, root / f"feature_set={fs}")
    X = _pivot(long, features)
    mods = sorted(long["modality"].unique())
    present = {m: set(long.loc[long["modality"] == m, "case_id"]) for m in mods}
    del long

    pseudonymiser = Pseudonymiser(load_key(key_file=key_file))
    files = {}
    for name, source in (("clinical", clinical), ("genomic", genomic), ("outcomes", outcomes)):
        if source is not None:
            files[name] = _read_csv(source, name, id_column, pseudonymiser, set(X.index))

    patients = X.index
    y = None
    if "outcomes" in files:
        frame, where = files["outcomes"]
        outcome = _outcome(frame, where, event, time)
        patients = patients[patients.isin(outcome.index)]
        if len(patients) == 0:
            raise InputError(where, "no patient of the table has an outcome")
        y = sksurv_util.Surv.from_arrays(
            event=outcome.loc[patients, event].to_numpy(bool),
            time=outcome.loc[patients, time].to_numpy(float),
            name_event="event",
            name_time="time",
        )

    everyone = X.index.union(_file_patients(files, institutions))
    missing = pd.DataFrame(index=everyone.rename("patient"))
    for m in mods:
        missing[m] = ~missing.index.isin(list(present[m]))
    for name, (frame, _) in files.items():
        missing["outcome" if name == "outcomes" else name] = ~missing.index.isin(frame.index)
    missing["in_study"] = missing.index.isin(patients)
    missing = missing[missing.drop(columns="in_study").any(axis=1) | ~missing["in_study"]]

    X = X.loc[patients]
    blocks = {m: [c for c in X.columns if c.startswith(f"{m}.")] for m in mods}
    tables = {}
    for name in ("clinical", "genomic"):
        if name in files:
            tables[name] = files[name][0].reindex(patients)
            blocks[name] = list(tables[name].columns)
    return Study(
        X=X,
        y=y,
        clinical=tables.get("clinical"),
        genomic=tables.get("genomic"),
        institution=institution.loc[patients],
        missing=missing,
        blocks=blocks,
        feature_set=fs,
        key_id=pseudonymiser.key_id,
    )


def encode_covariates(frame: pd.DataFrame) -> pd.DataFrame:
    """Clinical or genomic columns as numbers, for correlations and models.

    Numeric and boolean columns are kept (as float). A text column with two
    values becomes one 0/1 column named ``"<column>=<second value>"`` (values
    sorted: ``sex=M``, ``hpv=positive``); one with more values becomes one
    0/1 column per value (``stage=I`` ... ``stage=IV``). Missing values stay
    NaN.

    Parameters
    ----------
    frame : pandas.DataFrame

    Returns
    -------
    pandas.DataFrame
        Same index, float64 columns.
    """
    out = {}
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
            out[str(column)] = values.astype(float)
            continue
        levels = sorted(str(v) for v in values.dropna().unique())
        if len(levels) == 2:
            levels = levels[1:]
        for level in levels:
            indicator = (values.astype(str) == level).astype(float)
            out[f"{column}={level}"] = indicator.where(values.notna())
    return pd.DataFrame(out, index=frame.index)


# -- table ---------------------------------------------------------------------


def _choose_feature_set(root: Path, feature_set: str | None) -> str:
    available = feature_sets(root)
    if not available:
        raise InputError(
            root,
            "the table holds no feature set (no feature_set=* folder); run `radflow run` first",
        )
    if feature_set is None:
        if len(available) > 1:
            raise InputError(
                root,
                f"the table holds {len(available)} feature sets "
                f"({', '.join(available)}); choose one with feature_set=",
            )
        return available[0]
    if feature_set not in available:
        raise InputError(
            root, f"unknown feature set {feature_set!r}; available: {', '.join(available)}"
        )
    return feature_set


def _check_filter(values, what: str, available, source) -> list[str] | None:
    if values is None:
        return None
    values = [values] if isinstance(values, str) else [str(v) for v in values]
    unknown = sorted(set(values) - set(available))
    if unknown:
        raise InputError(
            source, f"unknown {what} {unknown}; available: {', '.join(sorted(available)) or 'none'}"
        )
    return values


def _outdated(root: Path) -> str:
    return (
        "written by an older radflow, with the id column `case` (now `case_id`, as `case` is an "
        f"SQL keyword): rename the columns with `radflow table compact {root}` (the next "
        "`radflow run` on the table does it too)"
    )


def _read_rows(root: Path, fs: str, *, institutions, modalities, rois, image_types):
    """The rows of a feature set after the filters, and its feature columns."""
    folder = root / f"feature_set={fs}"
    leaves = [p.relative_to(folder).parts for p in folder.glob("institution=*/modality=*")]
    institutions = _check_filter(
        institutions, "institution(s)", {a.split("=", 1)[1] for a, _ in leaves}, folder
    )
    modalities = _check_filter(
        modalities, "modality(ies)", {b.split("=", 1)[1] for _, b in leaves}, folder
    )
    # Hive folders below the feature set; hidden temporaries ('.'-names) are skipped by default.
    dataset = ds.dataset(
        folder,
        format="parquet",
        partitioning=ds.partitioning(
            pa.schema([("institution", pa.string()), ("modality", pa.string())]), flavor="hive"
        ),
    )
    features = [f.name for f in dataset.schema if pa.types.is_floating(f.type)]
    if not dataset.files:
        raise InputError(folder, "the feature set holds no rows")
    if "case_id" not in dataset.schema.names:
        raise InputError(folder, _outdated(root))
    if rois is not None or image_types is not None:
        keys = dataset.to_table(columns=["roi", "image_type"])
        rois = _check_filter(rois, "ROI(s)", set(keys.column("roi").to_pylist()), folder)
        image_types = _check_filter(
            image_types, "image type(s)", set(keys.column("image_type").to_pylist()), folder
        )
    where = None
    for column, values in (
        ("institution", institutions),
        ("modality", modalities),
        ("roi", rois),
        ("image_type", image_types),
    ):
        if values is not None:
            condition = ds.field(column).isin(values)
            where = condition if where is None else where & condition
    data = dataset.to_table(columns=[*_PIVOT, "institution", *features], filter=where)
    if data.column("case_id").null_count:  # some files not migrated yet (an interrupted run)
        raise InputError(folder, _outdated(root))
    if data.num_rows == 0:
        raise InputError(
            folder, "no rows left after the institution/modality/ROI/image type filters"
        )
    return data.to_pandas(), features


def _institution_of(long: pd.DataFrame, source) -> pd.Series:
    per_case = long.groupby("case_id")["institution"].unique()
    several = per_case[per_case.map(len) > 1]
    if len(several):
        case = several.index[0]
        raise InputError(
            source,
            f"patient {case} has rows under institutions "
            f"{sorted(several.iloc[0])}; filter with institutions= or re-ingest it "
            "under one institution",
        )
    out = per_case.map(lambda v: v[0]).rename("institution")
    out.index.name = "patient"
    return out


def _pivot(long: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    keys = list(_PIVOT)
    twice = long.duplicated(keys, keep=False)
    if twice.any():
        case, modality, roi, image_type = long.loc[twice, keys].iloc[0]
        n = int((long[keys] == (case, modality, roi, image_type)).all(axis=1).sum())
        raise InputError(
            f"feature table, patient {case}",
            f"{n} rows for {modality}.{roi}.{image_type} (several series or label maps "
            "hold this ROI); keep one with rois=/modalities= or remove the extra series",
        )
    wide = long.set_index(keys)[features].unstack(["modality", "roi", "image_type"])
    order = {f: i for i, f in enumerate(features)}
    # unstack yields (feature, modality, roi, image_type); group columns by ROI, features in
    # table order.
    columns = sorted(wide.columns, key=lambda c: (c[1], c[2], c[3], order[c[0]]))
    wide = wide[columns]
    wide.columns = [f"{m}.{r}.{t}_{f}" for f, m, r, t in columns]
    # A (modality, roi, image_type) lacks whole classes when another parameter group made it.
    wide = wide.dropna(axis=1, how="all")
    wide.index.name = "patient"
    return wide.sort_index().astype(np.float64)


# -- CSV files -----------------------------------------------------------------


def _read_csv(
    source, name: str, id_column: str, pseudonymiser, cases: set
) -> tuple[pd.DataFrame, str]:
    """A CSV (or frame) indexed by pseudonymised id, raw ids dropped; and its name for errors."""
    if isinstance(source, pd.DataFrame):
        frame, where = source.copy(), name
        if id_column in frame.columns:
            frame[id_column] = frame[id_column].astype(str)
    else:
        where = str(source)
        try:
            frame = pd.read_csv(source, dtype={id_column: str})
        except FileNotFoundError:
            raise InputError(where, f"{name} file does not exist") from None
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise InputError(where, f"not a readable CSV file ({exc})") from None
    if id_column not in frame.columns:
        raise InputError(
            where,
            f"no patient id column {id_column!r}; columns: {list(frame.columns)} (pass id_column=)",
        )
    raw = frame[id_column]
    if raw.isna().any() or (raw.str.strip() == "").any():
        raise InputError(
            where,
            f"{int((raw.isna() | (raw.str.strip() == '')).sum())} row(s) without "
            f"a patient id in column {id_column!r}",
        )
    if raw.duplicated().any():
        raise InputError(
            where, f"{int(raw.duplicated().sum())} repeated patient id(s); give one row per patient"
        )
    pseudonyms = raw.map(pseudonymiser.patient)
    if not pseudonyms.isin(cases).any():
        hint = (
            " (its ids are already pseudonymised: give the raw ids)"
            if raw.isin(cases).any()
            else f"; the pseudonymisation key (key id {pseudonymiser.key_id}) may differ from the "
            "one used at ingest: pass the same key (key_file= or RADFLOW_PSEUDONYM_KEY)"
        )
        raise InputError(
            where, f"none of its {len(raw)} patient ids matches a patient of the table{hint}"
        )
    frame = frame.drop(columns=id_column)
    frame.index = pd.Index(pseudonyms.to_numpy(), name="patient")
    return frame, where


def _file_patients(files: dict, institutions) -> pd.Index:
    """Patients of the CSV files, for the report; with an institution filter, only
    those that ``clinical`` places in one of the institutions kept."""
    ids = pd.Index([i for frame, _ in files.values() for i in frame.index]).unique()
    if institutions is None:
        return ids
    clinical = files.get("clinical", (pd.DataFrame(), ""))[0]
    if "institution" not in clinical.columns:
        return pd.Index([])
    kept = [institutions] if isinstance(institutions, str) else [str(i) for i in institutions]
    return ids.intersection(clinical.index[clinical["institution"].astype(str).isin(kept)])


def _outcome(frame: pd.DataFrame, where: str, event: str, time: str) -> pd.DataFrame:
    absent = [c for c in (event, time) if c not in frame.columns]
    if absent:
        raise InputError(
            where,
            f"no outcome column(s) {absent}; columns: {list(frame.columns)} "
            "(pass event= and time=)",
        )
    out = frame[[event, time]].dropna()
    values = out[event]
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        codes = values.map(lambda v: bool(v) if v in (0, 1) else None)
    else:
        words = {"1": True, "0": False, "true": True, "false": False}
        codes = values.map(lambda v: words.get(str(v).strip().lower()))
    if codes.isna().any():
        bad = values[codes.isna()].iloc[0]
        raise InputError(where, f"column {event!r} must hold 1/0 or true/false, found '{bad}'")
    times = pd.to_numeric(out[time], errors="coerce")
    wrong = times.isna() | ~np.isfinite(times) | (times < 0)
    if wrong.any():
        raise InputError(
            where,
            f"column {time!r} must hold finite times >= 0, found '{out.loc[wrong, time].iloc[0]}'",
        )
    return pd.DataFrame({event: codes.astype(bool), time: times.astype(float)}, index=out.index)
