"""One extraction, orchestrated: which image types, which classes, which ROI, which mode.

- :mod:`~radflow.extraction.extractor`: PyRadiomics-compatible extraction (:func:`extract`).
- :mod:`~radflow.extraction.ibsi`: the IBSI 1 chain (:func:`extract_ibsi`).
- :mod:`~radflow.extraction.batch`: PyRadiomics' batch CSV mode.
- :mod:`~radflow.extraction.output`: the command line's output formats.
- :mod:`~radflow.extraction.diagnostics`: PyRadiomics' ``diagnostics_*`` entries.
- :mod:`~radflow.extraction.region`: the region of a volume one extraction reads.
- :mod:`~radflow.extraction.voxel`: PyRadiomics' voxel mode (feature maps).
- :mod:`~radflow.extraction.startup`: what the command starts in background threads first.

Feature families (:mod:`radflow.features`) and image types (:mod:`radflow.filters`) are pure
functions of arrays; everything that decides what to compute on which voxels lives here.
Submodules load on first use (:func:`radflow._lazy.attach`).
"""

from radflow._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    ["batch", "diagnostics", "extractor", "ibsi", "output", "region", "startup", "voxel"],
)
