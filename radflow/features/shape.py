r"""Shape (3D): size and form of the ROI, as PyRadiomics 3.0.1 ``shape`` computes them.

Mesh features use PyRadiomics' marching-cubes mesh (see
:mod:`radflow.features._mesh`): vertices halfway along every edge joining an
ROI voxel to a background voxel, triangles with outward normals. With
:math:`N_f` triangles :math:`(a_i, b_i, c_i)` in mm and the origin :math:`O`:

- ``MeshVolume`` :math:`V = \sum_i \frac{Oa_i \cdot (Ob_i \times Oc_i)}{6}`
  (signed tetrahedra, IBSI RNU0).
- ``VoxelVolume`` :math:`V_{voxel} = N_v \, \Delta z \Delta y \Delta x`, the number of ROI
  voxels times the voxel volume (YEKZ).
- ``SurfaceArea`` :math:`A = \sum_i \frac{1}{2} |a_ib_i \times a_ic_i|` (C0JK).
- ``SurfaceVolumeRatio`` :math:`A / V` in mm^-1 (2PR5).
- ``Sphericity`` :math:`\sqrt[3]{36 \pi V^2} / A` (QCFX).
- ``Compactness1`` :math:`V / \sqrt{\pi A^3}` (SKGS; deprecated in PyRadiomics).
- ``Compactness2`` :math:`36 \pi V^2 / A^3` (BQWJ; deprecated).
- ``SphericalDisproportion`` :math:`A / \sqrt[3]{36 \pi V^2}` (KRCK; deprecated).
- ``Maximum3DDiameter``: largest distance between two mesh vertices (L0JK).
- ``Maximum2DDiameterSlice`` / ``Column`` / ``Row``: the same, restricted to pairs
  of vertices in one z plane (axial) / one y plane (coronal) / one x plane
  (sagittal).

Principal-component features use the physical coordinates (mm) of the ROI
voxel centres, their covariance matrix (divided by :math:`N_v`) and its
eigenvalues :math:`\lambda_{least} \le \lambda_{minor} \le \lambda_{major}`;
no mesh:

- ``MajorAxisLength`` :math:`4\sqrt{\lambda_{major}}` (TDIC),
  ``MinorAxisLength`` :math:`4\sqrt{\lambda_{minor}}` (P9VJ),
  ``LeastAxisLength`` :math:`4\sqrt{\lambda_{least}}` (7J51).
- ``Elongation`` :math:`\sqrt{\lambda_{minor} / \lambda_{major}}` (Q3CK),
  ``Flatness`` :math:`\sqrt{\lambda_{least} / \lambda_{major}}` (N17B); NaN for
  a single voxel (0/0), as in PyRadiomics.

A known difference of rounding size: where an eigenvalue is 0 analytically but the ROI is not
axis-aligned (a line of voxels, one voxel thick along two axes, as a small ROI resampled to
3 mm can become), both tools return the square root of the eigen-solver's rounding noise, of
size :math:`\epsilon \lambda_{major}` (:math:`\epsilon = 2.2 \cdot 10^{-16}`), not 0:
``MinorAxisLength``/``LeastAxisLength`` up to about :math:`4 \sqrt{\epsilon}` times
``MajorAxisLength`` (seen: below 1e-6 mm on lines up to 75 mm long),
``Elongation``/``Flatness`` up to :math:`4 \sqrt{\epsilon} \approx 6 \cdot 10^{-8}`. The two
noises differ (PyRadiomics: ``numpy.linalg.eigvals`` of a float covariance of voxel coordinates
in its padded crop, summed by BLAS; radflow: ``eigvalsh`` of a covariance from exact integer
moments), so one may give 4.8e-7 mm where the other gives 0 or 1e-7. Reproducing PyRadiomics'
digits would mean reproducing its crop frame, its BLAS summation order and its general
eigen-solver, for noise that differs between machines anyway; it is not done.
``tests/features/test_shape.py`` bounds both tools' noise on such lines.

References
----------
Lorensen WE, Cline HE. Marching cubes: a high resolution 3D surface
construction algorithm. Comput Graph 1987;21:163-9. doi:10.1145/37402.37422

Zwanenburg A et al. The Image Biomarker Standardization Initiative.
Radiology 2020;295:328-38. doi:10.1148/radiol.2020191145
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from radflow.features import _native
from radflow.features._checks import check_spacing, requested_features, roi_box
from radflow.features.registry import Feature

__all__ = ["FEATURES", "compute", "principal_moments"]

FAMILY = "shape"

FEATURES = (
    Feature("MeshVolume", FAMILY, "RNU0", "mm^3"),
    Feature("VoxelVolume", FAMILY, "YEKZ", "mm^3"),
    Feature("SurfaceArea", FAMILY, "C0JK", "mm^2"),
    Feature("SurfaceVolumeRatio", FAMILY, "2PR5", "mm^-1"),
    Feature("Sphericity", FAMILY, "QCFX", ""),
    Feature("Compactness1", FAMILY, "SKGS", "", default=False),
    Feature("Compactness2", FAMILY, "BQWJ", "", default=False),
    Feature("SphericalDisproportion", FAMILY, "KRCK", "", default=False),
    Feature("Maximum3DDiameter", FAMILY, "L0JK", "mm"),
    Feature("Maximum2DDiameterSlice", FAMILY, None, "mm"),
    Feature("Maximum2DDiameterColumn", FAMILY, None, "mm"),
    Feature("Maximum2DDiameterRow", FAMILY, None, "mm"),
    Feature("MajorAxisLength", FAMILY, "TDIC", "mm"),
    Feature("MinorAxisLength", FAMILY, "P9VJ", "mm"),
    Feature("LeastAxisLength", FAMILY, "7J51", "mm"),
    Feature("Elongation", FAMILY, "Q3CK", ""),
    Feature("Flatness", FAMILY, "N17B", ""),
)

_MESH = {"MeshVolume", "SurfaceArea", "SurfaceVolumeRatio", "Sphericity", "Compactness1",
         "Compactness2", "SphericalDisproportion"}  # fmt: skip
_DIAMETERS = {"Maximum3DDiameter", "Maximum2DDiameterSlice", "Maximum2DDiameterColumn",
              "Maximum2DDiameterRow"}  # fmt: skip
_AXES = {"MajorAxisLength", "MinorAxisLength", "LeastAxisLength", "Elongation", "Flatness"}


def compute(mask, *, spacing_zyx, features: Iterable[str] | None = None) -> dict[str, float]:
    """3D shape features of an ROI, equal to PyRadiomics' ``RadiomicsShape``.

    Parameters
    ----------
    mask : (z, y, x) array of bool or int
        The ROI: non-zero voxels. Cropped or not, the result is the same.
    spacing_zyx : sequence of 3 float
        Voxel size in mm, (z, y, x) order.
    features : iterable of str, optional
        PyRadiomics feature names to compute (default: all of :data:`FEATURES`,
        including those PyRadiomics leaves out by default).

    Returns
    -------
    dict of str to float
        Feature name -> value, in the order of :data:`FEATURES`. Volumes in
        mm^3, areas in mm^2, lengths in mm.

    Raises
    ------
    SettingsError
        An unknown feature name.
    ValueError, TypeError
        A mask that is not a 3D bool/int array or is empty; a bad spacing.

    Examples
    --------
    >>> cube = np.ones((2, 2, 2), bool)
    >>> compute(cube, spacing_zyx=(1.0, 1.0, 1.0), features=["VoxelVolume", "Maximum3DDiameter"])
    {'VoxelVolume': 8.0, 'Maximum3DDiameter': 2.449489742783178}
    """
    wanted = set(requested_features(features, FEATURES, FAMILY))
    roi, _ = roi_box(mask, ndim=3)
    spacing = check_spacing(spacing_zyx)
    padded = np.pad(roi, 1).view(np.uint8)

    values: dict[str, float] = {}
    if wanted & _MESH:
        area, volume = _native.mesh_area_volume(padded, spacing)
        values["MeshVolume"] = volume
        values["SurfaceArea"] = area
        values["SurfaceVolumeRatio"] = area / volume
        values["Sphericity"] = (36 * np.pi * volume**2) ** (1.0 / 3.0) / area
        values["Compactness1"] = volume / (area ** (3.0 / 2.0) * np.sqrt(np.pi))
        values["Compactness2"] = (36.0 * np.pi) * (volume**2.0) / (area**3.0)
        values["SphericalDisproportion"] = area / (36 * np.pi * volume**2) ** (1.0 / 3.0)
    if "VoxelVolume" in wanted:
        z, y, x = spacing
        values["VoxelVolume"] = np.count_nonzero(roi) * (z * x * y)
    if wanted & _DIAMETERS:
        slice_, column, row, overall = _native.mesh_diameters(
            _native.edge_vertices(padded), spacing
        )
        values["Maximum3DDiameter"] = overall
        values["Maximum2DDiameterSlice"] = slice_
        values["Maximum2DDiameterColumn"] = column
        values["Maximum2DDiameterRow"] = row
    if wanted & _AXES:
        least, minor, major = principal_moments(roi, spacing)
        with np.errstate(divide="ignore", invalid="ignore"):
            values["MajorAxisLength"] = axis_length(major)
            values["MinorAxisLength"] = axis_length(minor)
            values["LeastAxisLength"] = axis_length(least)
            values["Elongation"] = axis_ratio(minor, major)
            values["Flatness"] = axis_ratio(least, major)
    return {f.name: float(values[f.name]) for f in FEATURES if f.name in wanted}


def principal_moments(roi: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Eigenvalues (mm^2, ascending) of the covariance of the ROI voxel centres.

    ``roi`` is a bool array (any number of axes), ``spacing`` its voxel size
    in mm per axis. The covariance is divided by the voxel count, and
    eigenvalues in (-1e-10, 0), rounding errors of flat ROIs, are set to 0;
    both as PyRadiomics does.
    """
    # Raw moments of the voxel indices from the ROI's 1D and 2D projections, in
    # exact integer arithmetic: no (n_voxels, ndim) coordinate array, and the
    # centred moments n*S_ab - S_a*S_b carry no rounding (a flat axis gives 0).
    ndim = roi.ndim
    counts = roi.astype(np.int64)
    n = int(counts.sum())
    index = [np.arange(size, dtype=np.int64) for size in roi.shape]
    covariance = np.empty((ndim, ndim))
    for a in range(ndim):
        for b in range(a, ndim):
            others = tuple(k for k in range(ndim) if k not in (a, b))
            projection = counts.sum(axis=others) if others else counts
            if a == b:
                s_a = s_b = int(index[a] @ projection)
                s_ab = int((index[a] * index[a]) @ projection)
            else:
                s_a = int(index[a] @ projection.sum(axis=1))
                s_b = int(projection.sum(axis=0) @ index[b])
                s_ab = int(index[a] @ projection @ index[b])
            centred = (n * s_ab - s_a * s_b) / (n * n)  # Python ints: exact until this division
            covariance[a, b] = covariance[b, a] = centred * spacing[a] * spacing[b]
    eigenvalues = np.linalg.eigvalsh(covariance)
    eigenvalues[(eigenvalues < 0) & (eigenvalues > -1e-10)] = 0
    return eigenvalues


def axis_length(eigenvalue: float) -> float:
    """``4 sqrt(eigenvalue)`` (mm); NaN for a negative eigenvalue, as PyRadiomics."""
    return np.nan if eigenvalue < 0 else np.sqrt(eigenvalue) * 4


def axis_ratio(small: float, large: float) -> float:
    """``sqrt(small / large)``; NaN for negative eigenvalues or 0 / 0, as PyRadiomics."""
    if small < 0 or large < 0:
        return np.nan
    return np.sqrt(np.float64(small) / np.float64(large))
