"""Progress that means something (issue 11, item 1): phases in words, work in its own
unit, a bar that moves with the work and never goes back, a time left, and a final
state that says what happened; the same model for the CLI's line and the web's bar.
"""

import io
import re
import threading
import time

import pytest

from conftest import give_the_restore_work
from strongroom.cli.progress import TerminalProgress
from strongroom.db import dbrestore
from strongroom.errors import Busy, RestoreFailed
from strongroom.progress_model import ProgressModel, outcome_of
from strongroom.repo.locking import OperationLock
from strongroom.restore.rebuild import TEST_COPY_DELAY
from strongroom.scopes import Scope, scope_dir
from strongroom.service import Strongroom
from strongroom.web.jobs import JobRunner
from web_support import paused_job

FILES, SIZE = 48, 64 << 10


class Recording(ProgressModel):
    """The model, keeping every call the core made, in order."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __call__(self, step, done, total):
        self.calls.append((step, done, total))
        super().__call__(step, done, total)

    def enter(self, phase):
        self.calls.append(("enter", phase, None))
        super().enter(phase)


def _files(config) -> None:
    live = scope_dir(config, Scope.site())
    (live / "big").mkdir(parents=True)
    for n in range(FILES):
        (live / "big" / f"file-{n:03}.bin").write_bytes(bytes([n]) * SIZE)


def _emptied(config) -> None:
    for path in (scope_dir(config, Scope.site()) / "big").iterdir():
        path.unlink()


def test_a_restore_reports_its_phases_in_order_in_the_units_of_the_work(config, database):
    _files(config)
    progress = Recording()
    service = Strongroom(config, database=database, progress=progress)
    made = service.make_backup()
    _emptied(config)
    progress.calls.clear()

    service.restore_backup(made["id"])

    first_seen = []
    for step, _, _ in progress.calls:
        if step not in first_seen:
            first_seen.append(step)
    assert first_seen == ["checking", "enter", "saving", "dumping", "reading", "flushing",
                          "copying", "loading", "switching"]
    copying = [(done, total) for step, done, total in progress.calls if step == "copying"]
    assert copying[-1] == (made["bytes"], made["bytes"]) == (FILES * SIZE, FILES * SIZE)
    assert [done for done, _ in copying] == sorted(done for done, _ in copying)
    loading = [done for step, done, _ in progress.calls if step == "loading"]
    assert loading[-1] == sum(made["records"].values())


def test_the_bar_of_a_slow_restore_rises_with_the_bytes_copied_and_ends_done(config, database, monkeypatch):
    _files(config)
    service = Strongroom(config, database=database)
    made = service.make_backup()
    _emptied(config)
    monkeypatch.setenv(TEST_COPY_DELAY, "0.05")  # 48 copies on 2-4 threads: about a second
    progress = ProgressModel()
    service.progress = progress
    samples, running = [], threading.Event()
    running.set()

    def watch():
        while running.is_set():
            samples.append(progress.snapshot())
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        service.restore_backup(made["id"])
    finally:
        running.clear()
        watcher.join()
    progress.finish("done")

    percents = [s["percent"] for s in samples]
    assert percents == sorted(percents), "the bar went back"
    assert max(percents) < 100  # 100 only once it is done
    copying = [s for s in samples if s["phase"] == "copying"]
    assert len({s["percent"] for s in copying}) >= 5, copying  # it moved while the copies ran
    assert copying[-1]["percent"] > copying[0]["percent"] and copying[-1]["done"] > copying[0]["done"]
    assert {s["words"] for s in copying} == {"Copying files"} and copying[0]["unit"] == "bytes"
    assert any(s["eta"] and s["eta"].endswith(" left") for s in copying)
    assert progress.snapshot()["percent"] == 100 and progress.snapshot()["outcome"] == "done"


def _runner(config, database) -> JobRunner:
    return JobRunner(lambda progress=None: Strongroom(config, database=database, progress=progress))


def test_a_restore_that_fails_ends_rolled_back_in_red_words_not_at_100(config, database, monkeypatch):
    _files(config)
    runner = _runner(config, database)
    made = Strongroom(config, database=database).make_backup()
    give_the_restore_work(config.working_dir)

    real, calls = dbrestore.restore_collections, []

    def broken_once(*args, **kwargs):  # the restore's load fails; the rollback's works
        calls.append(args)
        if len(calls) == 1:
            raise OSError("the database went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(dbrestore, "restore_collections", broken_once)
    job = runner.wait(runner.start("restore", None, made["id"], "admin",
                                   lambda s: s.restore_backup(made["id"]), str, Strongroom(config, database)))
    shown = job.to_dict()
    assert shown["state"] == "failed" and shown["outcome"] == "rolled back"
    assert shown["outcome_words"] == "failed and rolled back"
    assert shown["percent"] < 100


def test_a_delete_job_says_removing_while_it_runs_and_ends_done_at_100(config, database):
    _files(config)
    runner = _runner(config, database)
    made = Strongroom(config, database=database).make_backup()
    with paused_job() as (reached, release):
        job = runner.start("delete", None, made["id"], "admin", lambda s: s.delete_backup(made["id"]), str,
                           Strongroom(config, database))
        assert reached.wait(30)
        running = job.to_dict()
        release.set()
    assert (running["step"], running["state"], running["outcome"]) == ("Removing", "running", None)
    assert running["percent"] < 100
    shown = runner.wait(job).to_dict()
    assert (shown["phase"], shown["step"], shown["percent"], shown["outcome"]) == ("removing", "Finished", 100, "done")


def test_an_operation_refused_before_it_began_says_refused(config, database):
    _files(config)
    service = Strongroom(config, database=database)
    made = service.make_backup()
    with OperationLock(service.lock_path, "backup", "someone"), pytest.raises(Busy) as refused:
        service.restore_backup(made["id"])
    assert outcome_of(refused.value) == "refused"
    assert outcome_of(RestoreFailed("x")) == "failed"  # unmarked: no claim of a rollback


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_the_terminal_line_shows_the_phase_the_bar_the_amount_and_the_time_left():
    now = [0.0]
    line = TerminalProgress(stream=Terminal(), interval=0)
    line.clock = lambda: now[0]
    line.plan([("copying", 2_000_000_000)])
    line("copying", 0, 2_000_000_000)
    now[0] = 4.0
    line("copying", 500_000_000, 2_000_000_000)
    drawn = line.line()
    assert drawn.startswith("Copying files")
    assert " 25%" in drawn and "500.0 MB of 2.0 GB" in drawn and "about 12 s left" in drawn, drawn
    line.end("rolled back")
    last = line.stream.getvalue().split("\r")[-1]
    assert "25%  failed and rolled back" in last and last.endswith("\n")


def test_nothing_is_written_on_a_pipe():
    pipe = io.StringIO()
    line = TerminalProgress(stream=pipe, interval=0)
    line("copying", 1, 2)
    line.done()
    assert pipe.getvalue() == ""



def test_a_backup_reports_records_dumped_then_bytes_read_then_the_flush(config, database):
    _files(config)
    progress = Recording()
    made = Strongroom(config, database=database, progress=progress).make_backup()
    steps = [step for step, _, _ in progress.calls]
    assert sorted(set(steps), key=steps.index) == ["dumping", "reading", "flushing"]
    dumped = [(done, total) for step, done, total in progress.calls if step == "dumping"]
    assert dumped[-1] == (sum(made["records"].values()),) * 2
    read = [(done, total) for step, done, total in progress.calls if step == "reading"]
    assert read[-1] == (made["bytes"], made["bytes"]) == (FILES * SIZE, FILES * SIZE)
    shown = progress.snapshot()
    assert shown["words"] == "Writing to disk" and 0 < shown["percent"] < 100


class Snapshots(Recording):
    """The model, keeping what a person read (``snapshot``) at every report of reading."""

    def __init__(self):
        super().__init__()
        self.read = []

    def __call__(self, step, done, total):
        super().__call__(step, done, total)
        if step == "reading":
            self.read.append(self.snapshot())


def test_a_first_backups_bar_shows_the_total_it_reads_from_its_first_report(config, database):
    """A first backup has no earlier one to say how much it reads: a walk that reads no
    content finds the total first, so the amount shows "x of total" and the bar moves
    with the bytes rather than sitting near its end."""
    live = scope_dir(config, Scope.site())
    (live / "many").mkdir(parents=True)
    for n in range(350):  # the snapshot reports every 100 files: several reports before the end
        (live / "many" / f"f{n:03}.bin").write_bytes(bytes([n % 256]) * 2000)
    progress = Snapshots()
    made = Strongroom(config, database=database, progress=progress).make_backup()
    assert len(progress.read) >= 3
    assert all(shown["total"] == made["bytes"] for shown in progress.read), progress.read
    assert [shown["done"] for shown in progress.read] == sorted(shown["done"] for shown in progress.read)
    assert progress.read[0]["done"] < made["bytes"]


def test_a_restores_bar_does_not_count_on_flushing_bytes_it_never_copied():
    """A restore that copies little (most files linked, as after a small change) flushes
    little: the time left once the copy is over is the records' load and the switch,
    not a flush of the whole backup's bytes (the bar went from 26 % to done)."""
    from strongroom.progress_model import restore_plan

    now = [0.0]
    model = ProgressModel(clock=lambda: now[0])
    manifest = {"files": {"entries": 4000, "bytes": 706_000_000}, "collections": {"project": {"count": 100}}}
    model.plan(restore_plan(manifest))
    for step, total, seconds in (("checking", 4000, 0.1), ("saving", 4000, 1.0), ("copying", 706_000_000, 1.0)):
        model(step, 0, total)
        now[0] += seconds
        model(step, total, total)
    model("flushing", 0, 0)  # nothing was copied: nothing to flush
    left = model.snapshot()["eta_seconds"]
    assert left < 0.5, left  # the load of 100 records and the switch; not 1.4 s of flushing 706 MB
    assert model.fraction() > 0.8


