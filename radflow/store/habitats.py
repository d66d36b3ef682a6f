"""Habitat maps in the store: one OME-Zarr label per ROI, written by ``radflow habitats apply``.

The habitat map of ROI ``<roi>`` of a series is an ordinary label image of that series (the
reference series of the habitat model's first channel), so that every path that reads labels
(``radflow run``, QC overlays, viewers) reads it unchanged::

    STORE/<case>/<series>/labels/<roi>_habitats/     uint8, 0 outside the ROI, 1..K inside

Its ROIs are the habitats, named ``<roi>_habitat_<k>`` (label value ``k``). The store's label
keys are normalised ROI names (:func:`radflow.io.records.roi_key`: lower case, ``_`` for any
other character), so the key is ``<roi>_habitats`` rather than ``<roi>-habitats``.
Besides what the store records with every label (source ``"habitats"``, mask hash, boxes), its
``attributes["radflow"]["habitats"]`` record (:func:`habitat_attrs`): the ROI, the number of
habitats K, the channels, the model's fingerprint, the task key (what the map depends on:
incremental runs compare it) and radflow's version.

Everything here reads metadata only (``zarr.json``), never voxels.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from radflow.io.records import roi_key
from radflow.store import layout

__all__ = [
    "HABITATS",
    "SOURCE",
    "habitat_attrs",
    "habitat_key",
    "habitat_record",
    "habitat_rois",
]

#: Key of a habitat label's ``attributes["radflow"]`` holding what wrote it.
HABITATS = "habitats"
#: The ``source`` the store records for a habitat label.
SOURCE = "habitats"


def habitat_key(roi: str) -> str:
    """The label key of the habitat map of ROI ``roi``: ``<roi_key(roi)>_habitats``."""
    return roi_key(f"{roi_key(roi)}_habitats")


def habitat_rois(roi: str, n_habitats: int) -> dict[int, str]:
    """Label value -> ROI name of the habitats of ``roi``: ``{k: "<roi>_habitat_<k>"}``."""
    name = roi_key(roi)
    return {k: f"{name}_habitat_{k}" for k in range(1, int(n_habitats) + 1)}


def habitat_attrs(
    roi: str,
    n_habitats: int,
    channels: Sequence[str],
    model_fingerprint: str,
    task_key: str,
    version: str,
    channel_series: Sequence[str] = (),
) -> dict:
    """The ``attrs`` a habitat map is written with (:func:`radflow.store.write.add_label`)."""
    return {
        HABITATS: {
            "roi": roi_key(roi),
            "n_habitats": int(n_habitats),
            "channels": list(channels),
            "channel_series": list(channel_series),
            "model_fingerprint": model_fingerprint,
            "task_key": task_key,
            "radflow_version": version,
        }
    }


def habitat_record(store: str | Path, case: str, series: str, key: str) -> dict | None:
    """What a habitat label of a series records (:func:`habitat_attrs`), or None.

    None when the series has no label ``key`` or the label is not a habitat map.
    """
    path = layout.series_path(store, case, series)
    folder = path / "labels" / key
    if not (folder / "zarr.json").is_file() or key not in layout.stored_label_keys(path):
        return None
    radflow = layout.node_json(folder).get("attributes", {}).get("radflow") or {}
    record = radflow.get(HABITATS) if isinstance(radflow, dict) else None
    return dict(record) if isinstance(record, dict) else None
