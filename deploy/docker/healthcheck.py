"""Container health check of the radflow image (Docker HEALTHCHECK, compose).

With ``RADFLOW_HEALTH_URL`` set (the scheduler's or worker's Dask ``/health``
endpoint), healthy means that URL answers 200 within 5 s; without it (the
client role), healthy means radflow imports. Exit status 0 healthy, 1 not.
"""

import os
import sys
import urllib.error
import urllib.request

TIMEOUT_S = 5


def main() -> int:
    url = os.environ.get("RADFLOW_HEALTH_URL")
    if not url:
        import radflow  # noqa: F401

        return 0
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            ok = response.status == 200
    except (OSError, urllib.error.URLError) as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1
    if not ok:
        print(f"{url}: HTTP {response.status}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