def test_the_terminal_lines_percent_and_bar_are_the_bytes_shown_beside_them():
    """Issue 21: the line said "17%  194.1 MB of 2.1 GB" (the whole operation's time-weighted
    share beside the phase's bytes). The bar and the percentage are the phase's done /
    total, the figures beside them; "(3/6)" says which phase; the time left is the whole's."""
    from strongroom.progress_model import restore_plan

    now = [0.0]
    line = TerminalProgress(stream=Terminal(), interval=0)
    line.clock = lambda: now[0]
    line.plan(restore_plan({"files": {"entries": 5048, "bytes": 2_100_000_000}, "collections": {"p": {"count": 329}}}))
    for step, total, seconds in (("checking", 5048, 0.2), ("saving", 5048, 2.0)):
        line(step, 0, total)
        now[0] += seconds
        line(step, total, total)
    line("copying", 0, 2_100_000_000)
    now[0] += 1.0
    line("copying", 194_100_000, 2_100_000_000)

    drawn = line.line()
    assert drawn.startswith("Copying files (3/6)") and "194.1 MB of 2.1 GB" in drawn, drawn
    assert "]   9%  " in drawn and "[##----" in drawn, drawn  # 194.1 / 2,100 of the bar, not the whole's share
    assert line.snapshot()["percent"] > 9  # the whole operation's share (the web's bar) is another figure
    line("flushing", 0, 0)  # nothing to flush: that phase is done
    assert "] 100%  0 B" in line.line()


