r"""Local binary pattern images, as PyRadiomics' ``getLBP2DImage`` and ``getLBP3DImage``.

LBP 2D: scikit-image's ``local_binary_pattern`` (``P`` samples on a circle
of radius ``R`` voxels, bilinear interpolation, zero outside the image)
applied to every slice across one (z, y, x) axis, slices taken from
``array.swapaxes(0, axis)`` exactly as PyRadiomics takes them (the pattern
codes depend on the slice's orientation). As in PyRadiomics the codes are
stored in the *input's* pixel type, so the ``"var"`` method's float values
are truncated (and may overflow) for integer images.

LBP 3D (Banerjee et al. 2013): for each ROI voxel, the image is sampled by
cubic B-spline interpolation (``scipy.ndimage.map_coordinates``, order 3,
zero outside) at the vertices :math:`v_k` of an icosphere of radius ``R``
(voxel units, the vertex's first coordinate added to the z index, as
PyRadiomics does); the samples are binarised against the centre voxel,
:math:`s_k = [f(v_k) \ge f_0]`, and expanded in spherical harmonics,
:math:`c_{nm} = \sum_k s_k Y_n^m(v_k)`. Image ``m<n+1>`` holds the norm of
degree ``n``'s part, :math:`\|\sum_m c_{nm} Y_n^m(v_k)\|_k`, for
:math:`n = 0 .. levels-1`; image ``k`` the kurtosis (Fisher, biased) of the
raw samples :math:`f(v_k)`. PyRadiomics passes the vertices' polar angle as
SciPy's azimuth and their azimuth as the polar angle; that is kept, so the
numbers are PyRadiomics'. Values are defined on ROI voxels only; other
voxels are 0 (PyRadiomics leaves them uninitialised).

Cropping: LBP 2D reads ``ceil(R)`` voxels around each voxel in-plane; LBP
3D reads ``ceil(R) + 2`` voxels, but the B-spline prefilter is recursive
(pole :math:`\sqrt3 - 2`), so :func:`lbp3d_margin_voxels` adds
:data:`SPLINE_MARGIN_VOXELS` to bring the crop's effect below 1e-9 of the
intensity range.

References
----------
Ojala T, Pietikainen M, Maenpaa T. Multiresolution gray-scale and rotation
invariant texture classification with local binary patterns. IEEE TPAMI
2002;24(7):971-987. doi:10.1109/TPAMI.2002.1017623

Banerjee J, Moelker A, Niessen WJ, van Walsum T. 3D LBP-based rotationally
invariant region description. ACCV 2012 Workshops, LNCS 7728:26-37.
doi:10.1007/978-3-642-37410-4_3
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import SimpleITK as sitk

from radflow._lazy import load
from radflow.errors import InputError
from radflow.filters._checks import check_image, check_same_grid, choice, integer, positive

# Deferred: scipy.stats takes 0.25 s, scipy.special and scipy.ndimage 0.1 s and scikit-image's
# LBP 30 ms to import, and none is needed unless an LBP image type is asked for.
stats = load("scipy.stats")
special = load("scipy.special")
ndimage = load("scipy.ndimage")
skimage_feature = load("skimage.feature")

__all__ = [
    "LBP2D_METHODS",
    "SPLINE_MARGIN_VOXELS",
    "icosphere_vertices",
    "lbp2d_image",
    "lbp2d_margin_voxels",
    "lbp3d_images",
    "lbp3d_margin_voxels",
]

#: ``lbp2DMethod`` values PyRadiomics documents (scikit-image's methods).
LBP2D_METHODS = ("default", "ror", "uniform", "var")

#: Extra voxels for the recursive B-spline prefilter: 0.268 ** 16 < 1e-9.
SPLINE_MARGIN_VOXELS = 16


def lbp2d_image(
    image: sitk.Image,
    *,
    radius: float = 1.0,
    samples: int = 8,
    method: str = "uniform",
    axis: int = 0,
) -> sitk.Image:
    """2D LBP codes of every slice across `axis` (PyRadiomics ``lbp-2D``).

    Parameters
    ----------
    image : SimpleITK.Image
        3D scalar image.
    radius : float
        Radius of the sampling circle, voxels (``lbp2DRadius``), > 0.
    samples : int
        Points on the circle (``lbp2DSamples``), >= 1.
    method : {"default", "ror", "uniform", "var"}
        scikit-image LBP method (``lbp2DMethod``).
    axis : {0, 1, 2}
        (z, y, x) axis across which slices are taken (``force2Ddimension``); 0 = axial.

    Returns
    -------
    SimpleITK.Image
        Pattern codes in the pixel type of `image`, on its grid.
    """
    check_image(image)
    radius = positive(radius, "radius")
    samples = integer(samples, "samples", 1)
    method = choice(method, "method", LBP2D_METHODS)
    axis = integer(axis, "axis", 0, 2)
    array = sitk.GetArrayFromImage(image)
    slices = array.swapaxes(0, axis)  # a view: writing a slice writes `array`
    for index in range(slices.shape[0]):
        slices[index, ...] = skimage_feature.local_binary_pattern(
            slices[index, ...], P=samples, R=radius, method=method
        )
    out = sitk.GetImageFromArray(array)
    out.CopyInformation(image)
    return out


def lbp2d_margin_voxels(radius: float = 1.0, axis: int = 0) -> tuple[int, int, int]:
    """Voxels (z, y, x) a crop needs beyond the ROI: ``ceil(radius)`` in-plane, 0 across `axis`."""
    reach = math.ceil(positive(radius, "radius"))
    axis = integer(axis, "axis", 0, 2)
    return tuple(0 if a == axis else reach for a in range(3))


def icosphere_vertices(subdivision: int = 1, radius: float = 1.0) -> np.ndarray:
    """Vertices of trimesh's ``icosphere(subdivision, radius)``, shape (n, 3).

    The icosahedron with vertices at the cyclic permutations of
    :math:`(0, \\pm 1, \\pm\\varphi)` on the unit sphere; each subdivision
    adds the midpoint of every edge (each triangle split in four) and pushes
    every vertex out to `radius`. 12, 42, 162 ... vertices. Their order is
    not trimesh's (the LBP 3D values do not depend on it).
    """
    subdivision = integer(subdivision, "subdivision", 0)
    radius = float(positive(radius, "radius"))
    t = (1.0 + 5.0**0.5) / 2.0
    vertices = np.array(
        [[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t],
         [0, -1, -t], [0, 1, -t], [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]]
    ) / np.sqrt(2.0 + t)  # fmt: skip
    faces = np.array(
        [[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4],
         [11, 10, 2], [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8],
         [3, 8, 9], [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]]
    )  # fmt: skip
    for step in range(max(subdivision, 1)):
        if step < subdivision:
            edges = np.sort(
                np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1
            )
            unique, inverse = np.unique(edges, axis=0, return_inverse=True)
            middle = inverse.reshape(3, -1).T + len(vertices)  # per face: edges 01, 12, 20
            faces = np.concatenate(
                [
                    np.column_stack([faces[:, 0], middle[:, 0], middle[:, 2]]),
                    np.column_stack([middle[:, 0], faces[:, 1], middle[:, 1]]),
                    np.column_stack([middle[:, 2], middle[:, 1], faces[:, 2]]),
                    middle,
                ]
            )
            vertices = np.vstack([vertices, vertices[unique].mean(axis=1)])
        # trimesh's projection, kept operation for operation
        length = np.sqrt(np.dot(vertices**2, [1, 1, 1]))
        vertices = vertices + (vertices / length[:, None]) * (radius - length)[:, None]
    return vertices


def _sph_harm_y(n, m, polar, azimuth):
    """``scipy.special.sph_harm_y``; SciPy < 1.15 has the same function as ``sph_harm``."""
    if hasattr(special, "sph_harm_y"):
        return special.sph_harm_y(n, m, polar, azimuth)
    return special.sph_harm(m, n, azimuth, polar)  # (m, n, azimuth, polar) order


def _harmonics(vertices: np.ndarray, radius: float, levels: int) -> tuple[np.ndarray, np.ndarray]:
    """PyRadiomics' spherical harmonics table Y (n_vertices, n_terms) and each column's degree."""
    polar = np.arccos(np.clip(vertices[:, 2] / radius, -1.0, 1.0))
    azimuth = np.arctan2(vertices[:, 1], vertices[:, 0])
    # PyRadiomics calls the old sph_harm(m, n, polar, azimuth), whose
    # arguments are (azimuth, polar): the angles are swapped, on purpose here.
    degrees = [n for n in range(levels) for _ in range(-n, n + 1)]
    columns = [_sph_harm_y(n, m, azimuth, polar) for n in range(levels) for m in range(-n, n + 1)]
    return np.column_stack(columns), np.array(degrees)


def lbp3d_images(
    image: sitk.Image,
    mask: sitk.Image,
    *,
    label: int = 1,
    levels: int = 2,
    icosphere_radius: float = 1.0,
    icosphere_subdivision: int = 1,
) -> Iterator[tuple[str, sitk.Image]]:
    """``(name, image)``: ``lbp-3D-m1`` ... ``lbp-3D-m<levels>``, then ``lbp-3D-k``.

    Parameters
    ----------
    image : SimpleITK.Image
        3D scalar image.
    mask : SimpleITK.Image
        Label map on the grid of `image`; the ROI is ``mask == label``.
    label : int
        ROI label, > 0.
    levels : int
        Spherical harmonic degrees used, >= 1 (``lbp3DLevels``).
    icosphere_radius : float
        Sampling radius, voxels (``lbp3DIcosphereRadius``), > 0.
    icosphere_subdivision : int
        Icosphere subdivisions, >= 0 (``lbp3DIcosphereSubdivision``).

    Yields
    ------
    name : str
    image : SimpleITK.Image
        float64 on the grid of `image`; 0 outside the ROI.
    """
    check_image(image)
    check_same_grid(image, mask)
    label = integer(label, "label", 1)
    levels = integer(levels, "levels", 1)
    radius = float(positive(icosphere_radius, "icosphere_radius"))
    vertices = icosphere_vertices(
        integer(icosphere_subdivision, "icosphere_subdivision", 0), radius
    )
    roi = np.nonzero(sitk.GetArrayViewFromImage(mask) == label)
    if roi[0].size == 0:
        raise InputError("mask", f"no voxel has label {label}")
    return _lbp3d_images(image, roi, levels, radius, vertices)


def _lbp3d_images(image, roi, levels, radius, vertices):
    harmonics, degrees = _harmonics(vertices, radius, levels)
    array = sitk.GetArrayFromImage(image)
    # What map_coordinates(array, ..., order=3) does, with the prefilter run once.
    coefficients = ndimage.spline_filter(array, 3, output=np.float64, mode="constant")
    points = np.stack(roi).astype(np.float64)  # (3, n_roi)
    samples = np.empty((roi[0].size, len(vertices)), dtype=array.dtype)
    for k, vertex in enumerate(vertices):
        samples[:, k] = ndimage.map_coordinates(
            coefficients,
            points + vertex[:, None],
            output=array.dtype,
            order=3,
            mode="constant",
            cval=0.0,
            prefilter=False,
        )
    result = np.zeros(array.shape, dtype=np.float64)

    def as_image() -> sitk.Image:
        out = sitk.GetImageFromArray(result)
        out.CopyInformation(image)
        return out

    signs = (samples >= array[roi][:, None]).astype(np.float64)
    coefficients_nm = signs @ harmonics  # (n_roi, n_terms)
    for n in range(levels):
        part = (
            coefficients_nm[:, degrees == n] @ harmonics[:, degrees == n].T
        )  # (n_roi, n_vertices)
        result[roi] = np.real(np.sqrt(np.sum(part**2, axis=1)))
        yield f"lbp-3D-m{n + 1}", as_image()
    result[roi] = np.real(stats.kurtosis(samples, axis=1))
    yield "lbp-3D-k", as_image()


def lbp3d_margin_voxels(icosphere_radius: float = 1.0) -> tuple[int, int, int]:
    """Voxels (z, y, x) a crop needs beyond the ROI for LBP 3D (see the module docstring)."""
    reach = math.ceil(positive(icosphere_radius, "icosphere_radius")) + 2 + SPLINE_MARGIN_VOXELS
    return (reach, reach, reach)
