"""Exceptions shared by every layer of radflow.

Errors about input data always name the file (or store key) and the reason, on
one line, so that a batch run can record them per case and carry on.
"""

from __future__ import annotations

from os import PathLike


class RadflowError(Exception):
    """Base class of all errors raised by radflow on purpose."""


class InputError(RadflowError, ValueError):
    """Bad input data: corrupt file, geometry mismatch, empty ROI, missing tag...

    Parameters
    ----------
    source : str or path-like
        The file, folder or store key the problem was found in.
    reason : str
        What is wrong, and where useful how to fix it.
    """

    def __init__(self, source: str | PathLike, reason: str):
        self.source = str(source)
        self.reason = reason
        super().__init__(f"{self.source}: {reason}")


class SettingsError(RadflowError, ValueError):
    """A parameter file or setting is invalid (unknown key, wrong type or value)."""
