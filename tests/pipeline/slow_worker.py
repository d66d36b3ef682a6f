"""Dask worker preload for the real-cluster tests: every extraction takes 0.25 s longer.

The synthetic cases extract in about 30 ms each, so a whole run of the test
archive can end between two polls of a test that means to kill a worker or
the client mid-run. Workers started with ``--preload`` of this file pause
before each extraction (``radflow.pipeline.tasks.extract_task`` imports
``extract`` when it runs, so it gets the slowed one); the numbers are the same.
"""

from __future__ import annotations

import time

from radflow.extraction import extractor

DELAY_S = 0.25
# Dask may run a preload file more than once: keep wrapping the original only.
_extract = extractor.__dict__.setdefault("_extract_before_slow_worker", extractor.extract)


def _slowed(*args, **kwargs):
    time.sleep(DELAY_S)
    return _extract(*args, **kwargs)


extractor.extract = _slowed
