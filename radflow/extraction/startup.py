"""What ``radflow extract IMAGE MASK`` starts in background threads before it extracts.

A fresh command spends its first few tenths of a second holding the GIL: importing NumPy,
SimpleITK and radflow's modules, and, where numba serves the kernels, importing numba and
starting its CPU target (about half a second). Reading the input files does not hold it
(SimpleITK releases the GIL while it reads and decompresses). So, as soon as the command
knows its inputs, two kinds of work start in background threads and run on a second core:

- :func:`prefetch` (:func:`radflow.io.image_file.prefetch`): reading the image and mask
  files, which the extraction's :func:`~radflow.io.image_file.read_image` then takes;
- :func:`start_numba`: importing the modules of the enabled classes' kernels and, when that
  imports numba (its JIT serves them: voxel mode, ``mapSummary``, or an installation without
  the compiled extension ``radflow.features._aot``), starting numba's CPU target.

Neither changes a result: the extraction never waits for them but takes over what they have
not finished (see each function). They are not daemon threads: a command that ends first (an
error) waits for them at exit, rather than tearing down the interpreter, SimpleITK's and numba's
globals under a thread still inside them. This module imports no feature family and not the
extraction itself, so that the command can call it first.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import Any

from radflow._lazy import is_loaded, load
from radflow.features import voxel as voxel_families
from radflow.features.registry import family_module
from radflow.io.image_file import prefetch
from radflow.params.extraction import ExtractionParams

__all__ = ["KERNEL_CLASSES", "VOXEL_KERNEL_CLASSES", "prefetch", "start_numba"]

log = logging.getLogger(__name__)

# numba's CPU target and its compiler lock (imported, if at all, in start_numba's thread).
_numba_registry = load("numba.core.registry")
_numba_lock = load("numba.core.compiler_lock")

#: Feature classes whose PyRadiomics-mode computation runs kernels (first order, habitat and
#: skeleton are NumPy/SciPy); voxel mode has kernels for every texture class and first order.
KERNEL_CLASSES = frozenset({"shape", "shape2D", "glcm", "glrlm", "glszm", "gldm", "ngtdm"})
VOXEL_KERNEL_CLASSES = frozenset(KERNEL_CLASSES - {"shape", "shape2D"} | {"firstorder"})


def start_numba(params: ExtractionParams, *, voxel_based: bool = False) -> threading.Thread | None:
    """Load the kernels' modules and start numba in a background thread, if `params` need them.

    A process's first JIT kernel pays for importing numba and starting its CPU target (the
    registries of its implementations, which import ``scipy.linalg`` for its BLAS check):
    about half a second, all of it holding the GIL. Started before an extraction reads its
    files, this thread imports the modules of the enabled classes that have kernels and, if
    that imported numba, starts numba's CPU target, while the extraction reads, crops and
    resamples the files (SimpleITK and NumPy release the GIL): on a machine with two cores or
    more that time is then mostly hidden. With the compiled extension serving segment mode the
    thread only imports the family modules (no numba). Nothing else changes. The extraction does
    not wait for the thread: it imports the same modules (waiting on Python's import lock of a
    module the thread is importing) and its first kernel load starts numba's target itself if
    the thread has not (numba does that under its global compiler lock, which the thread holds
    while it starts the target: the two never run at once, and the later finds the work done).
    A failure in the thread is only logged at debug level; the extraction then meets it again
    where it would have without the thread.

    Parameters
    ----------
    params : ExtractionParams
        The extraction's parameters: nothing is started unless they enable a class that has
        kernels (shape, shape2D, the texture classes; voxel mode's first order; any
        ``mapSummary``), so a first-order-only extraction imports no numba.
    voxel_based : bool
        Whether the extraction is in voxel mode.

    Returns
    -------
    threading.Thread or None
        The thread started, or None when `params` need no kernel.
    """
    modules = _kernel_modules(params, voxel_based)
    if not modules:
        return None
    thread = threading.Thread(target=_start_kernels, args=(modules,), name="radflow-numba-start")
    thread.start()
    return thread


def _kernel_modules(params: ExtractionParams, voxel_based: bool) -> list[Callable[[], Any]]:
    """Loaders of the family modules with kernels an extraction with `params` uses, in order."""
    classes = params.feature_classes
    if voxel_based:  # shape has no voxel mode
        return [
            functools.partial(getattr, voxel_families, c)
            for c in classes
            if c in VOXEL_KERNEL_CLASSES
        ]
    # shape first, as the extraction computes it
    ordered = sorted((c for c in classes if c in KERNEL_CLASSES), key=lambda c: "shape" not in c)
    loaders = [functools.partial(family_module, c) for c in ordered]
    if params.map_summary is not None:  # every class has voxel kernels
        loaders += [
            functools.partial(getattr, voxel_families, c) for c in params.map_summary.classes
        ]
    return loaders


def _start_kernels(modules: list[Callable[[], Any]]) -> None:
    try:
        for module in modules:
            module()
        if is_loaded("numba"):  # numba's JIT serves (not the compiled extension)
            with _numba_lock.global_compiler_lock:
                _numba_registry.cpu_target.target_context.refresh()
    except Exception as exc:  # the extraction meets it again, where it would without the thread
        log.debug("loading the kernels' modules in the background failed: %r", exc)
