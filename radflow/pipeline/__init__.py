"""The pipeline: an archive into the store, the store into feature tables, on Dask.

- :mod:`~radflow.pipeline.ingest`: archive (DICOM, RTSTRUCT, SEG, NIfTI) -> volume store.
- :mod:`~radflow.pipeline.segment`: threshold segmentation of a stored series.
- :mod:`~radflow.pipeline.plan`, :mod:`~radflow.pipeline.tasks`: what to extract, per task.
- :mod:`~radflow.pipeline.run`: the run on a Dask cluster (:mod:`~radflow.pipeline.clusters`).
- :mod:`~radflow.pipeline.maps`: voxel-based feature maps of every ROI, into the store.
- :mod:`~radflow.pipeline.habitats`: habitat models of a ROI, and habitat maps into the store.
- :mod:`~radflow.pipeline.outcomes`: failure bookkeeping and summaries shared by the Dask
  commands (errors records, known failures, reports).
- :mod:`~radflow.pipeline.table`: the Hive-partitioned Parquet feature table;
  :mod:`~radflow.pipeline.keys`: compact sets of task keys.
- :mod:`~radflow.pipeline.manifest`, :mod:`~radflow.pipeline.progress`,
  :mod:`~radflow.pipeline.fingerprint`: the store's manifest, progress output, fingerprints.
- :mod:`~radflow.pipeline.ibsi_compliance`: the IBSI 1 compliance check.

Submodules load on first use (:func:`radflow._lazy.attach`); Dask, distributed, pandas,
pyarrow and DuckDB load only when a run, a table or a manifest needs them.
"""

from radflow._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    [
        "clusters",
        "fingerprint",
        "habitats",
        "ibsi_compliance",
        "ingest",
        "keys",
        "manifest",
        "maps",
        "outcomes",
        "plan",
        "progress",
        "run",
        "segment",
        "table",
        "tasks",
    ],
)
