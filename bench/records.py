"""Is the site already the backup's state? And a site restore with one record changed, on a
MongoDB server with a large collection: this build, and another (``--compare``), in one run.

    .venv/bin/python bench/records.py                   200,015 records on FerretDB, 3 runs
    .venv/bin/python bench/records.py --records 50000 --runs 1
    .venv/bin/python bench/records.py --compare OLD/.venv/bin/strongroom
    .venv/bin/python bench/records.py --uri mongodb://host:port/   your own server, not FerretDB

Starts FerretDB on loopback (``scripts/build-peers``; SQLite handler, as the suite does)
unless ``--uri`` names a server, makes the small demo site there (``demo init``), grows its
``edition`` collection to ``--records`` records in all (300-1,000 bytes each, as the
issue's), backs it up, then times, run after run, each build in turn (the order
alternating) on the same site and the same backup:

- "already?": the answer alone, in the build's own process (``restore.whole.check_or_match``:
  the check before a restore and the comparison of files and records), and of that the
  records' comparison (``matching.records_match``) and the check alone; with the site
  unchanged, with one ``project`` record changed in place (same count, same size), and with
  one ``edition`` record changed in place half-way through the collection. Nothing is
  restored: the record is put back after each.
- ``strongroom restore <id> --yes`` onto the unchanged site (the command: start-up, check,
  answer) and after one ``project`` record changed in place (the whole restore: the
  pre-restore backup, the load and the swap).
- one plain read of every record (``find_raw_batches`` of every collection): what one
  full comparison cannot go below.
- a project restore, for a project of ``--project-editions`` editions (50) added to the
  grown site (``add_small_project``): ``strongroom restore <its backup> --project P --yes``
  and ``strongroom restore <the site backup> --project P --yes`` (the project taken out
  of the site backup), each after one of its editions changed in place and one added
  (with the project's id in hex); and one read of the project's editions by their
  ``projectId`` (no build): what finding them costs the server. ``--project-only`` runs
  these rows alone.
- the dump and the load (``measure_load``): ``strongroom backup`` (the site's files
  unchanged: mostly the records' dump) and a site restore after one ``edition`` record
  changed (every record loaded again), each with its peak resident memory; and, once a
  run, the anchors: ``mongodump --db`` and ``mongorestore --drop`` of that dump, when
  ``mongodump``/``mongorestore`` are on ``PATH`` or in ``STRONGROOM_MONGO_TOOLS`` (else
  the row says why it is skipped), and the pymongo-only anchor on every machine: a plain
  ``find()`` of every collection written to ``.bson`` files and an ``insert_many`` of
  them into a database of its own. Ratios against the anchors close the report.
  ``--rows load`` runs these and the two restores above, not the "already?" probes.

Warm cache (the database's files stay in memory; one untimed read of every record first). Prints medians (min-max) per row and
build, the load average before and after, and writes every run to DIR/records.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))  # the suite's FerretDB starter: one of it
import workloads as w

DATABASE = "bench"
CHANGES = ("unchanged", "project changed", "edition changed half-way")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_015, help="records in all (default 200,015)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--compare", metavar="STRONGROOM", help="another build's strongroom command")
    parser.add_argument("--uri", help="a MongoDB server of yours (mongodb://host:port/) instead of FerretDB")
    parser.add_argument("--dir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "strongroom-bench-records")
    parser.add_argument("--keep", action="store_true", help="keep the data afterwards")
    parser.add_argument("--project-editions", type=int, default=50, help="editions of the restored project (50)")
    parser.add_argument("--project-only", action="store_true", help="only the project restore rows")
    parser.add_argument("--rows", choices=("all", "load"), default="all",
                        help="load: the restores, backups and anchors only, not the 'already?' probes")
    parser.add_argument("--probe", nargs=2, metavar=("DATA_DIR", "BACKUP"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe:
        print(json.dumps(probe(Path(args.probe[0]), args.probe[1])))
        return 0
    w.WARM = True
    w.remove(args.dir)
    args.dir.mkdir(parents=True)
    server = None
    if args.uri is None:
        from servers import ferretdb_binary, start_ferretdb

        binary, reason = ferretdb_binary()
        if binary is None:
            print(f"no FerretDB: {reason}", file=sys.stderr)
            return 2
        server = start_ferretdb(binary, args.dir / "ferretdb", timeout=120)
    uri = (args.uri or server.uri(DATABASE)).rstrip("/")
    uri = uri if uri.endswith("/" + DATABASE) else f"{uri}/{DATABASE}"
    os.environ["STRONGROOM_DB"] = uri
    try:
        result = measure(args, uri)
    finally:
        if server is not None:
            server.stop()
        if not args.keep:
            w.remove(args.dir / "site", args.dir / "ferretdb")
    (args.dir / "records.json").write_text(json.dumps(result, indent=2))
    print_report(result)
    return 0


def measure(args, uri: str) -> dict:
    import pymongo

    site = args.dir / "site"
    load = [os.getloadavg()]
    w.strongroom(site, "demo", "init", "--size", "small")
    database = pymongo.MongoClient(uri).get_default_database()
    started = time.perf_counter()
    grow(database, args.records)
    grown = time.perf_counter() - started
    project = add_small_project(database, site, args.project_editions)
    started = time.perf_counter()
    w.strongroom(site, "backup")
    backed_up = time.perf_counter() - started
    backup = w.latest_backup(site)
    read_all(database)  # untimed: the first run of the first build does not pay for a cold start
    builds = {"this": w.STRONGROOM, **({"compare": args.compare} if args.compare else {})}
    runs: dict[str, dict[str, list]] = {build: {} for build in builds}
    for run in range(args.runs):
        order = list(builds) if run % 2 == 0 else list(reversed(builds))
        for build in order:
            project_restores(database, site, backup, project, builds[build], runs[build])
        runs.setdefault("find()", {}).setdefault("one read of the project's editions", []).append(
            read_project(database, project))
        if args.project_only:
            continue
        for build in order:
            note = runs[build]
            for change in CHANGES if args.rows == "all" else ():
                undo = make_change(database, change)
                answer = probe_in(builds[build], site, backup)
                undo()
                if answer["matched"] is not (change == "unchanged"):
                    raise RuntimeError(f"{build}: '{change}' answered {answer['matched']}")
                for key in ("answer", "records", "check"):
                    note.setdefault(f"{change}: {key}", []).append(answer[key])
            note.setdefault("restore, unchanged", []).append(restore(site, backup, builds[build], expect_new=0))
            undo = make_change(database, "project changed")
            note.setdefault("restore, project changed", []).append(restore(site, backup, builds[build], expect_new=1))
            measure_load(note, database, site, backup, builds[build])
        runs.setdefault("find()", {}).setdefault("one read of every record", []).append(read_all(database))
        measure_anchors(runs.setdefault("anchors", {}), database, uri, args.dir / "anchor")
    load.append(os.getloadavg())
    counts = {name: database[name].estimated_document_count() for name in sorted(database.list_collection_names())
              if not name.startswith(("strongroom", "system."))}
    return {"records": sum(counts.values()), "collections": counts, "runs": args.runs, "load": load,
            "grow_seconds": grown, "backup_seconds": backed_up, "builds": builds, "times": runs}


def add_small_project(database, site: Path, editions: int) -> str:
    """A project of ``editions`` editions (a fifth with its id in hex, as apps store either)
    beside the grown ones: a copy of the first project's record and folder; backed up
    once. Returns its id."""
    import shutil

    from bson import ObjectId

    first = database.project.find_one({}, sort=[("_id", 1)])
    record = {**first, "_id": ObjectId(), "title": f"{editions} editions"}
    database.project.insert_one(record)
    projects = next(path for path in (site / "working").iterdir() if path.is_dir()) / "project"
    shutil.copytree(projects / str(first["_id"]), projects / str(record["_id"]), symlinks=True)
    rng = random.Random(50)
    database.edition.insert_many(
        [{"projectId": record["_id"] if n % 5 else str(record["_id"]), "title": f"Small {n}", "n": n,
          "description": rng.randbytes(rng.randint(120, 460)).hex()} for n in range(editions)])
    project = str(record["_id"])
    w.strongroom(site, "backup", "--project", project)
    return project


def project_restores(database, site: Path, site_backup: str, project: str, command: str, note: dict) -> None:
    """The two project restore rows, each after one edition of the project changed in
    place and one added; each must make one pre-restore backup and leave the project's
    editions exactly as backed up. Then the site backup is restored, untimed: a project
    restore writes the records that differ by ``_id``, which moves them in the
    collection's natural order, and swaps the project's folder, which sets its parent's
    time; the rows after these want the site exactly as the site backup has it (a site
    restore leaves a collection as it is only when its dump is the backup's byte for
    byte, in the same order, and "already the backup's state?" counts folder times)."""
    own_backup = json.loads(w.strongroom(site, "list", "--project", project, "--json"))[-1]["id"]
    for row, backup in (("project restore, its own backup", own_backup),
                        ("project restore, out of the site backup", site_backup)):
        wanted = _project_editions(database, project)
        change_project(database, project)
        note.setdefault(row, []).append(restore_project(site, backup, project, command))
        if _project_editions(database, project) != wanted:
            raise RuntimeError(f"{command}: {row} did not leave the project's editions as backed up")
    w.strongroom(site, "restore", site_backup, "--yes", command=command)


def _project_editions(database, project: str) -> list:
    from bson import ObjectId

    return sorted(database.edition.find({"projectId": {"$in": [ObjectId(project), project]}}),
                  key=lambda document: str(document["_id"]))


def change_project(database, project: str) -> None:
    """One edition of the project changed in place, one added with the project's id in hex."""
    from bson import ObjectId

    edition = database.edition.find_one({"projectId": ObjectId(project)})
    database.edition.update_one({"_id": edition["_id"]}, {"$set": {"title": edition["title"] + "!"}})
    database.edition.insert_one({"projectId": project, "title": "added since", "n": -1})


