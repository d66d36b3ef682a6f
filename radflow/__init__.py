"""radflow: distributed radiomics on OME-Zarr volumes, Dask and Parquet."""

from radflow._version import __version__

__all__ = ["__version__", "extract", "open_volume"]


def __getattr__(name):
    # Heavy modules (zarr, xarray, numba kernels) load on first use, so that
    # `radflow --help` and `import radflow` stay fast.
    if name == "open_volume":
        from radflow.store.volume import open_volume

        return open_volume
    if name == "extract":
        from radflow.extraction.extractor import extract

        return extract
    raise AttributeError(f"module 'radflow' has no attribute {name!r}")
