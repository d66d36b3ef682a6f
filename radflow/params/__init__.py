"""Parameter files and settings: PyRadiomics parameter files, IBSI configurations, name lists.

Submodules load on first use (:func:`radflow._lazy.attach`), so that
``from radflow import params`` in the command line stays cheap.
"""

from radflow._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__, ["extraction", "ibsi", "ibsi_filters", "names", "pyradiomics_params", "schema"]
)
