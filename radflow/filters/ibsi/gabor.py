r"""IBSI 2 Gabor filter (2D, in-plane), with rotation invariance and orthogonal planes.

In a plane with coordinates :math:`(x, y)` in mm (:math:`x` along the last
array axis, :math:`y` along the one before, both increasing with the index),
the kernel at orientation :math:`\theta` is

.. math::
    g(x, y) = \exp\left(-\frac{\tilde x^2 + \gamma^2 \tilde y^2}{2\sigma^2}\right)
              \exp\left(i \frac{2\pi \tilde x}{\lambda}\right),\quad
    \tilde x = x\cos\theta + y\sin\theta,\ \tilde y = -x\sin\theta + y\cos\theta

(unnormalised: :math:`g(0, 0) = 1`), sampled on the voxel centres within
:math:`\lfloor 4 \max(\sigma, \sigma/\gamma) / \Delta + 0.5 \rfloor` voxels of
the centre along each in-plane axis of spacing :math:`\Delta`. The response is
the modulus (or the real part) of the complex convolution. Rotation
invariance pools over the orientations :math:`k\,\Delta\theta` in
:math:`[0, 2\pi)`; orientations :math:`\pi` apart give the same modulus and
real part, so each is filtered once and counted twice. With
``orthogonal_planes=True`` the filter is applied in the axial (y, x), coronal
(z, x) and sagittal (z, y) planes and the three responses are averaged (the
IBSI 2 3D variant).

The convolution is computed by FFT, each slice extended under the boundary
condition by the kernel's half-width (the image's spectrum is computed once
per plane and reused for every orientation).
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

from radflow._lazy import load
from radflow.errors import SettingsError
from radflow.filters._checks import boolean, choice, positive
from radflow.filters.ibsi.boundary import (
    check_boundary,
    check_spacing,
    check_volume,
    document,
    pad,
)

fft = load("scipy.fft")  # on first use: PyRadiomics-mode extraction never needs it

__all__ = ["gabor_filter", "gabor_kernel"]

#: (row axis, column axis) of the axial, coronal and sagittal planes of a (z, y, x) array.
_PLANES = ((1, 2), (0, 2), (0, 1))


def gabor_kernel(
    *,
    spacing_yx,
    sigma_mm: float,
    wavelength_mm: float,
    gamma: float,
    theta_rad: float,
    truncate: float = 4.0,
) -> np.ndarray:
    """Complex 2D Gabor kernel sampled on a (rows, columns) grid of spacing `spacing_yx` (mm).

    Examples
    --------
    >>> k = gabor_kernel(spacing_yx=(1, 1), sigma_mm=2, wavelength_mm=4, gamma=1, theta_rad=0)
    >>> k.shape, complex(k[8, 8]), bool(np.isclose(k[8, 9], np.exp(-1 / 8) * 1j))
    ((17, 17), (1+0j), True)
    """
    extent_mm = truncate * max(sigma_mm, sigma_mm / gamma)
    rows, cols = (
        np.arange(-r, r + 1) * s
        for r, s in ((math.floor(extent_mm / s + 0.5), s) for s in spacing_yx)
    )
    y, x = np.meshgrid(rows, cols, indexing="ij")
    x_rot = x * math.cos(theta_rad) + y * math.sin(theta_rad)
    y_rot = -x * math.sin(theta_rad) + y * math.cos(theta_rad)
    envelope = np.exp(-(x_rot**2 + gamma**2 * y_rot**2) / (2.0 * sigma_mm**2))
    return envelope * np.exp(2j * math.pi * x_rot / wavelength_mm)


@document
def gabor_filter(
    image,
    *,
    spacing_zyx,
    sigma_mm: float,
    wavelength_mm: float,
    gamma: float,
    theta_rad: float = 0.0,
    rotation_invariant: bool = False,
    theta_step_rad: float | None = None,
    pooling: str = "average",
    response: str = "modulus",
    orthogonal_planes: bool = False,
    boundary: str = "mirror",
) -> np.ndarray:
    """IBSI Gabor response map.

    Parameters
    ----------
    %(image)s
    %(spacing)s
    sigma_mm : float
        Standard deviation of the Gaussian envelope along the wave, in mm.
    wavelength_mm : float
        Wavelength :math:`\\lambda` of the complex sinusoid, in mm.
    gamma : float
        Spatial aspect ratio (> 0): the envelope's standard deviation across
        the wave is ``sigma_mm / gamma``.
    theta_rad : float, optional
        Orientation in radians of a single filter (ignored when `rotation_invariant`).
    rotation_invariant : bool, optional
        Pool the responses of the orientations ``k * theta_step_rad`` in [0, 2 pi).
    theta_step_rad : float, optional
        Orientation step in radians (required when `rotation_invariant`).
    pooling : {"average", "max"}, optional
        Pooling over orientations.
    response : {"modulus", "real"}, optional
        Modulus (IBSI) or real part of the complex response.
    orthogonal_planes : bool, optional
        Average the responses in the axial, coronal and sagittal planes
        (else the axial plane only, slice by slice).
    %(boundary)s

    %(returns)s

    %(raises_spacing)s
    SettingsError
        A non-positive scale, an unknown option, rotation invariance without a
        step.

    Examples
    --------
    The modulus response to an impulse is the Gaussian envelope, 1 at the centre:

    >>> impulse = np.zeros((1, 9, 9)); impulse[0, 4, 4] = 1.0
    >>> out = gabor_filter(
    ...     impulse, spacing_zyx=(1, 1, 1), sigma_mm=2, wavelength_mm=4, gamma=1,
    ...     boundary="constant",
    ... )
    >>> round(float(out[0, 4, 4]), 6), round(float(out[0, 4, 5]), 6)
    (1.0, 0.882497)
    """
    values = check_volume(image)
    spacing = check_spacing(spacing_zyx)
    scales = {
        name: positive(v, name)
        for name, v in (("sigma_mm", sigma_mm), ("wavelength_mm", wavelength_mm), ("gamma", gamma))
    }
    boundary = check_boundary(boundary)
    pooling = choice(pooling, "pooling", ("average", "max"))
    response = choice(response, "response", ("modulus", "real"))
    if boolean(rotation_invariant, "rotation_invariant"):
        if theta_step_rad is None:
            raise SettingsError("theta_step_rad: required when rotation_invariant is True")
        orientations = _orientations(positive(theta_step_rad, "theta_step_rad"))
    else:
        if (
            isinstance(theta_rad, bool)
            or not isinstance(theta_rad, Real)
            or not math.isfinite(theta_rad)
        ):
            raise SettingsError(
                f"theta_rad: {theta_rad!r} is not allowed; expected a finite angle in radians"
            )
        orientations = {float(theta_rad): 1}
    planes = _PLANES if boolean(orthogonal_planes, "orthogonal_planes") else _PLANES[:1]
    out = np.zeros_like(values)
    for row_axis, col_axis in planes:
        plane = np.moveaxis(values, (row_axis, col_axis), (1, 2))
        spacing_yx = (spacing[row_axis], spacing[col_axis])
        kernels = {
            theta: gabor_kernel(spacing_yx=spacing_yx, theta_rad=theta, **scales)
            for theta in orientations
        }
        half = tuple(max(k.shape[i] // 2 for k in kernels.values()) for i in (0, 1))
        spectrum, fft_shape = _padded_spectrum(plane, half, boundary)
        crop = (
            slice(None),
            slice(half[0], half[0] + plane.shape[1]),
            slice(half[1], half[1] + plane.shape[2]),
        )
        pooled, total = None, 0
        for theta, count in orientations.items():
            filtered = fft.ifft2(spectrum * _kernel_spectrum(kernels[theta], fft_shape))[crop]
            filtered = np.abs(filtered) if response == "modulus" else filtered.real
            if pooling == "max":
                pooled = filtered if pooled is None else np.maximum(pooled, filtered)
            else:
                pooled = count * filtered if pooled is None else pooled + count * filtered
            total += count
        if pooling == "average":
            pooled /= total
        out += np.moveaxis(pooled, (1, 2), (row_axis, col_axis))
    return out / len(planes)


def _orientations(step: float) -> dict[float, int]:
    """Orientations k * step in [0, 2 pi), merged modulo pi, with their multiplicities."""
    merged: dict[float, int] = {}
    for k in range(math.ceil(2.0 * math.pi / step - 1e-9)):
        theta = k * step
        # theta and theta + pi: the kernel's complex conjugate, hence the same modulus and real
        # part.
        key = round(math.fmod(theta, math.pi), 12)
        merged[key] = merged.get(key, 0) + 1
    return merged


def _padded_spectrum(
    plane: np.ndarray, half: tuple[int, int], boundary: str
) -> tuple[np.ndarray, tuple[int, int]]:
    """2D FFT of each slice of `plane` (n, rows, columns) extended by at least `half` voxels per
    side.

    A circular convolution of the extended slice with a kernel of half-width
    `half` equals the linear one on the original voxels, which lie at least
    `half` from the ends; the far side is extended further to a fast FFT length.
    """
    fft_shape = tuple(fft.next_fast_len(n + 2 * h) for n, h in zip(plane.shape[1:], half))
    widths = ((0, 0),) + tuple(
        (h, size - n - h) for n, h, size in zip(plane.shape[1:], half, fft_shape)
    )
    return fft.fft2(pad(plane, widths, boundary)), fft_shape


def _kernel_spectrum(kernel: np.ndarray, fft_shape: tuple[int, int]) -> np.ndarray:
    """2D FFT of `kernel` placed with its centre tap at index (0, 0) of an array of `fft_shape`."""
    placed = np.zeros(fft_shape, dtype=kernel.dtype)
    half_r, half_c = kernel.shape[0] // 2, kernel.shape[1] // 2
    rows = np.arange(-half_r, half_r + 1) % fft_shape[0]
    cols = np.arange(-half_c, half_c + 1) % fft_shape[1]
    placed[np.ix_(rows, cols)] = kernel
    return fft.fft2(placed)
