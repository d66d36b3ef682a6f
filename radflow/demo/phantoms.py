"""Anatomical phantoms of the demo archive: a body, its organs and a tumour.

A phantom is defined in continuous patient coordinates (mm, DICOM LPS:
+x towards the patient's left, +y posterior, +z head), so that CT, PET and MR
of one patient sample the *same* object on different grids. Everything here is
pure numpy and deterministic; the scanner models (blur, noise, batch effects)
live in :mod:`radflow.demo.scanners` and :mod:`radflow.demo.imaging`, the file
writers in :mod:`radflow.demo.archive`.

The tumour is a star-shaped solid whose radius in direction ``u`` is
``R(u) = R0 * (1 + sum_k a_k P_lk(u . d_k))`` (rotated zonal spherical
harmonics of degree 2-4: a lobulated margin), with a necrotic core of the same
shape scaled by ``f**(1/3)`` (so the necrotic volume is exactly ``f`` times the
tumour volume), and a texture that is a stationary Gaussian random field with
Gaussian covariance of length ``l`` mm, drawn by random Fourier features
(Rahimi & Recht 2007): continuous, so every grid samples the same texture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

#: Number of random Fourier features of the tumour texture field.
TEXTURE_WAVES = 64
#: Directions of the quadrature that integrates the tumour volume.
_VOLUME_DIRECTIONS = 4_000


class Tissue(IntEnum):
    """Tissue classes of a rendered phantom (values of :func:`render_tissues`)."""

    AIR = 0
    FAT = 1
    SOFT = 2
    LUNG_R = 3
    LUNG_L = 4
    BONE = 5
    CANAL = 6
    PAROTID_R = 7
    PAROTID_L = 8
    TUMOUR = 9
    NECROSIS = 10


#: The organ ROI delineated beside the GTV, per anatomy.
ORGAN_ROI = {"neck": ("Parotid_L", Tissue.PAROTID_L), "thorax": ("Lung_R", Tissue.LUNG_R)}


@dataclass(frozen=True)
class Grid:
    """An axis-aligned voxel grid (identity direction) in patient coordinates.

    Attributes
    ----------
    shape_zyx : tuple of int
        Voxels along z, y, x.
    spacing_zyx : tuple of float
        Voxel size in mm.
    origin_zyx : tuple of float
        Centre of voxel (0, 0, 0) in mm (DICOM ImagePositionPatient reversed).
    """

    shape_zyx: tuple[int, int, int]
    spacing_zyx: tuple[float, float, float]
    origin_zyx: tuple[float, float, float]

    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Voxel-centre coordinates in mm along z, y and x (three 1-D arrays)."""
        return tuple(
            o + s * np.arange(n)
            for n, s, o in zip(self.shape_zyx, self.spacing_zyx, self.origin_zyx)
        )

    @staticmethod
    def centred_on(
        centre_zyx: Sequence[float], shape_zyx: Sequence[int], spacing_zyx: Sequence[float]
    ) -> Grid:
        """The grid of ``shape_zyx`` and ``spacing_zyx`` whose centre is ``centre_zyx``."""
        origin = tuple(
            float(c - s * (n - 1) / 2) for c, n, s in zip(centre_zyx, shape_zyx, spacing_zyx)
        )
        return Grid(tuple(int(n) for n in shape_zyx), tuple(float(s) for s in spacing_zyx), origin)


def _legendre(degree: int, t: np.ndarray) -> np.ndarray:
    return np.polynomial.legendre.legval(t, np.eye(degree + 1)[degree])


def _fibonacci_sphere(n: int) -> np.ndarray:
    """``n`` nearly uniform unit vectors (golden-angle spiral), shape (n, 3)."""
    i = np.arange(n) + 0.5
    z = 1.0 - 2.0 * i / n
    r = np.sqrt(1.0 - z * z)
    phi = np.pi * (1.0 + 5**0.5) * i
    return np.stack([z, r * np.sin(phi), r * np.cos(phi)], axis=1)


