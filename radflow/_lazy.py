"""The one mechanism by which radflow defers imports: heavy libraries and its own packages.

``radflow extract IMAGE MASK`` on two NIfTI files must not pay for zarr, xarray, dask,
distributed, pandas, pyarrow, scikit-learn, matplotlib or duckdb (together more than a second
of start-up), yet every radflow module imports what it uses at its top, where a reader (and
import-linter) sees it. Two functions reconcile the two:

``load(name)``
    A stand-in for a heavy third-party module, bound at module top
    (``zarr = load("zarr")``, ``da = load("dask.array")``); the real import happens on the
    first attribute access, so ``zarr.open_group(...)`` inside a function costs nothing
    until it runs. Use it for the libraries listed above, for optional extras
    (``dask_jobqueue``), and for SciPy's submodules (``ndimage``, ``fft``, ``special``,
    ``stats``: a tenth of a second together) in modules that ``radflow extract`` imports but
    only some image types or classes use, and for PyYAML in :mod:`radflow._config` (read only
    when a file or text is); ``from x import y`` of such a library is not
    possible at module top and is written ``x.y`` at the point of use instead.

``attach(package, submodules)``
    PEP 562 ``__getattr__``/``__dir__`` for a package ``__init__``, so that
    ``from radflow import model`` at module top is cheap and ``model.spec`` imports
    ``radflow.model.spec`` when first used (the command line relies on it for ``--help``).

Why not ``lazy_loader.load``: it registers a placeholder in ``sys.modules`` (so "is zarr
loaded?" can no longer be read from ``sys.modules``) and imports the parent package eagerly
for a submodule such as ``dask.array``. ``lazy_loader.attach`` does what ``attach`` does; this
module keeps both halves in one place with one behaviour.

Type annotations of lazily loaded classes are strings (``from __future__ import
annotations``) and cost nothing.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from types import ModuleType

__all__ = ["attach", "is_loaded", "load"]


class _Deferred(ModuleType):
    """A module that imports ``__name__`` on first attribute access and forwards to it."""

    def __getattr__(self, attr: str):
        if attr.startswith("__") and attr.endswith("__"):
            # Introspection (copy, pickle, doctest collection) must not trigger the import.
            raise AttributeError(attr)
        module = importlib.import_module(self.__name__)
        return getattr(module, attr)

    def __repr__(self) -> str:
        return f"<deferred module {self.__name__!r}>"


def load(name: str) -> ModuleType:
    """A deferred import of module ``name`` (dotted names such as ``"dask.array"`` included).

    Parameters
    ----------
    name : str
        Absolute module name.

    Returns
    -------
    module
        The module itself if it is already imported, else a stand-in that imports it on first
        attribute access. Nothing is added to ``sys.modules`` until then.
    """
    module = sys.modules.get(name)
    return module if module is not None else _Deferred(name)


def attach(
    package: str, submodules: Iterable[str] = (), attributes: Mapping[str, str] | None = None
) -> tuple[Callable, Callable, list[str]]:
    """``__getattr__, __dir__, __all__`` making a package's submodules load on first use.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    submodules : iterable of str
        Names of its submodules (``"spec"`` for ``package.spec``).
    attributes : mapping of str to str, optional
        Names the package exports -> the submodule (dotted, relative to the package)
        that defines them, imported with it on first use.

    Examples
    --------
    In ``radflow/model/__init__.py``::

        __getattr__, __dir__, __all__ = attach(__name__, ["spec", "validation"])

    In ``radflow/__init__.py``, a function of a sub-package::

        __getattr__, __dir__, __all__ = attach(
            __name__, ["store"], {"extract": "extraction.extractor"})
    """
    names = sorted(set(submodules))
    exports = dict(attributes or {})

    def __getattr__(name: str):
        if name in exports:
            return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        if name in names:
            return importlib.import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*names, *exports})

    return __getattr__, __dir__, sorted({*names, *exports})


def is_loaded(name: str) -> bool:
    """Whether module ``name`` has really been imported (a deferred stand-in does not count)."""
    return name in sys.modules
