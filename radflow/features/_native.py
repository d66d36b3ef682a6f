"""The segment-mode kernels as callers use them: compiled ahead of time, else numba's JIT.

The texture kernels of :mod:`radflow.features._shared_kernels` (PyRadiomics and IBSI modes)
and the mesh kernels of :mod:`radflow.features._mesh` (shape, shape2D, IBSI morphology) are
compiled at installation into the extension module ``radflow.features._aot`` (``setup.py``,
with ``numba.pycc``; the list and signatures are :mod:`radflow.features._aot_spec`). The
extension loads like any C extension: a command that extracts PyRadiomics' default classes
then imports no numba at all, where the JIT kernels cost every process about half a second
(numba's import, the start of its CPU target, each kernel's cache load) and the first process
on a machine ~10 s of compilation. ``numba.pycc`` is the reason this is written by hand and
not left to numba's cache: the cache still needs numba's runtime in the process.

The extension is compiled from the same source functions, so both builds give the same
numbers (``tests/features/test_native.py`` checks them bit for bit). It is used only while it
matches its source (:func:`radflow.features._aot_spec.source_digest`, stored in the
extension when built); where it is missing (an installation without a C compiler, a source
tree on ``PYTHONPATH``) or older than its source (an editable checkout whose kernels were
edited and not rebuilt), the numba functions of the source modules serve instead, with a
warning in the second case: slower start-up, same results.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from pathlib import Path

from radflow.features import _aot_spec

__all__ = [
    "BUILD",
    "contour_perimeter_area",
    "count_pairs",
    "count_runs",
    "dependence_counts",
    "edge_vertices",
    "label_zones",
    "mesh_area_volume",
    "mesh_diameters",
    "tone_differences",
]

_log = logging.getLogger(__name__)
_EXTENSION = f"{__package__}.{_aot_spec.MODULE}"


def _aot_kernels() -> dict | None:
    """The extension's kernels when it is installed and current, else None."""
    if importlib.util.find_spec(_EXTENSION) is None:
        _log.debug("%s is not built: numba's JIT kernels serve", _EXTENSION)
        return None
    extension = importlib.import_module(_EXTENSION)
    if extension.source_digest() != _aot_spec.source_digest(Path(__file__).parent):
        _log.warning(
            "%s was compiled from other kernel sources than these (%s): numba's JIT kernels "
            "serve (same results, slower start); reinstall radflow (pip install -e .) to "
            "rebuild it",
            _EXTENSION,
            extension.__file__,
        )
        return None
    return {
        name: getattr(extension, name) for kernels in _aot_spec.KERNELS.values() for name in kernels
    }


def _jit_kernels() -> dict:
    """The numba functions of the source modules (importing them imports numba)."""
    return {
        name: getattr(importlib.import_module(f"{__package__}.{module}"), name)
        for module, kernels in _aot_spec.KERNELS.items()
        for name in kernels
    }


_kernels = _aot_kernels()
#: ``"aot"`` (the compiled extension) or ``"jit"`` (numba, from the source modules).
BUILD = "jit" if _kernels is None else "aot"
if _kernels is None:
    _kernels = _jit_kernels()

count_pairs = _kernels["count_pairs"]
count_runs = _kernels["count_runs"]
dependence_counts = _kernels["dependence_counts"]
label_zones = _kernels["label_zones"]
tone_differences = _kernels["tone_differences"]
contour_perimeter_area = _kernels["contour_perimeter_area"]
edge_vertices = _kernels["edge_vertices"]
mesh_area_volume = _kernels["mesh_area_volume"]
mesh_diameters = _kernels["mesh_diameters"]
