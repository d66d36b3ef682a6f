"""radflow: distributed radiomics on OME-Zarr volumes, Dask and Parquet.

``radflow.extract`` (:func:`radflow.extraction.extractor.extract`) and
``radflow.open_volume`` (:func:`radflow.store.read.open_volume`) load with their modules on
first use (:func:`radflow._lazy.attach`), so that ``import radflow`` and ``radflow --help``
stay fast.
"""

from radflow._lazy import attach
from radflow._version import __version__

__getattr__, __dir__, _ = attach(
    __name__, attributes={"extract": "extraction.extractor", "open_volume": "store.read"}
)
__all__ = ["__version__", "extract", "open_volume"]
