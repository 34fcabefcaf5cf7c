"""Progress on a terminal: one line on standard error, rewritten in place.

``TerminalProgress`` is the shared ``progress_model.ProgressModel`` (the core reports to
it as to any progress callback) that also draws what the model says: the phase in
words and which of the operation's phases it is, a bar and a percentage of the amount
the phase has done (done / total in its unit, so the two never disagree with the
figures beside them), that amount, and the time left for the whole operation once it
can be estimated::

    Copying files (3/6)      [###########-------------------]  37%  740.0 MB of 2.0 GB, about 9 s left

A phase whose total is unknown shows its amount alone, with an empty bar.

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
        share = phase_share(shown)
        filled = int(WIDTH * share) if share is not None else 0
        figures = amount(shown["done"], shown["total"], shown["unit"])
        tail = ", ".join(part for part in (figures, shown["eta"]) if part)
        return f"{_words(shown):<24} [{'#' * filled}{'-' * (WIDTH - filled)}] {_percent(share)}  {tail}"

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
            self.stream.write("\r" + f"{_words(shown):<24} {_percent(phase_share(shown))}  {OUTCOMES[outcome]}"
                              .ljust(self._shown) + "\n")
            self.stream.flush()
            self._shown = 0

    def done(self) -> None:
        """The command's work is over: clear the line (its outcome is printed next)."""
        self.finish("done")
        if self._shown:
            self.stream.write("\r" + " " * self._shown + "\r")
            self.stream.flush()
            self._shown = 0


def phase_share(shown: dict) -> float | None:
    """How much of its amount the phase has done (``done`` / ``total``, at most 1; a total
    of 0 is nothing to do: done), or None when its total is unknown."""
    total = shown["total"]
    if total is None:
        return None
    return 1.0 if total == 0 else min(shown["done"] / total, 1.0)


def _percent(share: float | None) -> str:
    return "    " if share is None else f"{int(100 * share):>3}%"


def _words(shown: dict) -> str:
    """``Copying files (3/6)``: the phase, and which of the planned phases it is."""
    stage = f" ({shown['stage']}/{shown['stages']})" if shown.get("stage") and shown["stages"] > 1 else ""
    return shown["words"] + stage
