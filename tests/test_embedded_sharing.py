"""The embedded engine's collection files shared by readers and a restore's drop-and-reload."""

import subprocess
import sys
import textwrap

from strongroom.db.engines import embedded_collection_file, open_database

# Readers loop over a collection while the main thread drops and reloads it, as a site
# restore does on the embedded engine while the web app serves pages. In a subprocess:
# the old engine could die of a bus error, which must fail the test, not the test run.
DROP_AND_RELOAD_UNDER_READERS = textwrap.dedent("""
    import sys, threading, time
    from pathlib import Path
    from strongroom.config import Config
    from strongroom.db.engines import open_database

    database = open_database(Config(data_dir=Path(sys.argv[1])))
    documents = [{"_id": i, "text": "x" * 100} for i in range(100)]
    database["user"].insert_many(documents)
    errors, seen, stop = [], set(), threading.Event()

    def read():
        while not stop.is_set():
            try:
                seen.add(len(list(database["user"].find({}))))
                database["user"].find_one({"_id": 7})
            except Exception as exc:
                errors.append(f"reader: {exc!r}")

    readers = [threading.Thread(target=read) for _ in range(3)]
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + 60
    for _ in range(25):
        if time.monotonic() > deadline:
            break
        try:
            database.drop_collection("user")
            database["user"].insert_many(documents)
        except Exception as exc:
            errors.append(f"restore: {exc!r}")
    stop.set()
    for reader in readers:
        reader.join()
    print(sorted(set(errors))[:5], sorted(seen))
    sys.exit(1 if errors or database["user"].count_documents({}) != 100 else 0)
""")


def test_readers_never_break_a_drop_and_reload_of_an_embedded_collection(tmp_path):
    done = subprocess.run([sys.executable, "-c", DROP_AND_RELOAD_UNDER_READERS, str(tmp_path)],
                          check=False, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stdout}{done.stderr[-2000:]}"
    assert done.stdout.strip().endswith(", 100]")  # the readers saw the whole collection too


def test_reading_a_dropped_collection_finds_nothing_and_creates_no_file(config):
    database = open_database(config)
    database["notes"].insert_one({"text": "kept"})
    database.drop_collection("notes")
    assert list(database["notes"].find({})) == [] and database["notes"].find_one({}) is None
    assert database["notes"].count_documents({}) == 0
    assert not embedded_collection_file(database, "notes").exists()
    assert "notes" not in database.list_collection_names()


def test_a_dropped_collection_leaves_no_sqlite_side_file_for_the_next_one_of_its_name(config):
    database = open_database(config)
    database["notes"].insert_one({"text": "old"})
    path = embedded_collection_file(database, "notes")
    stale_wal = path.with_name(path.name + "-wal")
    stale_wal.write_bytes(b"left by a crashed reader")
    database.drop_collection("notes")
    assert not stale_wal.exists() and not path.exists()
    database["notes"].insert_one({"text": "new"})
    assert [d["text"] for d in database["notes"].find({})] == ["new"]
