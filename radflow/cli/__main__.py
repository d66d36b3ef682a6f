"""``python -m radflow.cli``: the same as the ``radflow`` command."""

import sys

from radflow.cli import main

sys.exit(main())
