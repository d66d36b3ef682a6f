"""The kernels compiled ahead of time at installation, and the digest that says they are current.

``setup.py`` reads this file by path in the build's isolated environment (numba and NumPy
only, no radflow), so it imports nothing but the standard library. It compiles each kernel
named here from its numba source (:mod:`radflow.features._shared_kernels`,
:mod:`radflow.features._mesh`) into the extension module ``radflow.features._aot`` with
``numba.pycc``, with the one signature each is called with (every caller passes
C-contiguous arrays of these dtypes), plus a function ``source_digest()`` returning
:func:`source_digest` of the sources it was built from. :mod:`radflow.features._native`
uses the extension only while that digest still matches the files beside it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

#: Name of the extension module, in the ``radflow.features`` package.
MODULE = "_aot"

#: Kernel source module -> {kernel name: numba signature}.
KERNELS = {
    "_shared_kernels": {
        "count_pairs": "void(int32[::1], int64[::1], float64[:, :, ::1])",
        "count_runs": "void(int32[::1], int64[::1], float64[:, :, ::1])",
        "dependence_counts": "int64[:, ::1](int32[::1], int64[::1], int64[::1], int64)",
        "label_zones": "Tuple((int32[::1], int64[::1]))(int32[::1], int64[::1], int64)",
        "tone_differences": "Tuple((int64[::1], float64[::1]))(int32[::1], int64[::1], int64[::1])",
    },
    "_mesh": {
        "contour_perimeter_area": "UniTuple(float64, 2)(uint8[:, ::1], float64[::1])",
        "edge_vertices": "int64[:, ::1](uint8[:, :, ::1])",
        "mesh_area_volume": "UniTuple(float64, 2)(uint8[:, :, ::1], float64[::1])",
        "mesh_diameters": "float64[::1](int64[:, ::1], float64[::1])",
    },
}

#: Files whose content the compiled kernels depend on (this one: the signatures).
SOURCES = (*(f"{module}.py" for module in KERNELS), "_aot_spec.py")


def source_digest(folder: str | Path) -> int:
    """Digest of the kernel sources in `folder`: the first 63 bits of their SHA-256.

    A non-negative int64, so that the extension can return it from a compiled function.
    """
    digest = hashlib.sha256()
    for name in SOURCES:
        digest.update(Path(folder, name).read_bytes())
    return int.from_bytes(digest.digest()[:8], "little") >> 1
