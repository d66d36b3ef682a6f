"""Build step beyond pyproject.toml: the segment-mode kernels compiled ahead of time.

``radflow.features._aot`` is compiled here with ``numba.pycc`` from the numba source of the
kernels listed in ``radflow/features/_aot_spec.py`` (see :mod:`radflow.features._native` for
why). It is an optional extension: without a C/C++ compiler, or with a numba that no longer
ships ``numba.pycc``, the installation goes on without it and radflow uses numba's JIT for
those kernels (same numbers, about half a second more per process).
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

FEATURES = Path(__file__).resolve().parent / "radflow" / "features"


def _load(name: str, path: Path):
    """A module loaded from its file alone (radflow's package and dependencies are not here)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # numba resolves the kernels' globals through it
    spec.loader.exec_module(module)
    return module


def _kernel_extension():
    # numba compiles the kernels' helper functions (``@njit(cache=True)``) while it compiles the
    # extension; their cache entries, written beside the sources, would name this build's
    # module names (``_radflow_aot__mesh``) and break the installed package's JIT loading them.
    cache = tempfile.mkdtemp(prefix="radflow-aot-build-")
    atexit.register(shutil.rmtree, cache, ignore_errors=True)
    os.environ["NUMBA_CACHE_DIR"] = cache
    try:
        with warnings.catch_warnings():  # pycc is "pending deprecation" since numba 0.57
            warnings.simplefilter("ignore")
            from numba.pycc import CC  # noqa: PLC0415 (optional: no pycc, no extension)
    except ImportError as exc:
        print(f"radflow: no ahead-of-time kernels ({exc}); numba's JIT will serve", file=sys.stderr)
        return []
    spec = _load("_radflow_aot_spec", FEATURES / "_aot_spec.py")
    cc = CC(spec.MODULE)
    cc.verbose = False
    for module_name, kernels in spec.KERNELS.items():
        module = _load(f"_radflow_aot_{module_name}", FEATURES / f"{module_name}.py")
        for name, signature in kernels.items():
            cc.export(name, signature)(getattr(module, name).py_func)
    digest = spec.source_digest(FEATURES)

    def source_digest():
        return digest

    cc.export("source_digest", "int64()")(source_digest)
    extension = cc.distutils_extension(optional=True)
    extension.name = f"radflow.features.{spec.MODULE}"
    return [extension]


class BuildExt(build_ext):
    """setuptools' build_ext, generating the object code of numba.pycc extensions first.

    (numba.pycc patches distutils' own build_ext for this, which setuptools' command does
    not inherit from at the time it is patched.)
    """

    def build_extension(self, ext):
        if getattr(ext, "_cc", None) is not None:
            ext._prepare_object_files(self)
        super().build_extension(ext)


setup(ext_modules=_kernel_extension(), cmdclass={"build_ext": BuildExt})
