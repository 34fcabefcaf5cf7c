"""Progress that means something: one model the CLI's bar and the web's bar both show.

The core reports through the callback it always had, ``progress(step, done, total)``,
where ``step`` names a phase of ``PHASES`` and ``done``/``total`` count the phase's own
unit of work (bytes read, copied or checked; records dumped or loaded; files; backups).
``total`` may be None while it is unknown. Two optional calls tell the model more, and
a plain callable that lacks them loses nothing (``announce`` and ``nested`` check):

- ``plan([(phase, expected amount), ...])``: the phases an operation will go through,
  in order, with the work each is expected to take (None: unknown);
- ``enter(phase)`` / ``leave()``: an operation run as one phase of another (the
  pre-restore backup is the restore's "Saving the current state"); its own plan then
  fills that one phase;
- ``no_return()``: the operation has passed its point of no return (a restore's swap):
  from here on it completes, so a face that would stop it on a signal should let it
  finish and say so (``past_no_return``; the CLI defers Ctrl-C, ``cli.clierrors``).

``ProgressModel`` turns that into what a person reads (``snapshot``): the phase in
words, the amount done in its unit, an overall fraction and an estimate of the time
left. The fraction weighs every phase by its expected *time*: a phase not yet begun by
its amount at a typical speed (``COST``), the running phase by the speed measured so
far, finished phases by the time they took. So a 2 GB restore's bar moves with the
bytes copied, not with files placed. The fraction never goes back, and reaches 1 only
when ``finish("done")`` says the operation succeeded; ``finish`` records the outcome
(``OUTCOMES``). ``outcome_of`` names the outcome of a failed operation's error. The web's
bar shows that fraction; the terminal's line, which shows the phase's amount beside its
bar, shows the phase's own done / total there instead (``cli.progress``), and which of
the planned phases runs (``stage`` of ``stages``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from strongroom import humanize
from strongroom.errors import (
    BadInput,
    Busy,
    InvalidName,
    LinkedFolder,
    NoSpace,
    NotAllowed,
    NotFound,
)

Progress = Callable[[str, int, "int | None"], None]


@dataclass(frozen=True)
class Phase:
    words: str  # what a person reads
    unit: str  # bytes, records, files, backups, steps
    seconds_per_unit: float  # a typical speed, until one is measured
    fixed: float = 0.0  # seconds it takes whatever the amount (opening, syncing)

    def expected_seconds(self, amount: float | None) -> float:
        return self.fixed + (amount or 1) * self.seconds_per_unit


# Typical speeds and overheads, measured on the demo site (embedded database, local disk).
PHASES: dict[str, Phase] = {
    "checking": Phase("Checking the backup", "files", 1 / 50_000, 0.02),
    "saving": Phase("Saving the current state", "files", 1 / 4_000, 0.3),
    "dumping": Phase("Dumping records", "records", 1 / 40_000, 0.1),
    "reading": Phase("Reading files", "bytes", 1 / 300e6, 0.02),
    "copying": Phase("Copying files", "bytes", 1 / 150e6, 0.05),
    "flushing": Phase("Writing to disk", "bytes", 1 / 500e6, 0.08),
    "loading": Phase("Loading records", "records", 1 / 10_000, 0.2),
    "switching": Phase("Switching over", "steps", 0.05),
    "verifying": Phase("Checking", "bytes", 1 / 300e6, 0.02),
    "removing": Phase("Removing", "backups", 0.1),
    "files": Phase("Writing files", "bytes", 1 / 200e6),  # the demo site's
    "records": Phase("Writing records", "records", 1 / 10_000),
}
OUTCOMES = {"done": "done", "rolled back": "failed and rolled back", "refused": "refused", "failed": "failed"}
REFUSALS = (InvalidName, BadInput, NotFound, Busy, NotAllowed, LinkedFolder, NoSpace)
MEASURE_AFTER = 0.3  # seconds in a phase before its measured speed is trusted
ETA_AFTER = 1.0  # seconds before any estimate of the time left is given


def phase_of(step: str) -> Phase:
    """The phase named ``step``; a name the model does not know is shown as it is."""
    return PHASES.get(step) or Phase(step, "items", 0.01)


def announce(progress: Progress | None, phases: list[tuple[str, float | None]]) -> None:
    """Tell ``progress`` the operation's plan, if it listens (see the module's docstring)."""
    plan = getattr(progress, "plan", None)
    if plan is not None:
        plan(phases)


def past_no_return(progress: Progress | None) -> None:
    """Tell ``progress`` the operation can no longer be undone, only completed, if it listens."""
    no_return = getattr(progress, "no_return", None)
    if no_return is not None:
        no_return()


@contextmanager
def nested(progress: Progress | None, phase: str) -> Iterator[None]:
    """Run an operation as the phase ``phase`` of the one reporting to ``progress``."""
    enter = getattr(progress, "enter", None)
    if enter is None:
        yield
        return
    enter(phase)
    try:
        yield
    finally:
        progress.leave()


def marked(error: BaseException, outcome: str) -> BaseException:
    """``error``, marked with what became of the operation (for ``outcome_of``)."""
    error.outcome = outcome
    return error


def restore_plan(manifest: dict) -> list[tuple[str, float | None]]:
    """A restore's phases with the work each is expected to take, from its backup."""
    files, records = manifest["files"], sum(c.get("count", 0) for c in manifest["collections"].values())
    return [("checking", files.get("entries")), ("saving", files.get("entries")), ("copying", files.get("bytes")),
            ("flushing", None), ("loading", records), ("switching", 1)]  # flushed: what is copied, told then


