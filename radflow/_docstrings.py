"""Shared parameter descriptions filled into docstrings, written once per family of functions.

Sibling functions (the texture families' ``compute``, the IBSI 2 filters, the threshold
segmenters) take the same parameters; :func:`filler` lets each describe them once, as
``scipy.ndimage`` does with its ``docfiller``::

    document = filler({"image": '''image : array_like, shape (z, y, x)
            Intensities.'''})

    @document
    def mean_filter(image):
        '''Mean filter.

        Parameters
        ----------
        %(image)s
        '''

A fragment's first line is written without indentation (the placeholder's own
indentation applies), its next lines with the indentation of the docstring.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

__all__ = ["filler"]


def filler(fragments: Mapping[str, str]) -> Callable:
    """A decorator replacing ``%(name)s`` in a function's docstring by ``fragments[name]``.

    Raises KeyError, at import, for a placeholder without a fragment.
    """

    def fill(func):
        func.__doc__ = func.__doc__ % fragments
        return func

    return fill
