"""Strongroom against the tools a user would otherwise pick, on the same data, in one run.

    ./run bench                       the large demo site (~2 GB, 4,565 files), 3 runs each
    ./run bench --quick               the small demo site, 1 run each (what CI runs)
    ./run bench --site DIR --runs 5   a folder of yours instead of the demo site
    ./run bench --warm                keep the page cache (each command is followed by sync, warm or cold)
    ./run bench --scale 200k          200,000 files of 1-8 KB in 2,000 folders
    ./run bench --only startup        ``strongroom --version``, and ``strongroom list`` on 1,000
                                      real backups of a small site (100 with --quick)
    ./run bench --compare /work/wt-old/.venv/bin/strongroom
                                      another build's strongroom too, run after run on a
                                      copy of the same site: old and new side by side

Each scenario runs every tool in turn, run after run (alternately, so that a busy
neighbour slows all of them alike), and reports the median, min and max seconds, the
ratio of Strongroom's median to its anchor's and the target of issue 5 (the start-up rows
have absolute targets in seconds: their ratio is the median over the target). The data goes
below ``--dir`` (default ``/tmp/strongroom-bench``), the results to ``results.json``
there (or ``--json``). Anchors not installed (``cp``, ``rsync``, ``restic``, ``borg``)
are reported as missing and their rows skipped. The page cache is dropped between runs
when that is allowed (root on the host) unless ``--warm``; otherwise every run of every
tool is warm-cache. Every timed command is followed by ``sync``, in both modes, inside its
time: Strongroom makes its backups and restores durable before it returns, so the anchors'
writes are flushed alike (issue 12's "both flushed"). Every timed command's own CPU seconds (user+sys) and peak resident
memory are recorded too (``wait4``): the CPU ratio is what to compare on a busy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workloads as w

TARGETS = [  # row, what Strongroom does, anchor scenario/tool, target ratio (issue 12)
    ("first_backup", "first site backup", ("first", "rsync"), 1.0),
    ("unchanged_backup_vs_rsync", "second site backup, nothing changed", ("unchanged", "rsync --link-dest"), 1.0),
    ("unchanged_backup_vs_restic", "second site backup, nothing changed", ("unchanged", "restic"), 0.4),
    ("changed_1pct_backup", "backup after 1% of files changed", ("changed", "rsync --link-dest"), 1.0),
    ("touched_backup", "backup after every file was touched", ("touched", "restic"), 0.5),
    ("restore_empty", "full restore into an empty folder", ("restore_empty", "cp -a"), 1.3),
    ("restore_empty_durable", "full restore into an empty folder, both flushed to disk",
     ("restore_empty", "cp -a && sync"), 1.1),
    ("restore_unchanged", "restore onto an unchanged folder", ("restore_empty", "cp -a && sync"), 0.15),
    ("restore_unchanged_vs_rsync", "restore onto an unchanged folder", ("restore_unchanged", "rsync -a --delete"),
     2.0),
    # No target: what a restore costs once anything differs (a restore onto the backup's
    # very state changes nothing and skips its work), against the same 1 % put back by rsync.
    ("restore_changed_vs_rsync", "restore after 1% of files changed", ("restore_changed", "rsync -a --delete"),
     None),
    ("disk_10_backups", "disk used by 10 backups of an unchanged site", ("disk", "site"), 1.02),
    ("project_backup", "backup of one project (first)", ("first", "strongroom"), 0.1),
    ("dump_records", "dump of the records (embedded engine)", ("dump", "find()"), 1.5),
]
SCENARIO_OF = {"first_backup": "first", "unchanged_backup_vs_rsync": "unchanged",
               "unchanged_backup_vs_restic": "unchanged", "changed_1pct_backup": "changed",
               "touched_backup": "touched", "restore_empty": "restore_empty", "restore_empty_durable": "restore_empty",
               "restore_unchanged": "restore_unchanged", "restore_unchanged_vs_rsync": "restore_unchanged",
               "restore_changed_vs_rsync": "restore_changed",
               "disk_10_backups": "disk",
               "project_backup": "project", "dump_records": "dump"}
MEMORY_LIMIT = 300 << 20
SCALE_TARGETS = {"first_backup": 1.5, "unchanged_backup_vs_rsync": 1.5, "restore_unchanged_vs_rsync": 2.0,
                 "restore_changed_vs_rsync": None}
SCALE_MEMORY_LIMIT = 100 << 20
SCALE_STEPS = ("unchanged", "restores")
# The scale rows' peak memory: the largest of these operations' (those that ran).
SCALE_MEMORY_SCENARIOS = {"first": "first backup", "unchanged": "unchanged backup",
                          "restore_empty": "restore into an empty folder", "restore_unchanged": "unchanged restore",
                          "restore_changed": "restore after 1% changed"}
# Start-up rows: absolute targets in seconds (issue 12), the number of backups listed.
STARTUP_TARGETS = {"startup_version": ("version", "`strongroom --version`", 0.15),
                   "startup_list": ("list", "`strongroom list`", 0.5)}
STARTUP_BACKUPS, QUICK_STARTUP_BACKUPS = 1_000, 100
STARTUP_RUNS = 5  # at least: these take a tenth of a second, and the median needs a few


class Bench:
    def __init__(self, root: Path, runs: int, quick: bool, compare: str | None = None, scale: int = 0):
        self.root, self.runs, self.quick, self.scale = root, runs, quick, scale
        self.site = root / "site"
        self.work = self.site / "working" / "pilot"
        self.anchors = root / "anchors"
        self.missing = w.missing_tools()
        if scale:  # restic and borg take minutes on 200,000 files and have no row there
            self.missing = sorted({*self.missing, "restic", "borg"})
        self.times: dict[str, dict[str, list[float]]] = {}
        self.cpu: dict[str, dict[str, list[float]]] = {}
        self.peaks: dict[str, dict[str, int]] = {}
        # (tool name, command, data dir): this build's strongroom, and the one compared with
        self.variants = [("strongroom", w.STRONGROOM, self.site)]
        if compare:
            self.variants.append(("strongroom-old", compare, root / "site-old"))

    def has(self, tool: str) -> bool:
        return tool not in self.missing

    def note(self, scenario: str, tool: str, seconds: float) -> None:
        cpu, peak = w.LAST.pop("cpu", 0.0), w.LAST.pop("maxrss", 0)  # 0: timed in this process
        self.times.setdefault(scenario, {}).setdefault(tool, []).append(seconds)
        self.cpu.setdefault(scenario, {}).setdefault(tool, []).append(cpu)
        self.peaks.setdefault(scenario, {})[tool] = max(peak, self.peaks.get(scenario, {}).get(tool, 0))
        print(f"  {scenario:18} {tool:20} {seconds:8.3f} s  cpu {cpu:7.3f} s  peak {peak / 2**20:6.1f} MB",
              file=sys.stderr, flush=True)

    def ours(self, scenario: str, *args: str, remove_backups: bool = False) -> None:
        """Time every compared build's ``strongroom ARGS`` on its own copy of the site."""
        for tool, command, data in self.variants:
            if remove_backups:
                w.remove(data / "backups")
            self.note(scenario, tool, w.strongroom_timed(data, *args, command=command))

    def works(self) -> list[Path]:
        return [data / "working" / "pilot" for _, _, data in self.variants]

    # -- scenarios ------------------------------------------------------------------

    def first(self) -> None:
        a = self.anchors
        for _ in range(self.runs):
            self.ours("first", "backup", remove_backups=True)
            if self.has("rsync"):
                w.remove(a / "rsync-0")
                self.note("first", "rsync", w.timed("rsync", "-a", f"{self.work}/", a / "rsync-0"))
            w.remove(a / "cp-full")
            self.note("first", "cp -a", w.timed("cp", "-a", self.work, a / "cp-full"))
            if self.scale:
                continue
            if self.has("restic"):
                w.restic_init(a / "restic")
                self.note("first", "restic", w.restic_backup(a / "restic", self.work))
            if self.has("borg"):
                w.borg_init(a / "borg")
                self.note("first", "borg", w.borg_create(a / "borg", self.work))

    def incremental(self, scenario: str, change) -> None:
        """A backup by every tool after ``change(run)`` altered the site (or did nothing)."""
        a = self.anchors
        for run in range(self.runs):
            for work in self.works():
                change(work, run)
            self.ours(scenario, "backup")
            if self.has("rsync"):
                previous, new = a / f"rsync-{self.rsync_n}", a / f"rsync-{self.rsync_n + 1}"
                w.remove(new)
                self.note(scenario, "rsync --link-dest",
                          w.timed("rsync", "-a", f"--link-dest={previous}", f"{self.work}/", new))
                if scenario != "unchanged":
                    self.rsync_n += 1
                else:
                    w.remove(new)
            if self.has("restic"):
                self.note(scenario, "restic", w.restic_backup(a / "restic", self.work))
            if self.has("borg"):
                self.note(scenario, "borg", w.borg_create(a / "borg", self.work))

    def disk(self) -> None:
        """Top the site's backups up to 10 with nothing changed, then weigh them."""
        while len(json.loads(w.strongroom(self.site, "list", "--json"))) < 10:
            w.strongroom(self.site, "backup")
        self.disk_use = {"backups": w.disk_use(self.site / "backups"), "site": w.disk_use(self.work)}

    def restores(self) -> None:
        a = self.anchors
        latest = {tool: w.latest_backup(data, command=command) for tool, command, data in self.variants}
        for run in range(self.runs):
            for tool, command, data in self.variants:
                w.remove(data / "working" / "pilot")
                self.note("restore_empty", tool,
                          w.strongroom_timed(data, "restore", latest[tool], "--yes", command=command))
                self.note("restore_unchanged", tool,
                          w.strongroom_timed(data, "restore", latest[tool], "--yes", command=command))
                w.change_some(data / "working" / "pilot", 0.01, run)
                self.note("restore_changed", tool,
                          w.strongroom_timed(data, "restore", latest[tool], "--yes", command=command))
            w.remove(a / "cp-restore")
            self.note("restore_empty", "cp -a", w.timed("cp", "-a", a / "cp-full", a / "cp-restore"))
            # Strongroom flushes a restored tree before swapping it in; cp does not: the
            # same copy followed by sync is the like-for-like anchor.
            w.remove(a / "cp-restore")
            self.note("restore_empty", "cp -a && sync",
                      w.timed("sh", "-c", f"cp -a '{a / 'cp-full'}' '{a / 'cp-restore'}' && sync"))
            if self.has("rsync"):
                w.remove(a / "rsync-restore")
                self.note("restore_empty", "rsync", w.timed("rsync", "-a", f"{a / 'cp-full'}/", a / "rsync-restore"))
                self.note("restore_unchanged", "rsync -a --delete",
                          w.timed("rsync", "-a", "--delete", f"{a / 'cp-full'}/", a / "rsync-restore"))
                w.change_some(a / "rsync-restore", 0.01, run)
                self.note("restore_changed", "rsync -a --delete",
                          w.timed("rsync", "-a", "--delete", f"{a / 'cp-full'}/", a / "rsync-restore"))
            if self.has("restic"):
                w.remove(a / "restic-restore")
                self.note("restore_empty", "restic", w.timed("restic", "-r", a / "restic", "restore", "latest",
                                                             "--target", a / "restic-restore"))
            if self.has("borg"):
                w.remove(a / "borg-restore")
                (a / "borg-restore").mkdir()
                last = w.run("borg", "list", "--last", "1", "--short", a / "borg").strip()
                self.note("restore_empty", "borg",
                          w.timed("borg", "extract", f"{a / 'borg'}::{last}", cwd=a / "borg-restore"))

    def projects(self) -> None:
        folders = sorted(p.name for p in (self.work / "project").iterdir())
        for run in range(self.runs):
            project = folders[run % len(folders)]
            for tool, command, data in self.variants:
                for backups in (data / "backups" / ".strongroom", data / "backups"):  # this layout, an older build's
                    w.remove(backups / "pilot" / "project")
                self.note("project", tool, w.strongroom_timed(data, "backup", "--project", project, command=command))

    def dump(self, count: int) -> None:
        database = w.records_database(self.anchors / "records", count)
        for _ in range(self.runs):
            dump, find = w.time_dump_and_find(database, self.anchors / "records-dump")
            self.note("dump", "strongroom", dump)
            self.note("dump", "find()", find)

    def startup(self, backups: int) -> None:
        """``strongroom --version``, and ``strongroom list`` on a scope of ``backups`` real
        backups (made once, by this build's service in one child process), ``STARTUP_RUNS`` times
        or more each: fixed costs, against absolute targets. The interpreter's own start
        (``python -c pass``) is timed beside them, the floor under both."""
        data = self.anchors / f"startup-{backups}"
        made = w.many_backups(data, backups)
        listed = len(json.loads(w.strongroom(data, "list", "--json")))
        if listed != backups:
            raise RuntimeError(f"startup: {backups:,} backups were made, and list shows {listed:,}")
        print(f"  startup: {backups:,} backups made in {made:.1f} s", file=sys.stderr, flush=True)
        python = Path(w.STRONGROOM).with_name("python")
        for _ in range(max(STARTUP_RUNS, self.runs)):
            for tool, command, _data in self.variants:
                self.note("version", tool, w.timed(command, "--version"))
                self.note("list", tool, w.strongroom_timed(data, "list", command=command))
            self.note("version", "python -c pass", w.timed(python, "-c", "pass"))
        self.startup_backups = backups

    def memory(self, counts: list[int]) -> dict[int, int]:
        peaks = {}
        for count in counts:
            data = self.anchors / f"memory-{count}"
            w.remove(data)
            w.tiny_tree(data / "working" / "pilot", count)
            w.empty_database(data)
            peaks[count] = w.peak_memory_of_backup(data)
            w.remove(data)
            print(f"  memory {count:>8} files {peaks[count] / 2**20:8.1f} MB", file=sys.stderr, flush=True)
        return peaks


