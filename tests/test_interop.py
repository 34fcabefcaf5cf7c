"""Strongroom's backups against MongoDB's own tools and format.

- Every ``.bson`` file Strongroom writes is a valid concatenation of BSON documents, as
  ``bsondump --objcheck`` checks it: each length prefix consistent with the bytes that
  follow, each document ending in its terminator, each element well formed (strict
  decoding, and re-encoding gives back the very bytes). That check runs here always.
- The real ``bsondump --objcheck``, and the real ``mongorestore`` loading a site backup's
  ``db/bson`` into the server, run when mongo-tools could be built (``scripts/build-peers``)
  and skip with the reason they could not otherwise.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import bson
import pytest
from bson import json_util
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.raw_bson import RawBSONDocument

from servers import mongo_tool
from strongroom.db import engines
from strongroom.db.dbdump import RAW_OPTIONS
from strongroom.db.engines import open_database
from strongroom.service import Strongroom
from test_bson_fidelity import KINDS, document_of

STRICT = CodecOptions(datetime_conversion=DatetimeConversion.DATETIME_MS, unicode_decode_error_handler="strict")


def object_check(path: Path) -> int:
    """Check ``path`` as ``bsondump --objcheck`` would; return its number of documents."""
    data = path.read_bytes()
    offset, count = 0, 0
    while offset < len(data):
        assert len(data) - offset >= 5, f"{path}: {len(data) - offset} trailing bytes at {offset}"
        size = int.from_bytes(data[offset:offset + 4], "little", signed=True)
        assert 5 <= size <= len(data) - offset, f"{path}: length prefix {size} at {offset} overruns the file"
        document = data[offset:offset + size]
        assert document[-1] == 0, f"{path}: document at {offset} lacks its terminator"
        decoded = bson.decode(document, STRICT)
        assert bson.encode(decoded, codec_options=STRICT) == document, f"{path}: document at {offset} re-encodes differently"
        offset += size
        count += 1
    return count


def bson_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.bson"))


@pytest.fixture
def backed_up(engine_config, engine_database, engine_site):
    """A site backup and a project backup of the demo site, plus a collection holding
    every BSON type the engine accepts."""
    every = [document_of(kind, n) for n, kind in enumerate(KINDS)]
    if not engines.is_embedded(engine_database):
        every = [d for d in every if _server_takes(engine_database, d)]
    engine_database["every_type"].insert_many([RawBSONDocument(bson.encode(d), RAW_OPTIONS) for d in every])
    service = Strongroom(engine_config, database=engine_database)
    site = service.make_backup()
    project = service.make_backup(engine_site.project_ids[0])
    return service, site, project


def _server_takes(database, document: dict) -> bool:
    try:
        database["probe"].insert_one(RawBSONDocument(bson.encode(document), RAW_OPTIONS))
        return True
    except Exception:  # noqa: BLE001 - a refusal of any kind: the fidelity test names it
        return False
    finally:
        database.drop_collection("probe")


def test_every_bson_file_strongroom_writes_passes_the_object_check(engine_config, backed_up):
    files = bson_files(engine_config.backups_dir)
    assert len(files) >= 6  # every collection of the site backup, and the project's
    documents = {path: object_check(path) for path in files}
    service, site, _ = backed_up
    manifest = service.show_backup(site["id"])["manifest"]
    site_dir = engine_config.backups_dir / "site" / site["id"] / "db" / "bson"
    for name, recorded in manifest["collections"].items():
        assert documents[site_dir / f"{name}.bson"] == recorded["count"]


def test_the_object_check_catches_a_bad_length_a_missing_terminator_and_bad_utf8(tmp_path):
    good = bson.encode({"a": "text"})
    cases = {
        "overrun": (len(good) + 1).to_bytes(4, "little") + good[4:],
        "terminator": good[:-1] + b"\x01",
        "utf8": good.replace(b"text", b"t\xffxt"),
        "trailing": good + b"\x01\x00",
    }
    for name, data in cases.items():
        path = tmp_path / f"{name}.bson"
        path.write_bytes(data)
        with pytest.raises((AssertionError, bson.errors.InvalidBSON)):
            object_check(path)


def test_bsondump_objcheck_accepts_every_bson_file(engine_config, backed_up):
    bsondump, reason = mongo_tool("bsondump")
    if bsondump is None:
        pytest.skip(reason)
    for path in bson_files(engine_config.backups_dir):
        done = subprocess.run([str(bsondump), "--objcheck", "--quiet", str(path)], capture_output=True,
                              text=True, stdin=subprocess.DEVNULL, check=False)
        assert done.returncode == 0, (path, done.stderr)


def canonical(database, name: str) -> list[str]:
    """A collection's documents as canonical Extended JSON, sorted."""
    return sorted(json_util.dumps(d, json_options=json_util.CANONICAL_JSON_OPTIONS)
                  for d in database[name].find({}))


def test_a_site_backup_loads_with_mongorestore_into_an_empty_database_on_the_server(
        server_config, server_databases, tmp_path):
    """mongorestore --noIndexRestore (FerretDB refuses the ``ns`` index option mongorestore
    sends, its issue 4638) of a site backup's db/bson gives the same collections and the
    same documents, compared as canonical Extended JSON."""
    mongorestore, reason = mongo_tool("mongorestore")
    if mongorestore is None:
        pytest.skip(reason)
    from strongroom.demo import create_demo_site

    source = open_database(server_config)
    create_demo_site(server_config, source, seed=9)
    made = Strongroom(server_config, database=source).make_backup()
    bson_dir = next(server_config.backups_dir.rglob(f"{made['id']}/db/bson"))
    target_name = server_databases.new("mongorestore")
    done = subprocess.run([str(mongorestore), f"--uri={server_databases.server.uri('')}", f"--db={target_name}",
                           "--noIndexRestore", str(bson_dir)],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 0, done.stderr
    target = server_databases.server.client[target_name]

    assert sorted(target.list_collection_names()) == engines.list_collections(source)
    for name in engines.list_collections(source):
        assert canonical(target, name) == canonical(source, name), name