def outcome_of(error: BaseException) -> str:
    """``refused`` (nothing was done), ``rolled back`` (a change was undone) or ``failed``.
    The core marks an error it raised after undoing a change with ``outcome``."""
    marked = getattr(error, "outcome", None)
    if marked in OUTCOMES:
        return marked
    return "refused" if isinstance(error, REFUSALS) else "failed"


@dataclass
class _Frame:
    """One operation's phases: expected amounts, amounts done, and time spent in each."""

    expected: dict[str, float | None] = field(default_factory=dict)
    done: dict[str, float] = field(default_factory=dict)
    totals: dict[str, float] = field(default_factory=dict)
    spent: dict[str, float] = field(default_factory=dict)
    current: str | None = None
    since: float = 0.0  # when the current phase began
    planned: bool = False  # its phases were announced (``plan``), so "phase k of n" means something

    def move_to(self, step: str, now: float) -> None:
        if step == self.current:
            return
        if step not in self.expected:
            self.expected[step] = None
        self._close(now)
        order = list(self.expected)
        for earlier in order[: order.index(step)]:  # phases passed over count as done
            self.done[earlier] = self.totals.get(earlier) or self.expected.get(earlier) or 1
            self.totals.setdefault(earlier, self.done[earlier])
        self.current, self.since = step, now

    def _close(self, now: float) -> None:
        if self.current is not None:
            self.spent[self.current] = self.spent.get(self.current, 0.0) + now - self.since

    def seconds(self, now: float, child: _Frame | None) -> tuple[float, float]:
        """``(spent, left)`` in seconds, estimated as the module's docstring says."""
        spent = left = 0.0
        for step, expected in self.expected.items():
            phase = phase_of(step)
            total = self.totals.get(step, expected)
            taken = self.spent.get(step, 0.0)
            if step == self.current:
                taken += now - self.since
                left += child.seconds(now, None)[1] if child else _left(self.done.get(step, 0), total, taken, phase)
            elif step not in self.done:  # not begun: its amount at a typical speed
                left += phase.expected_seconds(total)
            spent += taken
        return spent, left


def _left(done: float, total: float | None, taken: float, phase: Phase) -> float:
    """The running phase's time left: at the speed measured so far once it can be."""
    if total and done and taken >= MEASURE_AFTER:
        return taken * max(total - done, 0) / done
    return max(phase.expected_seconds(total) * (1 - _share(done, total)), phase.fixed - taken, 0.0)


def _share(done: float, total: float | None) -> float:
    return min(done / total, 1.0) if total else 0.0


