r"""Shape (2D): size and form of a single-slice ROI, as PyRadiomics 3.0.1 ``shape2D``.

The ROI must lie in one slice along ``force2d_dimension`` (0 = z: an axial
slice). Its contour is PyRadiomics' marching-squares polygon (see
:mod:`radflow.features._mesh`): vertices halfway along every pixel edge
joining the ROI to the background, :math:`N_f` line segments
:math:`(a_i, b_i)` in mm, consistently oriented.

- ``MeshSurface`` :math:`A = \sum_i \frac{1}{2} \, Oa_i \times Ob_i`, the signed
  triangle areas from the origin :math:`O`; the area outside the ROI cancels.
- ``PixelSurface`` :math:`A_{pixel} = N_p \, \Delta_1 \Delta_2`, pixel count times pixel area.
- ``Perimeter`` :math:`P = \sum_i |a_i b_i|`.
- ``PerimeterSurfaceRatio`` :math:`P / A` in mm^-1.
- ``Sphericity`` :math:`2\sqrt{\pi A} / P` (1 for a disc).
- ``SphericalDisproportion`` :math:`P / (2\sqrt{\pi A})` (deprecated in PyRadiomics).
- ``MaximumDiameter``: largest distance between two contour vertices.
- ``MajorAxisLength`` :math:`4\sqrt{\lambda_{major}}`, ``MinorAxisLength``
  :math:`4\sqrt{\lambda_{minor}}`, ``Elongation``
  :math:`\sqrt{\lambda_{minor} / \lambda_{major}}`, from the eigenvalues of the
  covariance of the pixel-centre coordinates in mm (NaN for a single pixel).

The IBSI defines morphology in 3D only, so none of these has an IBSI id.
"""

from __future__ import annotations

from collections.abc import Iterable
from numbers import Integral

import numpy as np

from radflow.errors import SettingsError
from radflow.features import _native
from radflow.features._checks import check_spacing, requested_features, roi_box
from radflow.features.registry import Feature
from radflow.features.shape import axis_length, axis_ratio, principal_moments

__all__ = ["FEATURES", "compute"]

FAMILY = "shape2D"

FEATURES = (
    Feature("MeshSurface", FAMILY, None, "mm^2"),
    Feature("PixelSurface", FAMILY, None, "mm^2"),
    Feature("Perimeter", FAMILY, None, "mm"),
    Feature("PerimeterSurfaceRatio", FAMILY, None, "mm^-1"),
    Feature("Sphericity", FAMILY, None, ""),
    Feature("SphericalDisproportion", FAMILY, None, "", default=False),
    Feature("MaximumDiameter", FAMILY, None, "mm"),
    Feature("MajorAxisLength", FAMILY, None, "mm"),
    Feature("MinorAxisLength", FAMILY, None, "mm"),
    Feature("Elongation", FAMILY, None, ""),
)

_CONTOUR = {"MeshSurface", "Perimeter", "PerimeterSurfaceRatio", "Sphericity",
            "SphericalDisproportion"}  # fmt: skip
_AXES = {"MajorAxisLength", "MinorAxisLength", "Elongation"}


def compute(
    mask, *, spacing_zyx, force2d_dimension: int = 0, features: Iterable[str] | None = None
) -> dict[str, float]:
    """2D shape features of a single-slice ROI, equal to PyRadiomics' ``RadiomicsShape2D``.

    Parameters
    ----------
    mask : (z, y, x) array of bool or int
        The ROI: non-zero voxels, all in one slice along ``force2d_dimension``.
        Cropped or not, the result is the same.
    spacing_zyx : sequence of 3 float
        Voxel size in mm, (z, y, x) order.
    force2d_dimension : {0, 1, 2}
        The out-of-plane axis of the (z, y, x) array, PyRadiomics'
        ``force2Ddimension``: 0 for an axial slice.
    features : iterable of str, optional
        PyRadiomics feature names to compute (default: all of :data:`FEATURES`).

    Returns
    -------
    dict of str to float
        Feature name -> value, in the order of :data:`FEATURES`; areas in
        mm^2, lengths in mm.

    Raises
    ------
    ValueError
        The ROI spans more than one slice along ``force2d_dimension``
        (PyRadiomics raises ValueError too), is empty, or the spacing is bad.
    SettingsError
        An unknown feature name or a ``force2d_dimension`` not in {0, 1, 2}.

    Examples
    --------
    >>> square = np.zeros((1, 4, 4), bool)
    >>> square[0, 1:3, 1:3] = True
    >>> compute(square, spacing_zyx=(3.0, 1.0, 1.0), features=["PixelSurface", "Perimeter"])
    {'PixelSurface': 4.0, 'Perimeter': 6.828427124746191}
    """
    wanted = set(requested_features(features, FEATURES, FAMILY))
    valid_axis = isinstance(force2d_dimension, Integral) and not isinstance(force2d_dimension, bool)
    if not valid_axis or force2d_dimension not in (0, 1, 2):
        raise SettingsError(
            f"force2d_dimension must be 0, 1 or 2 (axis of the (z, y, x) array), "
            f"got {force2d_dimension!r}"
        )
    roi, _ = roi_box(mask, ndim=3)
    spacing = check_spacing(spacing_zyx)
    if roi.shape[force2d_dimension] > 1:
        raise ValueError(
            f"mask: the ROI spans {roi.shape[force2d_dimension]} slices along force2d_dimension="
            f"{force2d_dimension}; shape2D needs a single-slice ROI (use shape for 3D ROIs)"
        )
    roi = roi.squeeze(axis=force2d_dimension)
    spacing = np.delete(spacing, force2d_dimension)
    padded = np.pad(roi, 1).view(np.uint8)

    values: dict[str, float] = {}
    if wanted & _CONTOUR:
        perimeter, surface = _native.contour_perimeter_area(padded, spacing)
        values["MeshSurface"] = surface
        values["Perimeter"] = perimeter
        values["PerimeterSurfaceRatio"] = perimeter / surface
        values["Sphericity"] = (2 * np.sqrt(np.pi * surface)) / perimeter
        values["SphericalDisproportion"] = 1.0 / values["Sphericity"]
    if "PixelSurface" in wanted:
        y, x = spacing
        values["PixelSurface"] = np.count_nonzero(roi) * (x * y)
    if "MaximumDiameter" in wanted:
        # The 3D kernel on one slice: its in-plane diameter is the 2D one.
        vertices = _native.edge_vertices(padded[None])
        values["MaximumDiameter"] = _native.mesh_diameters(vertices, np.r_[1.0, spacing])[0]
    if wanted & _AXES:
        minor, major = principal_moments(roi, spacing)
        with np.errstate(divide="ignore", invalid="ignore"):
            values["MajorAxisLength"] = axis_length(major)
            values["MinorAxisLength"] = axis_length(minor)
            values["Elongation"] = axis_ratio(minor, major)
    return {f.name: float(values[f.name]) for f in FEATURES if f.name in wanted}