@dataclass(frozen=True, eq=False)
class Tumour:
    """A lobulated tumour with a necrotic core and a continuous texture.

    Attributes
    ----------
    centre_zyx : tuple of float
        Centre in mm, patient coordinates.
    radius_mm : float
        Mean radius ``R0`` before lobulation.
    lobe_axes_zyx : ndarray, shape (k, 3)
        Unit axes ``d_k`` of the zonal harmonics.
    lobe_degrees : tuple of int
        Degrees ``l_k`` (2 to 4).
    lobe_amplitudes : tuple of float
        Amplitudes ``a_k``; ``sum |a_k| < 0.5`` keeps the radius positive.
    necrosis_fraction : float
        Necrotic volume / tumour volume, in [0, 1).
    texture_waves_zyx : ndarray, shape (TEXTURE_WAVES, 3)
        Wave vectors of the texture field in rad/mm.
    texture_phases : ndarray, shape (TEXTURE_WAVES,)
    """

    centre_zyx: tuple[float, float, float]
    radius_mm: float
    lobe_axes_zyx: np.ndarray
    lobe_degrees: tuple[int, ...]
    lobe_amplitudes: tuple[float, ...]
    necrosis_fraction: float
    texture_waves_zyx: np.ndarray
    texture_phases: np.ndarray

    @classmethod
    def draw(
        cls,
        rng: np.random.Generator,
        *,
        centre_zyx: Sequence[float],
        radius_mm: float,
        lobulation: float,
        necrosis_fraction: float,
        texture_length_mm: float,
    ) -> Tumour:
        """Draw the shape and texture of a tumour.

        ``lobulation`` in [0, 0.45] is the sum of the harmonic amplitudes;
        ``texture_length_mm`` the correlation length of the texture.
        """
        k = 5
        axes = rng.normal(size=(k, 3))
        axes /= np.linalg.norm(axes, axis=1, keepdims=True)
        degrees = tuple(int(d) for d in rng.integers(2, 5, size=k))
        weights = rng.dirichlet(np.ones(k)) * rng.choice([-1.0, 1.0], size=k)
        waves = rng.normal(scale=1.0 / texture_length_mm, size=(TEXTURE_WAVES, 3))
        phases = rng.uniform(0.0, 2.0 * np.pi, size=TEXTURE_WAVES)
        return cls(
            centre_zyx=tuple(float(c) for c in centre_zyx),
            radius_mm=float(radius_mm),
            lobe_axes_zyx=axes,
            lobe_degrees=degrees,
            lobe_amplitudes=tuple(float(a) for a in lobulation * weights),
            necrosis_fraction=float(necrosis_fraction),
            texture_waves_zyx=waves,
            texture_phases=phases,
        )

    def radius(self, u_zyx: np.ndarray) -> np.ndarray:
        """Surface radius in mm along unit vectors ``u_zyx`` (shape (..., 3))."""
        shape = np.ones(u_zyx.shape[:-1])
        for axis, degree, amp in zip(self.lobe_axes_zyx, self.lobe_degrees, self.lobe_amplitudes):
            shape += amp * _legendre(degree, u_zyx @ axis)
        return self.radius_mm * shape

    @property
    def max_radius_mm(self) -> float:
        return self.radius_mm * (1.0 + sum(abs(a) for a in self.lobe_amplitudes))

    def volume_mm3(self) -> float:
        """Exact-shape volume ``(1/3) * integral of R(u)^3 over the sphere``, in mm^3.

        Integrated by quadrature over the directions, independently of any
        voxel grid: the ground truth that voxel masks are compared with.
        """
        u = _fibonacci_sphere(_VOLUME_DIRECTIONS)
        return float(4.0 * np.pi * np.mean(self.radius(u) ** 3) / 3.0)

    def texture(self, points_zyx: np.ndarray) -> np.ndarray:
        """Texture field (zero mean, unit variance) at points (n, 3) in mm."""
        rel = points_zyx - np.asarray(self.centre_zyx)
        arg = rel @ self.texture_waves_zyx.T + self.texture_phases
        return np.sqrt(2.0 / TEXTURE_WAVES) * np.cos(arg).sum(axis=1)

    def relative_radius(self, grid: Grid) -> tuple[tuple[slice, ...], np.ndarray]:
        """``|p - c| / R(u)`` on the part of ``grid`` around the tumour.

        Returns the (z, y, x) slices of that box in ``grid`` and the ratio
        there: < 1 inside the tumour, < ``necrosis_fraction**(1/3)`` in the core.
        """
        box = []
        for ax, c, s in zip(grid.axes(), self.centre_zyx, grid.spacing_zyx):
            lo = np.searchsorted(ax, c - self.max_radius_mm - s)
            hi = np.searchsorted(ax, c + self.max_radius_mm + s)
            box.append(slice(int(lo), int(hi)))
        z, y, x = (ax[b] - c for ax, b, c in zip(grid.axes(), box, self.centre_zyx))
        rel = np.stack(
            np.broadcast_arrays(z[:, None, None], y[None, :, None], x[None, None, :]), -1
        )
        dist = np.linalg.norm(rel, axis=-1)
        u = rel / np.maximum(dist, 1e-9)[..., None]
        return tuple(box), dist / self.radius(u)


@dataclass(frozen=True, eq=False)
class Phantom:
    """One patient's body: anatomy type, size, position and tumour.

    Attributes
    ----------
    anatomy : str
        ``"neck"`` (airway, spine, parotids) or ``"thorax"`` (lungs, spine).
    centre_zyx : tuple of float
        Body centre (on the table axis) in mm.
    scale : float
        Body size relative to the standard phantom.
    tumour : Tumour
    """

    anatomy: str
    centre_zyx: tuple[float, float, float]
    scale: float
    tumour: Tumour

    @property
    def organ(self) -> str:
        """Name of the organ ROI delineated beside the GTV."""
        return ORGAN_ROI[self.anatomy][0]


def _ellipse(y, x, cy, cx, ay, ax):
    return ((y - cy) / ay) ** 2 + ((x - cx) / ax) ** 2 <= 1.0


