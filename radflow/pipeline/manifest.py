"""The store's manifest: one row per ingested series and per input that failed.

``STORE/manifest.parquet`` is what users query to see what an archive held:
modality, geometry, ROIs and the acquisition metadata of every series (the
seed of harmonisation: scanner, kernel, slice thickness, kVp, field
strength, radiopharmaceutical ...), and every file that could not be used,
with the reason. It holds pseudonymised ids only.

Columns
-------
case_id, institution, series_id, modality
    Pseudonymised patient id, institution (as in the archive), pseudonymised
    series id, DICOM modality. The ids are named as in the feature tables
    (``case`` is an SQL keyword); manifests written before are read with the
    new names, and rewritten with them by the next ingest.
item
    ``"series"``, ``"roi"`` (an ROI of a series) or ``"file"`` (an input
    that could not be tied to a series).
roi, source
    ROI key and the failing file relative to its patient folder (failures).
status, action, error
    ``status`` is ``"ok"`` or ``"failed"``; ``action`` what the last run did
    (``"ingested"``, ``"unchanged"``, ``"failed"``); ``error`` the reason.
fingerprint, rois, shape_zyx, spacing_zyx, ingested_at, radflow_version
acq_<name>
    One column per acquisition attribute (``acq_manufacturer``,
    ``acq_kvp``, ``acq_slice_thickness_mm`` ...).
"""

from __future__ import annotations

import json
from pathlib import Path

from radflow._atomic import atomic_file
from radflow._lazy import load

pd = load("pandas")
pa = load("pyarrow")
pq = load("pyarrow.parquet")

MANIFEST = "manifest.parquet"

# Column names of manifests written before the ids were renamed -> today's.
_LEGACY_COLUMNS = {"case": "case_id", "series": "series_id"}


def manifest_path(store: str | Path) -> Path:
    """Where the manifest of a store lies: ``STORE/manifest.parquet``."""
    return Path(store) / MANIFEST


def read_manifest(store: str | Path) -> pd.DataFrame:
    """The manifest as a DataFrame (empty if the store has none yet)."""
    path = manifest_path(store)
    if not path.is_file():
        return pd.DataFrame()
    frame = pq.read_table(path).to_pandas()
    legacy = {old: new for old, new in _LEGACY_COLUMNS.items() if old in frame.columns}
    return frame.rename(columns=legacy) if legacy else frame


def _flatten(rows: list[dict]) -> pd.DataFrame:
    flat = []
    for row in rows:
        row = dict(row)
        acquisition = row.pop("acquisition", None) or {}
        for name, value in acquisition.items():
            if isinstance(value, (list, tuple, dict)):
                value = json.dumps(value)
            row[f"acq_{name}"] = value
        flat.append(row)
    frame = pd.DataFrame(flat)
    for column in frame.columns:
        if not column.startswith("acq_"):
            continue
        kinds = {type(v) for v in frame[column] if v is not None and v == v}
        if len(kinds) > 1 and not kinds <= {int, float}:
            # Headers disagree on a tag's type across series: keep text.
            frame[column] = frame[column].map(lambda v: None if v is None else str(v))
    return frame


def update_manifest(store: str | Path, rows: list[dict]) -> pd.DataFrame:
    """Replace the rows of every case in ``rows`` and write the manifest atomically.

    Rows of cases not in ``rows`` (not part of this run's archive) are kept.
    """
    new = _flatten(rows)
    old = read_manifest(store)
    if not old.empty and not new.empty:
        old = old[~old["case_id"].isin(set(new["case_id"]))]
    frames = [f for f in (old, new) if not f.empty]
    merged = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if not merged.empty:
        merged = merged.sort_values(
            ["institution", "case_id", "item", "series_id", "roi"], kind="stable"
        ).reset_index(drop=True)
    table = pa.Table.from_pandas(merged, preserve_index=False)
    with atomic_file(manifest_path(store)) as tmp:
        pq.write_table(table, tmp)
    return merged
