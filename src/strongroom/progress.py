"""Progress on a terminal: one line on standard error, rewritten in place.

The core reports ``progress(step, done, total)``; this renders it when standard error
is a terminal and stays silent otherwise (pipes, CI, cron).
"""

from __future__ import annotations

import sys
import time


class TerminalProgress:
    def __init__(self, stream=None, interval: float = 0.1):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.interval = interval
        self._last = 0.0
        self._shown = False

    def __call__(self, step: str, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < self.interval and not (total and done >= total):
            return
        self._last = now
        if total:
            width = 30
            filled = int(width * min(done, total) / total)
            bar = "#" * filled + "-" * (width - filled)
            text = f"{step:<10} [{bar}] {done}/{total}"
        else:
            text = f"{step:<10} {done}"
        self.stream.write("\r" + text.ljust(60))
        self.stream.flush()
        self._shown = True

    def done(self) -> None:
        if self._shown:
            self.stream.write("\r" + " " * 60 + "\r")
            self.stream.flush()
            self._shown = False