def test_every_line_a_restore_draws_has_its_percent_and_bar_from_the_figures_it_shows(config, database):
    _files(config)
    service = Strongroom(config, database=database)
    made = service.make_backup()
    _emptied(config)

    class Lines(TerminalProgress):
        def __init__(self):
            super().__init__(stream=Terminal(), interval=0)
            self.seen = []

        def draw(self):
            self.seen.append((self.snapshot(), self.line()))
            super().draw()

    service.progress = Lines()
    service.restore_backup(made["id"])

    copying = [(shown, drawn) for shown, drawn in service.progress.seen if shown["phase"] == "copying"]
    assert copying and copying[-1][0]["done"] == copying[-1][0]["total"] == made["bytes"]
    for shown, drawn in service.progress.seen:
        if shown["total"]:
            share = min(shown["done"] / shown["total"], 1)
            bar = re.search(r"\[(#*)-*\] +(\d+)%  ", drawn)
            assert (len(bar.group(1)), int(bar.group(2))) == (int(30 * share), int(100 * share)), drawn


def test_a_restore_of_one_file_counts_the_bytes_of_that_file_not_of_the_site(config, database):
    _files(config)
    service = Strongroom(config, database=database)
    made = service.make_backup()
    _emptied(config)
    progress = Recording()
    service.progress = progress

    service.restore_parts(made["id"], ["big/file-007.bin"])

    copying = [(done, total) for step, done, total in progress.calls if step == "copying"]
    assert copying[-1] == (SIZE, SIZE), copying  # was: the site's bytes twice over (pre-restore + backup)
