"""IBSI-compliant feature extraction (IBSI 1), beside the PyRadiomics-compatible mode.

- :mod:`~radflow.features.ibsi.registry`: every IBSI tag, its family and identifier.
- :mod:`~radflow.features.ibsi.extract`: :func:`extract_ibsi`, processing and all families.
- :mod:`~radflow.features.ibsi.compliance`: the IBSI 1 compliance check.
- :mod:`~radflow.features.ibsi.cli_commands`: ``radflow ibsi-check``, ``features``, ``extract --ibsi``.
"""