def restore_project(site: Path, backup: str, project: str, command: str) -> float:
    """Seconds of ``strongroom restore BACKUP --project P --yes``; it must make one pre-restore backup."""
    listed = lambda: len(json.loads(w.strongroom(site, "list", "--project", project, "--json")))
    before = listed()
    seconds = w.strongroom_timed(site, "restore", backup, "--project", project, "--yes", command=command)
    if listed() - before != 1:
        raise RuntimeError(f"{command}: the project restore made {listed() - before} pre-restore backups, not 1")
    return seconds


def read_project(database, project: str) -> float:
    from bson import ObjectId

    started = time.perf_counter()
    for _ in database.edition.find_raw_batches({"projectId": {"$in": [ObjectId(project), project]}}):
        pass
    return time.perf_counter() - started


def grow(database, records: int) -> None:
    """``edition`` records (300-1,000 bytes, of the demo's projects) up to ``records`` in all."""
    present = sum(database[name].count_documents({}) for name in database.list_collection_names()
                  if not name.startswith(("strongroom", "system.")))
    projects = [project["_id"] for project in database.project.find({}, {"_id": 1})]
    rng = random.Random(23)
    for start in range(present, records, 5_000):
        database.edition.insert_many(
            [{"projectId": projects[n % len(projects)], "title": f"Edition {n}", "n": n, "published": n % 3 == 0,
              "description": rng.randbytes(rng.randint(120, 460)).hex()} for n in range(start, min(records, start + 5_000))])


