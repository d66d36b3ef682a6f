"""The volume store: one OME-Zarr 0.5 group per image series (see :mod:`radflow.store.layout`).

- :mod:`~radflow.store.write`: write a series and its label maps, add a label map;
- :mod:`~radflow.store.read`: open an image or a label map lazily, read boxes and ROI boxes;
- :mod:`~radflow.store.source`: :class:`~radflow.store.source.RoiSource`, what one
  extraction reads (box, label box, whole-volume summary, the zarr arrays behind them);
- :mod:`~radflow.store.catalogue`: list a store's series, labels and fingerprints;
- :mod:`~radflow.store.habitats`: habitat maps (labels written by ``radflow habitats apply``);
- :mod:`~radflow.store.convert`: DataArrays <-> SimpleITK images, geometry exact;
- :mod:`~radflow.store.summary`, :mod:`~radflow.store.chunks`, :mod:`~radflow.store.ome`:
  whole-volume summaries, chunk shapes, OME-Zarr metadata.

Submodules load on first use (:func:`radflow._lazy.attach`); zarr, xarray and dask load
only when a store is really read or written.
"""

from radflow._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    [
        "catalogue",
        "chunks",
        "convert",
        "habitats",
        "layout",
        "ome",
        "read",
        "source",
        "summary",
        "write",
    ],
)
