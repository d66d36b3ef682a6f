"""The demo: a synthetic multi-institution archive and the scenario ``make demo`` runs on it.

- :mod:`~radflow.demo.phantoms`: anatomical phantoms (tissues, tumours) on a voxel grid.
- :mod:`~radflow.demo.synthetic`: the synthetic archive (DICOM, RTSTRUCT, NIfTI) and its cohort.
- :mod:`~radflow.demo.study`: the demo's study specification and modelling step.
- :mod:`~radflow.demo.scenario`: ``radflow demo``: archive -> ingest -> extraction -> model -> report.
"""
