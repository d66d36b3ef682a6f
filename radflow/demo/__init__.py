"""The demo: a synthetic multi-institution archive and the scenario ``make demo`` runs on it.

- :mod:`~radflow.demo.phantoms`: anatomical phantoms (tissues, tumours) on a voxel grid.
- :mod:`~radflow.demo.scanners`: the institutions' CT, PET and MR scanner models.
- :mod:`~radflow.demo.cohort`: patients drawn from a hidden survival model (no images).
- :mod:`~radflow.demo.imaging`: CT, PET and MR images of a drawn patient.
- :mod:`~radflow.demo.archive`: the archive on disk (DICOM, RTSTRUCT, NIfTI, CSV tables).
- :mod:`~radflow.demo.synthetic`: the public names of the four above, and
  ``radflow demo-data``.
- :mod:`~radflow.demo.study`: the demo's study specification and modelling step.
- :mod:`~radflow.demo.scenario`: ``radflow demo``: archive -> ingest -> extraction -> model
  -> report.

Submodules load on first use (``from radflow import demo`` is cheap): the scenario pulls in
the pipeline, the models and the report.
"""

from radflow._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    ["archive", "cohort", "imaging", "phantoms", "scanners", "scenario", "study", "synthetic"],
)
