"""The pieces the benchmark times: each tool's commands, the data changes, the measures.

Every tool runs as a separate process, as a user would run it; Strongroom through its
own ``strongroom`` command. A tool that is not installed is reported as missing, never
replaced by another.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

STRONGROOM = str(Path(sys.executable).with_name("strongroom"))
SECRETS = {"RESTIC_PASSWORD": "bench", "BORG_PASSPHRASE": "", "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes",
           "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes"}
ANCHORS = ("cp", "rsync", "restic", "borg")


def missing_tools() -> list[str]:
    return [tool for tool in ANCHORS if shutil.which(tool) is None]


def run(*args: str | Path, cwd: Path | None = None) -> str:
    """Run a command, fail loudly, return its standard output."""
    env = {**os.environ, **SECRETS}
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return done.stdout


WARM = False  # --warm: the page cache is kept between runs (cold: dropped before each)
LAST: dict = {}  # the last timed command's CPU seconds (user+sys) and peak memory (bytes)


def settle() -> None:
    """Flush what the previous step wrote (untimed), and drop the page cache if allowed
    (not with ``--warm``)."""
    os.sync()
    if WARM:
        return
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        pass


def can_drop_caches() -> bool:
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def timed(*args: str | Path, cwd: Path | None = None) -> float:
    """Wall seconds of the command and of the ``sync`` after it, warm or cold, so that every
    tool's writes are flushed alike (Strongroom flushes its own before it returns; an anchor
    timed without the flush would leave its write-back to the next command). Its own CPU seconds and peak resident memory
    (``wait4``'s rusage of that one child) go to ``LAST``."""
    settle()
    env = {**os.environ, **SECRETS}
    started = time.perf_counter()
    child = subprocess.Popen([str(a) for a in args], cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    err = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    os.sync()
    seconds = time.perf_counter() - started
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} failed ({child.returncode}): {err.decode()[-500:]}")
    LAST.update(cpu=usage.ru_utime + usage.ru_stime, maxrss=usage.ru_maxrss * 1024)
    return seconds


def remove(*paths: Path) -> None:
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            subprocess.run(["chmod", "-R", "u+w", str(path)], check=False)
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


# -- Strongroom ----------------------------------------------------------------------


def strongroom(data_dir: Path, *args: str, command: str = STRONGROOM) -> str:
    return run(command, "--data-dir", data_dir, *args)


def strongroom_timed(data_dir: Path, *args: str, command: str = STRONGROOM) -> float:
    return timed(command, "--data-dir", data_dir, *args)


def latest_backup(data_dir: Path, command: str = STRONGROOM) -> str:
    import json

    return json.loads(strongroom(data_dir, "list", "--json", command=command))[0]["id"]


# -- the anchors ---------------------------------------------------------------------


def restic_init(repo: Path) -> None:
    remove(repo)
    run("restic", "-r", repo, "init", "--quiet")


def borg_init(repo: Path) -> None:
    remove(repo)
    run("borg", "init", "-e", "none", repo)


def borg_create(repo: Path, source: Path) -> float:
    name = f"a{time.time_ns()}"
    return timed("borg", "create", f"{repo}::{name}", ".", cwd=source)


def restic_backup(repo: Path, source: Path) -> float:
    return timed("restic", "-r", repo, "backup", "--quiet", ".", cwd=source)


# -- changing the data ---------------------------------------------------------------


def files_of(root: Path) -> list[Path]:
    found = []
    for folder, _dirs, names in os.walk(root):
        found.extend(Path(folder) / name for name in names)
    return sorted(found)


def change_some(root: Path, fraction: float, seed: int) -> int:
    """Overwrite the first bytes of ``fraction`` of the files (at least one): new content."""
    files = files_of(root)
    chosen = random.Random(seed).sample(files, max(1, int(len(files) * fraction)))
    for path in chosen:
        with open(path, "r+b") as fh:
            fh.write(os.urandom(64))
    return len(chosen)


def touch_all(root: Path) -> int:
    """Give every file a new mtime, content unchanged."""
    now = time.time_ns()
    files = files_of(root)
    for path in files:
        os.utime(path, ns=(now, now))
    return len(files)


def disk_use(*roots: Path) -> int:
    """Bytes allocated below ``roots``, each inode counted once (as ``du`` does)."""
    seen, total = set(), 0
    for root in roots:
        for folder, dirs, names in os.walk(root):
            for name in dirs + names:
                st = os.lstat(os.path.join(folder, name))
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_blocks * 512
    return total


# -- synthetic workloads -------------------------------------------------------------


def tiny_tree(root: Path, count: int) -> None:
    """``count`` small files (20-200 bytes) in folders of 1,000."""
    rng = random.Random(count)
    for n in range(count):
        folder = root / f"d{n // 1000:04d}"
        if n % 1000 == 0:
            folder.mkdir(parents=True)
        (folder / f"f{n:07d}.json").write_bytes(rng.randbytes(rng.randrange(20, 200)))


def small_files_tree(root: Path, count: int, folders: int) -> None:
    """``count`` files of 1-8 KB spread over ``folders`` folders (``--scale``)."""
    rng = random.Random(count)
    per_folder = max(1, count // folders)
    for n in range(count):
        folder = root / f"d{n // per_folder:05d}"
        if n % per_folder == 0:
            folder.mkdir(parents=True)
        (folder / f"f{n:07d}.dat").write_bytes(rng.randbytes(rng.randrange(1024, 8193)))


def empty_database(data_dir: Path) -> None:
    """The site's embedded database, empty: a folder of files alone is backed up as a site
    whose database holds nothing (a backup is refused where there is no database at all)."""
    from strongroom.config import Config
    from strongroom.db.engines import open_database

    open_database(Config(data_dir))


def peak_memory_of_backup(data_dir: Path) -> int:
    """Peak resident memory (bytes) of ``strongroom backup`` run in a fresh process."""
    probe = ("import resource, subprocess, sys\n"
             "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = run(sys.executable, "-c", probe, STRONGROOM, "--data-dir", data_dir, "backup")
    return int(out.strip()) * 1024


def many_backups(data_dir: Path, count: int) -> float:
    """``count`` real backups of a small site (a few files, a few records), made by this
    build's service in one child process, one after the other, as fast as the product
    makes them (no start-up per backup); return the seconds it took. Backups already
    there count: the folder is topped up to ``count``. A child, not this process: a
    command's peak memory (``wait4``) starts from its parent's at the fork, which would
    then hold the whole service."""
    probe = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import workloads; "
             "from pathlib import Path; print(workloads.make_backups(Path(sys.argv[1]), int(sys.argv[2])))")
    return float(run(sys.executable, "-c", probe, data_dir, str(count)))


def make_backups(data_dir: Path, count: int) -> float:
    """``many_backups``' work, in the process that calls it."""
    from strongroom.config import Config
    from strongroom.service import Strongroom

    work = data_dir / "working" / "pilot"
    for n in range(8):
        (work / f"d{n % 2}").mkdir(parents=True, exist_ok=True)
        (work / f"d{n % 2}" / f"f{n}.json").write_text(f'{{"n": {n}}}\n')
    service = Strongroom(Config(data_dir))
    for name in ("project", "edition"):
        if service.database[name].count_documents({}) == 0:
            service.database[name].insert_many({"n": n, "title": f"{name} {n}"} for n in range(10))
    started = time.perf_counter()
    for n in range(count - len(service.list_backups())):
        service.make_backup(note=f"backup {n}")
    return time.perf_counter() - started


def records_database(data_dir: Path, count: int):
    """An embedded database with ``count`` edition-like records in one collection."""
    from strongroom.config import Config
    from strongroom.db.engines import open_database

    database = open_database(Config(data_dir))
    if database["record"].count_documents({}) != count:
        database.drop_collection("record")
        rng = random.Random(count)
        database["record"].insert_many(
            {"n": n, "title": f"Record {n}", "tags": ["a", "b"], "score": rng.random(),
             "body": rng.randbytes(60).hex()} for n in range(count))
    return database


def time_dump_and_find(database, out: Path) -> tuple[float, float]:
    from strongroom.db import dbdump

    remove(out)
    started = time.perf_counter()
    dbdump.dump_collections(database, out, {"record": {}})
    dump = time.perf_counter() - started
    started = time.perf_counter()
    for _ in database["record"].find():
        pass
    return dump, time.perf_counter() - started
