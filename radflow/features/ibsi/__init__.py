"""IBSI-compliant feature extraction (IBSI 1), beside the PyRadiomics-compatible mode.

- :mod:`~radflow.features.ibsi.registry`: every IBSI tag, its family and identifier.
- :mod:`~radflow.extraction.ibsi`: :func:`extract_ibsi`, processing and all families.
- :mod:`~radflow.pipeline.ibsi_compliance`: the IBSI 1 compliance check.
- :mod:`~radflow.cli.ibsi`: ``radflow ibsi-check``, ``features``, ``extract --ibsi``.

Family modules load on first use (:func:`radflow._lazy.attach`).
"""

from radflow._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    [
        "glcm", "gldzm", "glrlm", "glszm", "histogram", "ivh", "local_intensity", "morphology",
        "ngldm", "ngtdm", "registry", "statistics",
    ],
)  # fmt: skip
