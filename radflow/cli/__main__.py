"""``python -m radflow.cli``: the same as the ``radflow`` command."""

from radflow.cli import console

console()