def _ellipsoid(z, y, x, c, a):
    return ((z - c[0]) / a[0]) ** 2 + ((y - c[1]) / a[1]) ** 2 + ((x - c[2]) / a[2]) ** 2 <= 1.0


def render_tissues(phantom: Phantom, grid: Grid) -> np.ndarray:
    """Tissue class of every voxel centre of ``grid``.

    Parameters
    ----------
    phantom : Phantom
    grid : Grid

    Returns
    -------
    ndarray of uint8, shape ``grid.shape_zyx``
        :class:`Tissue` values, (z, y, x) order.
    """
    zc, yc, xc = phantom.centre_zyx
    s = phantom.scale
    z, y, x = grid.axes()
    z3, y2, x2 = z[:, None, None], y[:, None], x[None, :]
    out = np.zeros(grid.shape_zyx, dtype=np.uint8)

    def paint(mask, tissue):
        out[np.broadcast_to(mask, out.shape)] = tissue

    if phantom.anatomy == "neck":
        body_a, fat_mm = (55 * s, 64 * s), 7.0
        spine_y, airway = 20 * s, (-22 * s, 9 * s)
    else:
        body_a, fat_mm = (60 * s, 80 * s), 10.0
        spine_y, airway = 40 * s, None
    paint(_ellipse(y2, x2, yc, xc, *body_a), Tissue.FAT)
    paint(_ellipse(y2, x2, yc, xc, body_a[0] - fat_mm, body_a[1] - fat_mm), Tissue.SOFT)
    if phantom.anatomy == "thorax":
        for side, tissue in ((-1, Tissue.LUNG_R), (1, Tissue.LUNG_L)):
            centre = (zc - 20, yc - 3 * s, xc + side * 37 * s)
            paint(_ellipsoid(z3, y2[None], x2[None], centre, (115, 42 * s, 27 * s)), tissue)
    else:
        paint(_ellipse(y2, x2, yc + airway[0], xc, airway[1], airway[1] * 1.2), Tissue.AIR)
        for side, tissue in ((-1, Tissue.PAROTID_R), (1, Tissue.PAROTID_L)):
            centre = (zc + 55, yc + 8 * s, xc + side * 38 * s)
            paint(_ellipsoid(z3, y2[None], x2[None], centre, (22, 15 * s, 10 * s)), tissue)
    # Ribs (thorax: bands of the chest wall every 25 mm along z, not anteriorly)
    # and mandible (neck: an anterior arch in the upper 35 mm).
    wall = ((y2 - yc) / body_a[0]) ** 2 + ((x2 - xc) / body_a[1]) ** 2
    if phantom.anatomy == "thorax":
        band = (wall > 0.83**2) & (wall < 0.89**2) & (y2 > yc - 0.55 * body_a[0])
        rib_z = np.cos(2.0 * np.pi * (z3 - zc) / 25.0) > 0.5
        paint(band[None] & rib_z, Tissue.BONE)
        paint(_ellipse(y2, x2, yc - body_a[0] + fat_mm + 6.0, xc, 5.0, 14.0 * s), Tissue.BONE)
    else:
        arch = (wall > 0.70**2) & (wall < 0.80**2) & (y2 < yc - 0.15 * body_a[0])
        paint(arch[None] & ((z3 > zc + 25.0) & (z3 < zc + 60.0)), Tissue.BONE)
    # Vertebra: body, a ring of bone around the canal.
    paint(_ellipse(y2, x2, yc + spine_y, xc, 12 * s, 14 * s), Tissue.BONE)
    canal_y = yc + spine_y + 19 * s
    paint(_ellipse(y2, x2, canal_y, xc, 10 * s, 10 * s), Tissue.BONE)
    paint(_ellipse(y2, x2, canal_y, xc, 6 * s, 6 * s), Tissue.CANAL)

    box, ratio = phantom.tumour.relative_radius(grid)
    region = out[box]
    region[ratio < 1.0] = Tissue.TUMOUR
    region[ratio < phantom.tumour.necrosis_fraction ** (1.0 / 3.0)] = Tissue.NECROSIS
    return out


def render_values(
    phantom: Phantom, grid: Grid, tissues: np.ndarray, values: dict, texture_amplitude: float
) -> np.ndarray:
    """Noise-free intensity of every voxel centre, from per-tissue values.

    Parameters
    ----------
    phantom : Phantom
    grid : Grid
    tissues : ndarray of uint8
        :func:`render_tissues` of the same phantom and grid.
    values : dict of Tissue -> float
        Intensity of each tissue class (all classes must be present).
    texture_amplitude : float
        Standard deviation of the texture added to viable tumour voxels, in
        the unit of ``values``.

    Returns
    -------
    ndarray of float32, shape ``grid.shape_zyx``
    """
    lut = np.array([values[t] for t in Tissue], dtype=np.float64)
    image = lut[tissues]
    viable = np.nonzero(tissues == Tissue.TUMOUR)
    if viable[0].size:
        points = np.stack(
            [o + s * i for o, s, i in zip(grid.origin_zyx, grid.spacing_zyx, viable)], axis=1
        )
        image[viable] += texture_amplitude * phantom.tumour.texture(points)
    return image.astype(np.float32)
