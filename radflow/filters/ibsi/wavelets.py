r"""IBSI 2 undecimated separable wavelets (Haar, Daubechies, Coiflet, ...).

The decomposition is named by one letter per axis in order x, y[, z]:
``"LHL"`` applies the low-pass filter along x and z and the high-pass filter
along y; two letters (``"LH"``) filter each (y, x) slice. The filters are
PyWavelets' decomposition filters (``dec_lo``, ``dec_hi``), convolved; an
even-length filter gets a trailing zero so that it has a centre tap.

Level :math:`j > 1` (*à trous* algorithm): the image is first filtered by the
low-pass filter along every axis at levels :math:`1 \ldots j-1`, then by the
requested decomposition at level :math:`j`; at level :math:`j` each (centred)
filter is dilated by inserting :math:`2^{j-1} - 1` zeros between its taps.
Rotation invariance rotates this whole cascade (24 orientations in 3D, 4 in
2D) and pools the responses, by average as the IBSI 2 manual specifies.

References
----------
Lee GR, Gommers R, Wasilewski F, Wohlfahrt K, O'Leary A. PyWavelets: A Python
package for wavelet analysis. JOSS 2019;4(36):1237. doi:10.21105/joss.01237
"""

from __future__ import annotations

import re

import numpy as np
import pywt

from radflow.errors import SettingsError
from radflow.filters._checks import boolean, choice, discrete_wavelet, integer
from radflow.filters.ibsi._separable import pooled_response
from radflow.filters.ibsi.boundary import check_boundary, check_volume, document, ndimage_mode

__all__ = ["wavelet_filter", "wavelet_filters"]

_DECOMPOSITION = re.compile(r"[LH]{2,3}")


def wavelet_filters(wavelet: str, level: int) -> dict[str, np.ndarray]:
    """The centred, dilated low-pass ``"L"`` and high-pass ``"H"`` filters of `wavelet` at `level`.

    Examples
    --------
    >>> wavelet_filters("haar", 2)["H"].round(4)
    array([-0.7071,  0.    ,  0.7071,  0.    ,  0.    ])
    """
    bank = pywt.Wavelet(discrete_wavelet(wavelet, "wavelet"))
    step = 2 ** (integer(level, "level", 1) - 1)
    out = {}
    for letter, taps in (("L", bank.dec_lo), ("H", bank.dec_hi)):
        taps = np.asarray(taps, dtype=np.float64)
        if taps.size % 2 == 0:
            taps = np.append(taps, 0.0)
        dilated = np.zeros((taps.size - 1) * step + 1)
        dilated[::step] = taps
        out[letter] = dilated
    return out


@document
def wavelet_filter(
    image,
    *,
    wavelet: str,
    decomposition: str,
    level: int = 1,
    boundary: str = "mirror",
    rotation_invariant: bool = False,
    pooling: str = "average",
) -> np.ndarray:
    r"""Undecimated separable wavelet response map.

    Parameters
    ----------
    %(image)s
    wavelet : str
        PyWavelets discrete wavelet name: ``"haar"``, ``"db2"``, ``"coif1"``...
    decomposition : str
        ``"L"``/``"H"`` per axis in order x, y[, z]: ``"LLH"`` (3D), ``"HH"`` (2D).
    level : int, optional
        Decomposition level (>= 1).
    %(boundary)s
    rotation_invariant : bool, optional
        Pool the responses of the cascade's right-angle rotations.
    pooling : {"average", "max"}, optional
        Pooling of the rotated responses (IBSI: average).

    %(returns)s

    %(raises)s
    SettingsError
        An unknown wavelet, decomposition, pooling or boundary; a level < 1.

    Examples
    --------
    Haar "HL" on a unit ramp along x: the high-pass filter along x,
    :math:`(f_k - f_{k+1})/\sqrt{2}`, gives :math:`-1/\sqrt{2}` (0 at the
    far edge, which "nearest" extends flat) and the low-pass filter along y
    multiplies a constant by :math:`\sqrt{2}`:

    >>> ramp = np.arange(4.0).reshape(1, 1, 4)
    >>> wavelet_filter(ramp, wavelet="haar", decomposition="HL", boundary="nearest")[0, 0].round(12)
    array([-1., -1., -1.,  0.])
    """
    values = check_volume(image)
    if not isinstance(decomposition, str) or not _DECOMPOSITION.fullmatch(decomposition):
        raise SettingsError(
            f"decomposition: {decomposition!r} is not allowed; "
            "expected 'L'/'H' per axis in order x, y[, z], e.g. 'LLH'"
        )
    level = integer(level, "level", 1)
    mode = ndimage_mode(check_boundary(boundary))
    pooling = choice(pooling, "pooling", ("average", "max"))
    bank = []
    for stage_level in range(1, level + 1):
        filters = wavelet_filters(wavelet, stage_level)
        letters = decomposition if stage_level == level else "L" * len(decomposition)
        bank.append([filters[letter] for letter in letters])
    return pooled_response(
        values, bank, mode, pooling if boolean(rotation_invariant, "rotation_invariant") else None
    )
