"""DataArrays of the store <-> SimpleITK images, geometry exact.

The DataArrays of :mod:`radflow.store.read` carry the grid in their attrs
(``spacing_zyx``, ``origin_zyx``, ``direction_xyz``) and in their coordinates
(mm along the grid axes, see :mod:`radflow.store.layout`); :func:`to_sitk` rebuilds
the SimpleITK geometry of a DataArray or of a contiguous crop of one bit for bit,
:func:`from_sitk` goes the other way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk
from numpy.typing import ArrayLike

from radflow._lazy import load
from radflow.errors import InputError
from radflow.store.layout import DIMS

xr = load("xarray")

__all__ = ["from_sitk", "sitk_box", "to_sitk"]


def image_array(image: sitk.Image, source: str) -> np.ndarray:
    """A view of the voxels of a 3-D scalar image, checked (the store's image contract)."""
    if not isinstance(image, sitk.Image):
        raise TypeError(f"image must be a SimpleITK.Image, got {type(image).__name__}")
    if image.GetDimension() != 3:
        raise InputError(source, f"image must be 3-D, got {image.GetDimension()}-D")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(
            source,
            f"image must hold one value per voxel, got {image.GetNumberOfComponentsPerPixel()}",
        )
    data = sitk.GetArrayViewFromImage(image)
    if data.dtype.kind not in "iuf":
        raise InputError(source, f"unsupported voxel type {image.GetPixelIDTypeAsString()}")
    return data


def data_array(
    data: ArrayLike, attrs: dict, name: str, start_zyx: Sequence[int] = (0, 0, 0)
) -> xr.DataArray:
    """``data`` (NumPy or dask) at index ``start_zyx`` of the grid in ``attrs``, as a DataArray."""
    coords = {}
    for axis, dim in enumerate(DIMS):
        index = start_zyx[axis] + np.arange(data.shape[axis])
        values = attrs["origin_zyx"][axis] + index * attrs["spacing_zyx"][axis]
        coords[dim] = (dim, values, {"units": "mm"})
    return xr.DataArray(data, dims=DIMS, coords=coords, name=name, attrs=attrs)


def geometry(attrs: dict, name: object) -> tuple[tuple, tuple, tuple]:
    """Spacing (z, y, x), origin (z, y, x) and direction (x, y, z row-major) of DataArray attrs."""
    for key in ("spacing_zyx", "origin_zyx", "direction_xyz"):
        if key not in attrs:
            raise ValueError(
                f"DataArray {name!r} has no attrs[{key!r}]: open it with "
                "radflow.store.read.open_volume or build it with from_sitk"
            )
    return (
        tuple(float(s) for s in attrs["spacing_zyx"]),
        tuple(float(o) for o in attrs["origin_zyx"]),
        tuple(float(d) for d in attrs["direction_xyz"]),
    )


def to_sitk(da: xr.DataArray) -> sitk.Image:
    """Compute a DataArray of the store into a SimpleITK image, geometry exact.

    Parameters
    ----------
    da : xarray.DataArray
        Dims ``("z", "y", "x")`` with the attrs of :func:`radflow.store.read.open_volume`
        or :func:`from_sitk`; may be a contiguous crop (``isel`` / ``sel`` with
        step-1 slices) of one.

    Returns
    -------
    SimpleITK.Image
        Same voxels and dtype (bool becomes uint8). Spacing and direction are
        the stored ones; the origin is the physical position of the first
        voxel, computed by ITK exactly as ``image[i0:, j0:, k0:]`` would.

    Raises
    ------
    ValueError
        Other dims, missing geometry attrs, or coordinates that are not
        consecutive voxels of the stored grid (strided selection).
    """
    if tuple(da.dims) != DIMS:
        raise ValueError(f"DataArray {da.name!r} must have dims {DIMS}, got {tuple(da.dims)}")
    spacing, origin, direction = geometry(da.attrs, da.name)
    start = []
    for axis, dim in enumerate(DIMS):
        coord = np.asarray(da[dim].values, dtype=np.float64)
        if coord.size == 0:
            raise ValueError(f"DataArray {da.name!r} is empty along {dim}")
        first = int(round((coord[0] - origin[axis]) / spacing[axis]))
        grid = origin[axis] + (first + np.arange(coord.size)) * spacing[axis]
        if not np.allclose(coord, grid, rtol=0, atol=1e-3 * spacing[axis]):
            raise ValueError(
                f"DataArray {da.name!r}: {dim} coordinates are not consecutive voxels of "
                "the stored grid (strided or resampled); resample with SimpleITK instead"
            )
        start.append(first)
    return sitk_box(np.asarray(da.values), spacing, origin, direction, start)


def sitk_box(
    values: np.ndarray,
    spacing: Sequence[float],
    origin: Sequence[float],
    direction: Sequence[float],
    start: Sequence[int],
) -> sitk.Image:
    """Voxels ``values`` at index ``start`` (z, y, x) of a stored grid, as a SimpleITK image.

    ``spacing`` and ``origin`` are (z, y, x), ``direction`` the row-major (x, y, z)
    matrix of the whole grid. Every box read from the store becomes an image here.
    """
    if values.dtype == bool:
        values = values.astype(np.uint8)
    image = sitk.GetImageFromArray(np.ascontiguousarray(values))
    image.SetSpacing(spacing[::-1])
    image.SetDirection(direction)
    if any(start):
        # ITK's own index-to-point transform, so a crop's origin is bit-exact
        # with SimpleITK's slicing of the full image.
        grid = sitk.Image([1, 1, 1], sitk.sitkUInt8)
        grid.SetSpacing(spacing[::-1])
        grid.SetOrigin(origin[::-1])
        grid.SetDirection(direction)
        image.SetOrigin(grid.TransformIndexToPhysicalPoint([int(i) for i in start[::-1]]))
    else:
        image.SetOrigin(origin[::-1])
    return image


def from_sitk(image: sitk.Image, *, name: str = "image") -> xr.DataArray:
    """An in-memory DataArray of a SimpleITK image, in the form ``open_volume`` gives.

    Parameters
    ----------
    image : SimpleITK.Image
        3-D scalar image.
    name : str, optional
        Name of the DataArray.

    Returns
    -------
    xarray.DataArray
        A copy of the voxels, dims ``("z", "y", "x")``, coordinates in mm,
        attrs ``spacing_zyx``, ``origin_zyx``, ``direction_xyz``.
    """
    data = image_array(image, name)
    attrs = {
        "spacing_zyx": image.GetSpacing()[::-1],
        "origin_zyx": image.GetOrigin()[::-1],
        "direction_xyz": image.GetDirection(),
    }
    return data_array(np.array(data), attrs, name)