def make_site(bench: Bench, site: Path | None, quick: bool) -> None:
    w.remove(bench.site)
    if bench.scale:
        w.small_files_tree(bench.work, bench.scale, max(1, bench.scale // 100))
        w.empty_database(bench.site)
    elif site:
        bench.work.parent.mkdir(parents=True)
        w.run("cp", "-a", site, bench.work)
        w.empty_database(bench.site)
    else:
        size = ["--size", "small"] if quick else ["--size", "large", "--projects", "40", "--editions", "5"]
        w.strongroom(bench.site, "demo", "init", *size)
    for _, _, data in bench.variants[1:]:  # the compared build gets the same site, records and all
        w.remove(data)
        w.run("cp", "-a", bench.site, data)


def compile_builds(bench: Bench) -> None:
    """Write the bytecode of every compared build's package first: with
    PYTHONDONTWRITEBYTECODE set (or a read-only checkout) each command would otherwise
    compile its modules from source at every start, ~0.1 s that no installed copy pays."""
    probe = "import compileall, os, strongroom; compileall.compile_dir(os.path.dirname(strongroom.__file__), quiet=1)"
    for _, command, _ in bench.variants:
        python = Path(command).with_name("python")
        w.run(python if python.exists() else sys.executable, "-c", probe)


def summarise(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": len(values)}


def rows(bench: Bench, peaks: dict[int, int]) -> list[dict]:
    found = []
    for name, what, (scenario, tool), target in TARGETS:
        if bench.scale:
            if name not in SCALE_TARGETS:
                continue
            target = SCALE_TARGETS[name]
        row = {"row": name, "operation": what, "target": target, "anchor": tool}
        if name == "disk_10_backups":
            if not getattr(bench, "disk_use", None) or "backups" not in bench.disk_use:
                found.append({**row, "skipped": "not run"})
                continue
            ours, theirs = bench.disk_use["backups"], bench.disk_use["site"]
            row.update(strongroom=ours, anchor_value=theirs, unit="bytes")
        else:
            mine = bench.times.get(SCENARIO_OF[name], {}).get("strongroom")
            other = bench.times.get(scenario, {}).get(tool)
            if not mine or not other:
                missing = tool.split()[0] in bench.missing
                found.append({**row, "skipped": f"{tool.split()[0]} is not installed" if missing else "not run"})
                continue
            ours, theirs = statistics.median(mine), statistics.median(other)
            row.update(strongroom=summarise(mine), anchor_value=summarise(other), unit="s")
            cpu_mine = bench.cpu.get(SCENARIO_OF[name], {}).get("strongroom")
            cpu_other = bench.cpu.get(scenario, {}).get(tool)
            if cpu_mine and cpu_other and statistics.median(cpu_mine) > 0 and statistics.median(cpu_other) > 0:
                row["cpu_ratio"] = statistics.median(cpu_mine) / statistics.median(cpu_other)
            old = bench.times.get(SCENARIO_OF[name], {}).get("strongroom-old")
            if old:
                row["old"] = summarise(old)
                row["old_ratio"] = statistics.median(old) / theirs if theirs else None
                row["change"] = ours / statistics.median(old) - 1
                old_cpu = bench.cpu.get(SCENARIO_OF[name], {}).get("strongroom-old")
                row["cpu_change"] = statistics.median(cpu_mine) / statistics.median(old_cpu) - 1
        row["ratio"] = ours / theirs if theirs else None
        row["met"] = None if target is None else row["ratio"] is not None and row["ratio"] <= target
        found.append(row)
    found.extend(startup_rows(bench))
    if bench.scale:
        found.append(scale_memory_row(bench))
        return found
    if not peaks:
        return found
    counts = sorted(peaks)
    top, low = peaks[counts[-1]], peaks[counts[0]]
    sublinear = top / low < counts[-1] / counts[0]
    found.append({"row": "peak_memory", "operation": f"peak memory, backup of a {counts[-1]:,}-file tree",
                  "strongroom": top, "unit": "bytes", "by_files": {str(k): v for k, v in peaks.items()},
                  "anchor": "300 MB", "anchor_value": MEMORY_LIMIT, "ratio": top / MEMORY_LIMIT, "target": 1.0,
                  "met": top <= MEMORY_LIMIT and sublinear, "sublinear": sublinear})
    return found


def startup_rows(bench: Bench) -> list[dict]:
    """``--version`` and ``list`` against their absolute targets: ratio = median / target."""
    found = []
    backups = getattr(bench, "startup_backups", None)
    for name, (scenario, what, seconds) in STARTUP_TARGETS.items():
        times = bench.times.get(scenario, {}).get("strongroom")
        if not times:
            continue
        operation = f"{what} on {backups:,} backups" if scenario == "list" else what
        cpu = bench.cpu[scenario]["strongroom"]
        row = {"row": name, "operation": operation, "strongroom": summarise(times), "cpu": summarise(cpu),
               "unit": "s", "anchor": "target, seconds", "anchor_value": seconds, "ratio": statistics.median(times) / seconds,
               "cpu_ratio": statistics.median(cpu) / seconds, "target": 1.0}
        row["met"] = row["ratio"] <= 1.0
        old = bench.times[scenario].get("strongroom-old")
        if old:
            old_cpu = bench.cpu[scenario]["strongroom-old"]
            row.update(old=summarise(old), old_ratio=statistics.median(old) / seconds,
                       change=statistics.median(times) / statistics.median(old) - 1,
                       cpu_change=statistics.median(cpu) / statistics.median(old_cpu) - 1)
        found.append(row)
    return found


def scale_memory_row(bench: Bench) -> dict:
    """The peak memory at ``--scale``: the largest of the backups' and restores' measured."""
    measured = {scenario: bench.peaks[scenario]["strongroom"] for scenario in SCALE_MEMORY_SCENARIOS
                if bench.peaks.get(scenario, {}).get("strongroom")}
    operation = f"peak memory at {bench.scale:,} files"
    if not measured:  # e.g. --only startup
        return {"row": "peak_memory", "operation": operation, "anchor": "100 MB", "target": 1.0, "skipped": "not run"}
    peak = max(measured.values())
    which = ", ".join(SCALE_MEMORY_SCENARIOS[scenario] for scenario in measured)
    return {"row": "peak_memory", "operation": f"{operation} ({which})", "strongroom": peak, "unit": "bytes", "by_operation": measured, "anchor": "100 MB",
            "anchor_value": SCALE_MEMORY_LIMIT, "ratio": peak / SCALE_MEMORY_LIMIT, "target": 1.0,
            "met": peak <= SCALE_MEMORY_LIMIT}


def show(value, unit: str) -> str:
    if isinstance(value, dict):
        return f"{value['median']:.3f} s ({value['min']:.2f}-{value['max']:.2f})"
    return f"{value / 2**20:.1f} MB" if unit == "bytes" else str(value)


def _target(row: dict) -> str:
    return "none (for reference)" if row["target"] is None else f"≤ {row['target']}"


def print_report(result: dict) -> None:
    print(f"\nStrongroom benchmark: {result['site']}; {result['runs']} run(s) each; "
          f"{'cold' if result['cold_cache'] else 'warm'} cache; {result['machine']['cpus']} CPUs")
    if result["missing"]:
        print(f"missing (skipped): {', '.join(result['missing'])}")
    compared = any("old" in row for row in result["rows"])
    extra = " old build | its ratio | change (wall / CPU) |" if compared else ""
    print(f"\n| operation | Strongroom | anchor | anchor's | ratio | CPU ratio | target | met |{extra}")
    print("|---" * (8 + (3 if compared else 0)) + "|")
    for row in result["rows"]:
        if "skipped" in row:
            print(f"| {row['operation']} | | {row['anchor']} | skipped: {row['skipped']} | | | {_target(row)} | |")
            continue
        cpu = f"{row['cpu_ratio']:.2f}" if "cpu_ratio" in row else ""
        ours = show(row["strongroom"], row["unit"]) + (f", CPU {row['cpu']['median']:.3f} s" if "cpu" in row else "")
        line = (f"| {row['operation']} | {ours} | {row['anchor']} | "
                f"{show(row['anchor_value'], row['unit'])} | {row['ratio']:.2f} | {cpu} | {_target(row)} | "
                f"{'—' if row['met'] is None else 'yes' if row['met'] else 'NO'} |")
        if "old" in row:
            line += (f" {show(row['old'], 's')} | {row['old_ratio']:.2f} | "
                     f"{row['change']:+.0%} / {row['cpu_change']:+.0%} |")
        print(line)
    print("\nEvery tool, median seconds (min-max), median CPU seconds, peak memory:")
    for scenario, tools in result["times"].items():
        print(f"  {scenario}: " + "; ".join(
            f"{tool} {show(summarise(v), 's')} cpu {statistics.median(result['cpu'][scenario][tool]):.2f} s "
            f"{result['peaks'][scenario][tool] / 2**20:.0f} MB" for tool, v in tools.items()))


STEPS = ("unchanged", "disk", "changed", "touched", "restores", "projects", "dump", "memory", "startup")
SITE_FREE_STEPS = {"dump", "memory", "startup"}


def _count(text: str) -> int:
    """200000, 200k or 1m."""
    text = text.strip().lower()
    factor = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(text.rstrip("km")) * factor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small demo site, 1 run each: seconds, for CI")
    parser.add_argument("--runs", type=int, help="runs per tool and scenario (default 3; 1 with --quick)")
    parser.add_argument("--dir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "strongroom-bench",
                        help="where the data goes (removed and made again)")
    parser.add_argument("--site", type=Path, help="benchmark a copy of this folder instead of the demo site")
    parser.add_argument("--json", type=Path, help="where to write the results (default DIR/results.json)")
    parser.add_argument("--keep", action="store_true", help="keep the data afterwards")
    parser.add_argument("--warm", action="store_true",
                        help="keep the page cache (no drop between runs); in both modes each command is followed by sync")
    parser.add_argument("--scale", metavar="N", type=_count,
                        help="a tree of N files of 1-8 KB in N/100 folders (e.g. 200k) instead of the demo site: "
                             "first and unchanged backup, unchanged restore, peak memory")
    parser.add_argument("--compare", metavar="STRONGROOM",
                        help="another build's strongroom command (e.g. an old checkout's .venv/bin/strongroom), "
                             "run after this one's on a copy of the same site, every run")
    parser.add_argument("--only", metavar="STEPS", help=f"comma-separated steps to run after the first backup "
                        f"(default all: {','.join(STEPS)}); {', '.join(sorted(SITE_FREE_STEPS))} alone make "
                        "no site and no first backup")
    args = parser.parse_args(argv)
    runs = args.runs or (1 if args.quick else 3)
    bench = Bench(args.dir.resolve(), runs, args.quick, args.compare, args.scale or 0)
    bench.anchors.mkdir(parents=True, exist_ok=True)
    w.WARM = args.warm
    cold = not args.warm and w.can_drop_caches()
    wanted = set(args.only.split(",")) if args.only else set(SCALE_STEPS if args.scale else STEPS)
    if wanted - set(STEPS):
        parser.error(f"unknown steps: {', '.join(sorted(wanted - set(STEPS)))}")
    compile_builds(bench)
    bench.rsync_n = 0
    if not wanted <= SITE_FREE_STEPS:  # those make their own data: no site, no first backup
        make_site(bench, args.site, args.quick)
        bench.first()
    if "unchanged" in wanted:
        bench.incremental("unchanged", lambda work, run: None)
    if "disk" in wanted:
        bench.disk()
    if "changed" in wanted:
        bench.incremental("changed", lambda work, run: w.change_some(work, 0.01, run))
    if "touched" in wanted:
        bench.incremental("touched", lambda work, run: w.touch_all(work))
    if "restores" in wanted:
        bench.restores()
    if "projects" in wanted and not args.site and not args.scale:  # a given folder has no projects in the database
        bench.projects()
    if "startup" in wanted:  # before dump, which loads the service into this process: a child's peak
        bench.startup(QUICK_STARTUP_BACKUPS if args.quick else STARTUP_BACKUPS)  # memory starts from ours
    if "dump" in wanted:
        bench.dump(2_000 if args.quick else 200_000)
    peaks = {}
    if "memory" in wanted:
        peaks = bench.memory([1_000, 2_000, 4_000] if args.quick else [50_000, 100_000, 200_000])
    site = f"{args.scale:,} files of 1-8 KB" if args.scale else str(args.site) if args.site else (
        "small demo site" if args.quick else "large demo site")
    if wanted <= SITE_FREE_STEPS:
        site = f"no site (steps {', '.join(sorted(wanted))} make their own data)"
    result = {
        "site": site, "compared_with": args.compare,
        "files": len(w.files_of(bench.work)), "bytes": w.disk_use(bench.work), "runs": runs, "cold_cache": cold,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)},
        "missing": bench.missing, "rows": rows(bench, peaks), "times": bench.times, "cpu": bench.cpu,
        "peaks": bench.peaks,
    }
    out = args.json or bench.root / "results.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print_report(result)
    print(f"\nresults: {out}")
    if not args.keep:
        w.remove(bench.site, bench.anchors, *(data for _, _, data in bench.variants[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
