"""Progress reporting for long runs: a live bar on a terminal, log lines otherwise."""

from __future__ import annotations

import sys
import time

#: Heading of the known failures in the summaries of ``radflow run`` and ``radflow maps``:
#: permanent failures the record already held for the same key (see
#: :mod:`radflow.pipeline.outcomes`).
KNOWN_FAILURES = "known failures, not retried until their input or parameters change"


class Progress:
    """Counts finished items and shows count, rate and ETA.

    On a terminal the line is redrawn in place; elsewhere (CI logs, cron mail)
    a plain line is written at most every ``interval`` seconds, so that logs
    stay short.

    Parameters
    ----------
    total : int
        Number of items expected.
    label : str
        What is counted ("cases", "ROIs").
    stream : file-like, optional
        Defaults to ``sys.stderr``.
    interval : float
        Seconds between log lines when ``stream`` is no terminal.
    """

    def __init__(self, total: int, label: str, *, stream=None, interval: float = 10.0):
        self.total = total
        self.label = label
        self.stream = stream or sys.stderr
        self.interval = interval
        self.done = 0
        self.failed = 0
        self.start = time.monotonic()
        self._last = 0.0
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def update(self, n: int = 1, *, failed: int = 0, note: str = "") -> None:
        self.done += n
        self.failed += failed
        now = time.monotonic()
        if self._tty:
            self._draw(now, note, end="\r")
        elif now - self._last >= self.interval or self.done == self.total:
            self._last = now
            self._draw(now, note, end="\n")

    def note(self, text: str) -> None:
        """Write one line of information (before the bar is drawn, or between log lines)."""
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._tty:
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self, now: float, note: str, end: str) -> None:
        elapsed = max(now - self.start, 1e-9)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate > 0 else float("nan")
        width = 24
        filled = int(width * self.done / self.total) if self.total else width
        bar = "#" * filled + "-" * (width - filled)
        eta = f"{left:5.0f}s" if left == left else "    ?"
        fail = f" {self.failed} failed" if self.failed else ""
        line = f"[{bar}] {self.done}/{self.total} {self.label} {rate:6.2f}/s ETA {eta}{fail} {note}"
        self.stream.write(line[:120].ljust(120 if self._tty else 0) + end)
        self.stream.flush()
