"""Validation of filter inputs and parameters, shared by the filter modules.

Each check takes the value and the name to put in the message, the keyword
argument of the filter function (``sigmas_mm``). Parameter files never reach
these checks: their values arrive already checked, as typed settings
(:mod:`radflow.params.extraction`). The value checks are the rules of
:mod:`radflow._config`, the one validator of radflow, so a keyword argument and
a parameter file key are refused alike (``expected a number > 0``).
"""

from __future__ import annotations

from functools import lru_cache

import SimpleITK as sitk

from radflow._config import Rule, check_value
from radflow._geometry import grid_difference
from radflow.errors import InputError, SettingsError
from radflow.params.schema import WAVELET

# Relative differences allowed between the grids of an image and its mask.
_SAME_GRID = {"spacing": 1e-6, "origin": 1e-6, "direction": 1e-6}


def check_image(image, name: str = "image") -> None:
    """A scalar 3D SimpleITK image."""
    if not isinstance(image, sitk.Image):
        raise InputError(name, f"expected a SimpleITK.Image, got {type(image).__name__}")
    if image.GetDimension() != 3:
        raise InputError(name, f"expected a 3D image, got {image.GetDimension()}D")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(
            name, f"expected a scalar image, got {image.GetNumberOfComponentsPerPixel()} components"
        )


def check_same_grid(image, mask) -> None:
    """`mask` on exactly the voxel grid of `image` (size, spacing, origin, direction)."""
    check_image(mask, "mask")
    found = grid_difference(image, mask, _SAME_GRID, relative=True)
    if found is not None and found.what == "size":  # both 3D: check_image
        raise InputError(
            "mask", f"size {mask.GetSize()} differs from the image's {image.GetSize()} (x, y, z)"
        )
    if found is not None:
        raise InputError(
            "mask", f"{found.what} {found.second} differs from the image's {found.first}"
        )


_POSITIVE = Rule("float", low=0, low_exclusive=True)
_POSITIVE_LIST = Rule("float", sequence=True, min_length=1, low=0, low_exclusive=True)
_BOOLEAN = Rule("bool")


@lru_cache(maxsize=64)
def _rule(kind: str, low=None, high=None, choices=None) -> Rule:
    return Rule(kind, low=low, high=high, choices=choices)


def positive(value, name: str) -> float:
    """A finite number > 0 (ints kept as ints: PyRadiomics names images from them)."""
    return check_value(_POSITIVE, value, name)


def positive_list(values, name: str) -> tuple:
    """A non-empty sequence (list, tuple, 1D array) of finite numbers > 0."""
    if not isinstance(values, (list, tuple, str, bytes)) and hasattr(values, "__len__"):
        values = list(values)
    if isinstance(values, (list, tuple)) and len(values) > 0:
        return check_value(_POSITIVE_LIST, values, name)
    raise SettingsError(
        f"{name}: {values!r} is not allowed; expected a non-empty list of numbers > 0"
    )


def integer(value, name: str, low: int, high: int | None = None) -> int:
    """An integer in [low, high]."""
    return check_value(_rule("int", low, high), value, name)


def boolean(value, name: str) -> bool:
    """True or False (not 0/1, not a string)."""
    return check_value(_BOOLEAN, value, name)


def choice(value, name: str, choices: tuple[str, ...]) -> str:
    """One of `choices`."""
    return check_value(_rule("str", choices=tuple(choices)), value, name)


def discrete_wavelet(value, name: str) -> str:
    """A PyWavelets discrete wavelet name."""
    return check_value(WAVELET, value, name)
