"""Opening databases: the embedded engine shared by threads, URIs for MongoDB."""

import threading

import pytest

from strongroom.config import Config
from strongroom.db.engines import is_embedded, list_collections, open_database
from strongroom.errors import BadInput


def test_the_embedded_database_can_be_shared_by_many_threads(config, site):
    database = open_database(config)
    database.scratch.insert_one({"thread": -1})  # montydb cannot create one collection from two clients at once
    errors = []

    def work(n):
        try:
            for i in range(30):
                database.scratch.insert_one({"thread": n, "i": i})
                assert database.project.count_documents({}) == 3
                list(database.edition.find({}))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert database.scratch.count_documents({}) == 6 * 30 + 1
    assert is_embedded(database) and "scratch" in list_collections(database)


def test_a_mongodb_uri_must_name_a_database(tmp_path):
    with pytest.raises(BadInput, match="must name a database"):
        open_database(Config(data_dir=tmp_path, db_uri="mongodb://127.0.0.1:1"))
