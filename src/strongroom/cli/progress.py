"""Progress on a terminal: one line on standard error, rewritten in place.

``TerminalProgress`` is the shared ``progress_model.ProgressModel`` (the core reports to
it as to any progress callback) that also draws what the model says: the phase in
words, a bar of the overall fraction, the amount done in the phase's unit, and the time
left once it can be estimated::

    Copying files           [###########-------------------]  37%  740 MB of 2.0 GB, about 9 s left

It draws only when standard error is a terminal and stays silent otherwise (pipes, CI,
cron), and at most every ``interval`` seconds.
"""

from __future__ import annotations

import sys
import time

from strongroom.cli.clierrors import hold_signals
from strongroom.progress_model import OUTCOMES, ProgressModel, amount

WIDTH = 30


class TerminalProgress(ProgressModel):
    def __init__(self, stream=None, interval: float = 0.1):
        super().__init__()
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.interval = interval
        self._drawn = 0.0
        self._shown = 0  # length of the line on screen

    def __call__(self, step: str, done: int, total: int | None) -> None:
        super().__call__(step, done, total)
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._drawn < self.interval:
            return
        self._drawn = now
        self.draw()

    def line(self) -> str:
        """The line as it is drawn now."""
        shown = self.snapshot()
        filled = int(WIDTH * shown["fraction"])
        figures = amount(shown["done"], shown["total"], shown["unit"])
        tail = ", ".join(part for part in (figures, shown["eta"]) if part)
        return f"{shown['words']:<24} [{'#' * filled}{'-' * (WIDTH - filled)}] {shown['percent']:>3}%  {tail}"

    def draw(self) -> None:
        text = self.line()
        self.stream.write("\r" + text.ljust(self._shown))
        self.stream.flush()
        self._shown = len(text)

    def no_return(self) -> None:
        """The operation passed its point of no return: a signal no longer stops it."""
        hold_signals()

    def end(self, outcome: str) -> None:
        """The command failed: leave the line on screen, saying what became of the
        operation (``failed and rolled back``, ``refused``, ``failed``), the error below."""
        self.finish(outcome)
        if self._shown:
            shown = self.snapshot()
            self.stream.write("\r" + f"{shown['words']:<24} {shown['percent']:>3}%  {OUTCOMES[outcome]}".ljust(self._shown)
                              + "\n")
            self.stream.flush()
            self._shown = 0

    def done(self) -> None:
        """The command's work is over: clear the line (its outcome is printed next)."""
        self.finish("done")
        if self._shown:
            self.stream.write("\r" + " " * self._shown + "\r")
            self.stream.flush()
            self._shown = 0