class ProgressModel:
    """The callback the core reports to, and what the CLI and the web read from it.

    Thread-safe: the web reads ``snapshot()`` while the job's thread reports.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._frames: list[_Frame] = [_Frame()]
        self._entered: list[str] = []
        self._started = self.clock()
        self._best = 0.0
        self.outcome: str | None = None
        self._last = ("", 0, None)

    # -- what the core calls ----------------------------------------------------------

    def __call__(self, step: str, done: int, total: int | None) -> None:
        with self._lock:
            frame = self._frames[-1]
            frame.move_to(step, self.clock())
            frame.done[step] = done
            if total is not None:  # 0 too: a phase with nothing to do (a restore's flush of no copy)
                frame.totals[step] = total
            self._last = (step, done, total)

    def plan(self, phases: list[tuple[str, float | None]]) -> None:
        with self._lock:
            if len(self._frames) == 1 and not self._entered:
                self._reset()  # a new top-level operation
            frame = self._frames[-1]
            frame.planned = True
            for step, expected in phases:
                frame.expected[step] = expected

    def enter(self, phase: str) -> None:
        self(phase, 0, None)
        with self._lock:
            self._entered.append(phase)
            self._frames.append(_Frame())

    def leave(self) -> None:
        with self._lock:
            self._frames.pop()
            phase = self._entered.pop()
            frame = self._frames[-1]
            frame.done[phase] = frame.totals.get(phase) or frame.expected.get(phase) or 1
            frame.totals.setdefault(phase, frame.done[phase])

    def finish(self, outcome: str) -> None:
        """The operation ended: ``done``, ``rolled back``, ``refused`` or ``failed``."""
        with self._lock:
            self.outcome = outcome if outcome in OUTCOMES else "failed"
            if self.outcome == "done":
                self._best = 1.0

    # -- what a person reads ----------------------------------------------------------

    def fraction(self) -> float:
        with self._lock:
            return self._fraction(self.clock())[0]

    def _fraction(self, now: float) -> tuple[float, float | None]:
        if self.outcome is not None:
            return self._best, None
        child = self._frames[1] if len(self._frames) > 1 else None
        spent, left = self._frames[0].seconds(now, child)
        if self._frames[0].current is None:
            return self._best, None
        fraction = spent / (spent + left) if spent + left > 0 else 0.0
        self._best = max(self._best, min(fraction, 0.99))  # never back; 1 only when done
        eta = left if now - self._started >= ETA_AFTER and self._best > 0 else None
        return self._best, eta

    def snapshot(self) -> dict:
        """``{"phase", "words", "done", "total", "unit", "fraction", "percent",
        "eta_seconds", "eta", "outcome", "stage", "stages"}``: the innermost running
        phase's figures (``done`` of ``total`` in its ``unit``; a total of 0: nothing to
        do), the whole operation's ``fraction`` and time left, and which of the planned
        top-level phases runs (``stage`` of ``stages``; None without a plan)."""
        with self._lock:
            fraction, eta = self._fraction(self.clock())
            frame = self._frames[-1]
            step = frame.current or (self._frames[0].current or "")
            words = " — ".join(phase_of(s).words for s in [*self._entered, step] if s) or "Starting"
            if self._entered and step == self._entered[-1]:
                words = phase_of(step).words
            if self.outcome == "done":
                words = "Finished"  # a failure keeps the phase it stopped in
            phase = phase_of(step) if step else Phase("Starting", "steps", 0)
            done = frame.done.get(step, 0)
            total = frame.totals[step] if step in frame.totals else frame.expected.get(step)
            top = self._frames[0]
            order = list(top.expected)
            stage = order.index(top.current) + 1 if top.planned and top.current in order else None
        return {
            "phase": step or None, "words": words, "done": int(done), "total": None if total is None else int(total),
            "unit": phase.unit, "fraction": round(fraction, 4), "percent": int(100 * fraction),
            "eta_seconds": None if eta is None else round(eta, 1),
            "eta": None if eta is None else _left_words(eta),
            "outcome": self.outcome, "stage": stage, "stages": len(order) if stage else None,
        }


def _left_words(seconds: float) -> str:
    """``about 12 s left``; ``under 1 s left``."""
    return "under 1 s left" if seconds < 1 else f"about {humanize.duration(seconds)} left"


def amount(done: int, total: int | None, unit: str) -> str:
    """``1.2 GB of 2.0 GB``, ``1,204 of 5,000 records``: a phase's figures in words."""
    if unit == "bytes":
        return humanize.size(done) + (f" of {humanize.size(total)}" if total else "")
    if unit == "steps":
        return ""
    return humanize.count(done) + (f" of {humanize.count(total)}" if total else "") + f" {unit}"
