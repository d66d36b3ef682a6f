"""Validation of filter inputs and parameters, shared by the filter modules.

Each check takes the value and the name to put in the message: the keyword
argument (``sigmas_mm``) when a filter function is called directly, or the
PyRadiomics key (``imageType 'LoG' setting 'sigma'``) when the dispatcher in
:mod:`radflow.filters.image_types` reads a parameter file.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import SimpleITK as sitk

from radflow.errors import InputError, SettingsError


def check_image(image, name: str = "image") -> None:
    """A scalar 3D SimpleITK image."""
    if not isinstance(image, sitk.Image):
        raise InputError(name, f"expected a SimpleITK.Image, got {type(image).__name__}")
    if image.GetDimension() != 3:
        raise InputError(name, f"expected a 3D image, got {image.GetDimension()}D")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(name, f"expected a scalar image, got {image.GetNumberOfComponentsPerPixel()} components")


def check_same_grid(image, mask) -> None:
    """`mask` on exactly the voxel grid of `image` (size, spacing, origin, direction)."""
    check_image(mask, "mask")
    if image.GetSize() != mask.GetSize():
        raise InputError("mask", f"size {mask.GetSize()} differs from the image's {image.GetSize()} (x, y, z)")
    for what in ("Spacing", "Origin", "Direction"):
        a, b = getattr(image, f"Get{what}")(), getattr(mask, f"Get{what}")()
        if any(abs(u - v) > 1e-6 * max(1.0, abs(u)) for u, v in zip(a, b)):
            raise InputError("mask", f"{what.lower()} {b} differs from the image's {a}")


def positive(value, name: str) -> float:
    """A finite number > 0 (ints kept as ints: PyRadiomics names images from them)."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value <= 0:
        raise SettingsError(f"{name}: {value!r} is not allowed; expected a finite number > 0")
    return value


def positive_list(values, name: str) -> tuple:
    """A non-empty sequence of finite numbers > 0."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or len(values) == 0:
        raise SettingsError(f"{name}: {values!r} is not allowed; expected a non-empty list of numbers > 0")
    return tuple(positive(v, name) for v in values)


def integer(value, name: str, low: int, high: int | None = None) -> int:
    """An integer in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"in {low}..{high}"
        raise SettingsError(f"{name}: {value!r} is not allowed; expected an integer {bounds}")
    return int(value)


def boolean(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise SettingsError(f"{name}: {value!r} is not allowed; expected true or false")
    return value


def choice(value, name: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise SettingsError(f"{name}: {value!r} is not allowed; expected one of {', '.join(map(repr, choices))}")
    return value


def discrete_wavelet(value, name: str) -> str:
    """A PyWavelets discrete wavelet name."""
    import pywt

    if not isinstance(value, str) or value not in pywt.wavelist(kind="discrete"):
        raise SettingsError(
            f"{name}: {value!r} is not allowed; expected a discrete PyWavelets wavelet "
            "(pywt.wavelist(kind='discrete'), e.g. 'coif1', 'haar', 'db2')"
        )
    return value