def make_change(database, change: str):
    """Change one record in place (same count, same size) and return how to put it back."""
    if change == "unchanged":
        return lambda: None
    if change == "project changed":
        name, document = "project", database.project.find_one({})
    else:
        name = "edition"
        document = database.edition.find_one({}, skip=database.edition.estimated_document_count() // 2)
    field = next(key for key, value in document.items() if key != "_id" and isinstance(value, str))
    value = document[field]
    database[name].update_one({"_id": document["_id"]}, {"$set": {field: value[:-1] + ("x" if value[-1] != "x" else "y")}})
    return lambda: database[name].update_one({"_id": document["_id"]}, {"$set": {field: value}})


def probe_in(command: str, site: Path, backup: str) -> dict:
    """``probe`` in the interpreter of the build whose command is ``command``."""
    python = str(Path(command).with_name("python"))
    done = subprocess.run([python, str(Path(__file__).resolve()), "--probe", str(site), backup],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the probe failed: {done.stderr.strip()[-800:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def probe(data_dir: Path, backup: str) -> dict:
    """In this interpreter's build: seconds of the whole answer, of the records' comparison
    and of the check alone, and the answer."""
    from strongroom.check import verifying
    from strongroom.config import Config
    from strongroom.db import linking
    from strongroom.repo.checkedlist import CheckedList
    from strongroom.restore import matching, sources, whole
    from strongroom.scopes import Scope
    from strongroom.service import Strongroom

    sr = Strongroom(Config.from_env(data_dir=data_dir))
    path, manifest = sr.store.open(Scope.site(), backup)
    started = time.perf_counter()
    if verifying.check_before_restore(path, manifest, CheckedList(path, manifest)):
        raise RuntimeError("the backup fails its check")
    checked = time.perf_counter() - started
    source = sources.whole(path, manifest)
    queries = linking.replaced_queries(sr.config, Scope.site(), sr.database, source.bson_dir)
    started = time.perf_counter()
    matching.records_match(sr.database, source, queries)
    records = time.perf_counter() - started
    started = time.perf_counter()
    listing = CheckedList(path, manifest)
    matched = whole.check_or_match(sr, Scope.site(), path, manifest, listing, sources.whole(path, manifest, listing))
    return {"answer": time.perf_counter() - started, "records": records, "check": checked, "matched": matched}


def restore(site: Path, backup: str, command: str, expect_new: int) -> float:
    """Seconds of ``strongroom restore`` (and its sync); it must make ``expect_new`` pre-restore backups."""
    before = len(json.loads(w.strongroom(site, "list", "--json")))
    seconds = w.strongroom_timed(site, "restore", backup, "--yes", command=command)
    made = len(json.loads(w.strongroom(site, "list", "--json"))) - before
    if made != expect_new:
        raise RuntimeError(f"{command}: restore made {made} pre-restore backups, not {expect_new}")
    return seconds


def measure_load(note: dict, database, site: Path, backup: str, command: str) -> None:
    """The dump and the load of one build: a site backup, and a restore after one
    ``edition`` record changed (the whole collection loaded again), with the peak resident
    memory of each process (MB)."""
    seconds, peak = timed_with_peak(command, "--data-dir", site, "backup")
    note.setdefault("backup, site", []).append(seconds)
    note.setdefault("peak MB, backup", []).append(peak)
    make_change(database, "edition changed half-way")
    before = len(json.loads(w.strongroom(site, "list", "--json")))
    seconds, peak = timed_with_peak(command, "--data-dir", site, "restore", backup, "--yes")
    if len(json.loads(w.strongroom(site, "list", "--json"))) != before + 1:
        raise RuntimeError(f"{command}: the restore after an edition changed made no pre-restore backup")
    note.setdefault("restore, edition changed", []).append(seconds)
    note.setdefault("peak MB, restore edition changed", []).append(peak)


# Peak memory through a small launcher: a child forked from this process would count this
# process's own memory at the fork as its peak (Linux keeps the high-water mark of the
# memory an exec replaces); the launcher's children start from its few MB.
PEAK = ("import resource, subprocess, sys\n"
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def timed_with_peak(*args: str | Path) -> tuple[float, float]:
    """Wall seconds of the command and the ``sync`` after it (as ``workloads.timed``; the
    launcher's start, some 30 ms, included) and its peak resident memory in MB."""
    w.settle()
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PEAK, *map(str, args)], capture_output=True, text=True,
                          check=False)
    os.sync()
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} failed: {done.stderr.strip()[-500:]}")
    return seconds, int(done.stdout.split()[-1]) * 1024 / 1e6


def mongo_tools() -> tuple[dict[str, str], str]:
    """``mongodump`` and ``mongorestore`` from ``STRONGROOM_MONGO_TOOLS`` or ``PATH``, or
    none and why."""
    folder = os.environ.get("STRONGROOM_MONGO_TOOLS")
    found = {}
    for name in ("mongodump", "mongorestore"):
        path = Path(folder) / name if folder else None
        found[name] = str(path) if path and os.access(path, os.X_OK) else shutil.which(name)
    missing = [name for name, path in found.items() if not path]
    return ({}, f"{' and '.join(missing)} not found (on PATH or in STRONGROOM_MONGO_TOOLS)") if missing else (found, "")


def measure_anchors(note: dict, database, uri: str, folder: Path) -> None:
    """Once a run: ``mongodump --db`` of the site's database and ``mongorestore --drop`` of
    that dump (Strongroom's control collections left out of both), with their peak memory;
    and the pymongo-only anchor, a plain ``find()`` dump and an ``insert_many`` load."""
    tools, why = mongo_tools()
    server = uri.rsplit("/", 1)[0] + "/"
    if tools:
        w.remove(folder)
        for row, args in (("mongodump --db", (tools["mongodump"], f"--uri={server}", f"--db={DATABASE}",
                                              f"--out={folder}", "--excludeCollectionsWithPrefix=strongroom")),
                          ("mongorestore --drop", (tools["mongorestore"], f"--uri={server}", "--drop",
                                                   f"--nsInclude={DATABASE}.*", folder))):
            seconds, peak = timed_with_peak(*args, "--quiet")
            note.setdefault(row, []).append(seconds)
            note.setdefault(f"peak MB, {row.split()[0]}", []).append(peak)
    else:
        note["skipped: mongodump, mongorestore"] = why
    dumped, loaded = pymongo_anchor(database, folder / "pymongo")
    note.setdefault("pymongo find() dump", []).append(dumped)
    note.setdefault("pymongo insert_many load", []).append(loaded)


def pymongo_anchor(database, folder: Path) -> tuple[float, float]:
    """Seconds of a plain dump (``find_raw_batches`` of each collection into a ``.bson``
    file, synced) and of a plain load of those files (``insert_many`` of their raw
    documents in batches of 1,000) into a database of its own, dropped first."""
    import bson
    from bson.raw_bson import RawBSONDocument

    w.remove(folder)
    folder.mkdir(parents=True)
    names = [name for name in database.list_collection_names() if not name.startswith(("strongroom", "system."))]
    started = time.perf_counter()
    for name in names:
        with open(folder / f"{name}.bson", "wb") as out:
            out.writelines(database[name].find_raw_batches({}))
            out.flush()
            os.fsync(out.fileno())
    dumped = time.perf_counter() - started
    target = database.client[f"{DATABASE}_anchor"]
    database.client.drop_database(target.name)
    options = bson.CodecOptions(document_class=RawBSONDocument)
    started = time.perf_counter()
    for name in names:
        with open(folder / f"{name}.bson", "rb") as source:
            batch = []
            for document in bson.decode_file_iter(source, options):
                batch.append(document)
                if len(batch) == 1000:
                    target[name].insert_many(batch, ordered=True)
                    batch = []
            if batch:
                target[name].insert_many(batch, ordered=True)
    loaded = time.perf_counter() - started
    database.client.drop_database(target.name)
    return dumped, loaded


def read_all(database) -> float:
    started = time.perf_counter()
    for name in database.list_collection_names():
        for _ in database[name].find_raw_batches({}):
            pass
    return time.perf_counter() - started


def print_report(result: dict) -> None:
    print(f"{result['records']:,} records ({', '.join(f'{n} {c:,}' for n, c in result['collections'].items())}); "
          f"{result['runs']} runs; load average {result['load'][0][0]:.1f} before, {result['load'][1][0]:.1f} after")
    rows = sorted({row for times in result["times"].values() for row in times}, key=_row_order)
    builds = list(result["times"])
    print(f"{'row':44}" + "".join(f"{build:>24}" for build in builds))
    for row in rows:
        cells = []
        for build in builds:
            values = result["times"][build].get(row)
            if isinstance(values, str):  # a row skipped, and why
                cells.append(values)
                continue
            cells.append(f"{statistics.median(values):8.2f} ({min(values):.2f}-{max(values):.2f})" if values else "")
        print(f"{row:44}" + "".join(f"{cell:>24}" for cell in cells))
    print_ratios(result)


RATIOS = (("restore, project changed", ("mongorestore --drop",)),
          ("restore, project changed", ("mongodump --db", "mongorestore --drop")),
          ("restore, edition changed", ("mongorestore --drop",)),
          ("restore, edition changed", ("mongodump --db", "mongorestore --drop")),
          ("backup, site", ("mongodump --db",)),
          ("restore, project changed", ("pymongo insert_many load",)),
          ("restore, edition changed", ("pymongo find() dump", "pymongo insert_many load")),
          ("backup, site", ("pymongo find() dump",)))


def print_ratios(result: dict) -> None:
    """Each build's median against the anchors' medians (a sum where two are named)."""
    anchors = result["times"].get("anchors", {})
    builds = [build for build in result["times"] if build not in ("anchors", "find()")]
    for row, against in RATIOS:
        if not all(isinstance(anchors.get(name), list) for name in against):
            continue
        anchor = sum(statistics.median(anchors[name]) for name in against)
        cells = [f"{build} {statistics.median(result['times'][build][row]) / anchor:.2f}"
                 for build in builds if result["times"][build].get(row)]
        if cells:
            print(f"{row} / ({' + '.join(against)}): " + ", ".join(cells))


def _row_order(row: str) -> tuple:
    return (row.startswith("project"), row.startswith(("restore", "backup")), row.startswith("peak"),
            row.startswith("one read"), row)


if __name__ == "__main__":
    sys.exit(main())
