"""Options and checks shared by the commands, so that they are spelled and checked one way.

- ``-p/--params FILE``: a PyRadiomics parameter file (:func:`add_params`);
- ``-o/--out PATH``: what a command writes (:func:`add_out`); the store
  (``--store``) and feature table (``--table``) keep their own names, as they
  are read again by later commands (``run --incremental`` reads its table);
- older spellings (``extract --param``, ``report --output``) stay accepted as
  hidden aliases, so that existing scripts keep working.

The output checks (:func:`check_output_file`, :func:`check_output_folder`)
run before a command starts its work, so that a wrong ``-o`` fails in a
second, not after a model fit or a cluster start.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from radflow.errors import InputError

__all__ = [
    "add_out",
    "add_params",
    "check_output_file",
    "check_output_folder",
    "positive_int",
]


def positive_int(text: str) -> int:
    """An ``argparse`` type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def _add_with_aliases(parser, flags, aliases, *, required, **kwargs) -> None:
    if not aliases:
        parser.add_argument(*flags, required=required, **kwargs)
        return
    # A mutually exclusive group makes "required" count the hidden spelling too, and
    # argparse leaves suppressed options out of its "one of the arguments" message.
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument(*flags, **kwargs)
    hidden = {k: v for k, v in kwargs.items() if k in ("dest", "metavar", "type")}
    for alias in aliases:
        group.add_argument(alias, help=argparse.SUPPRESS, **hidden)


def add_out(
    parser,
    help: str,
    *,
    required: bool = False,
    default=None,
    metavar: str = "OUT",
    aliases: tuple[str, ...] = (),
) -> None:
    """Add ``-o/--out`` (dest ``out``), plus hidden older spellings `aliases`."""
    _add_with_aliases(
        parser,
        ("-o", "--out"),
        aliases,
        required=required,
        dest="out",
        default=default,
        metavar=metavar,
        help=help,
    )


def add_params(
    parser,
    help: str = "PyRadiomics parameter file (YAML or JSON)",
    *,
    required: bool = False,
    aliases: tuple[str, ...] = (),
) -> None:
    """Add ``-p/--params`` (dest ``params``), plus hidden older spellings `aliases`."""
    _add_with_aliases(
        parser,
        ("-p", "--params"),
        aliases,
        required=required,
        dest="params",
        metavar="PARAMS",
        help=help,
    )


def _check_parents(path: Path) -> None:
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(parent, "is a file, not a folder: choose another output path")
            return


def check_output_file(path: str | Path) -> Path:
    """Refuse an output file path that is a folder or lies below a file."""
    path = Path(path)
    if path.is_dir():
        raise InputError(path, "is a folder: give the name of the file to write")
    _check_parents(path)
    return path


def check_output_folder(path: str | Path, what: str = "output folder") -> Path:
    """Refuse an output folder path that is a file or lies below a file."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(path, f"is a file, not a folder: give the {what} to write into")
    _check_parents(path)
    return path
