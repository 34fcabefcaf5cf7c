"""How a dump reads a server: batches sized by bytes, one batch read ahead on a thread, and
a batch too large for a message (FerretDB 1.x packs one past it) read again one document
a batch rather than failing; and how a load reads back what it inserted, in step with
the dump."""

import threading

import bson
import pytest

from strongroom.db import dbdump, dbrestore, engines


@pytest.fixture
def mongo_database(server_config):
    return engines.open_database(server_config)


LARGE = 15 << 20  # four of them in one reply pass the 48 MB a message may hold


def _large_collection(database) -> list[bytes]:
    for n in range(4):
        database.large.insert_one({"n": n, "blob": bytes([n]) * LARGE})
    return [bytes(batch) for batch in database.large.find_raw_batches({}, batch_size=1)]


def test_a_collection_of_large_documents_is_read_in_batches_that_fit_a_message(mongo_database, tmp_path):
    stored = _large_collection(mongo_database)
    assert engines.read_batch(mongo_database, "large") == 1

    summary = dbdump.dump_collections(mongo_database, tmp_path / "db", {"large": {}})

    assert summary["large"]["count"] == 4
    assert (tmp_path / "db" / "bson" / "large.bson").read_bytes() == b"".join(stored)


def test_a_batch_larger_than_a_message_has_the_dump_read_again_one_by_one(mongo_database, tmp_path, monkeypatch):
    stored = _large_collection(mongo_database)
    mongo_database.small.insert_many([{"n": n} for n in range(10)])
    monkeypatch.setattr(engines, "read_batch", lambda database, name: engines.READ_BATCH_DOCUMENTS)

    summary = dbdump.dump_collections(mongo_database, tmp_path / "db", {"small": {}, "large": {}})

    assert summary["large"]["count"] == 4 and summary["small"]["count"] == 10
    assert (tmp_path / "db" / "bson" / "large.bson").read_bytes() == b"".join(stored)


def test_read_batches_of_small_documents_are_of_thousands(mongo_database):
    mongo_database.small.insert_many([{"n": n, "text": "x" * 500} for n in range(100)])
    assert 1000 <= engines.read_batch(mongo_database, "small") <= engines.READ_BATCH_DOCUMENTS


def test_read_ahead_gives_every_batch_in_order_then_ends():
    assert list(dbdump.read_ahead(iter([b"a", b"b", b"c"]), depth=1)) == [b"a", b"b", b"c"]


def test_an_error_of_the_reading_is_raised_in_the_caller_after_the_batches_before_it():
    def batches():
        yield b"a"
        raise OSError("the server went away")

    ahead = dbdump.read_ahead(batches())
    assert next(ahead) == b"a"
    with pytest.raises(OSError, match="went away"):
        next(ahead)


def test_a_caller_that_stops_early_stops_and_closes_the_reading():
    closed = threading.Event()
    read = []

    def batches():
        try:
            for n in range(1000):
                read.append(n)
                yield bytes([n % 256])
        finally:
            closed.set()

    ahead = dbdump.read_ahead(batches(), depth=2)
    assert next(ahead) == b"\x00"
    ahead.close()

    assert closed.is_set() and len(read) <= 5  # at most the batches that could wait, not all
    assert not [t for t in threading.enumerate() if t.name == "strongroom-dump-reader"]


def _dump_file(tmp_path, documents: list[dict]):
    path = tmp_path / "some.bson"
    path.write_bytes(b"".join(bson.encode(document) for document in documents))
    return path


def test_the_read_back_finds_nothing_altered_in_records_stored_in_another_order(mongo_database, tmp_path):
    documents = [{"_id": n, "text": f"record {n}"} for n in range(50)]
    mongo_database.some.insert_many(list(reversed(documents)))

    assert dbrestore._altered(mongo_database.some, {}, _dump_file(tmp_path, documents)) == []


def test_the_read_back_counts_the_records_the_server_holds_otherwise(mongo_database, tmp_path):
    documents = [{"_id": n, "text": f"record {n}"} for n in range(50)]
    mongo_database.some.insert_many([*documents[:10], {"_id": 10, "text": "other"}, *documents[11:]])

    warnings = dbrestore._altered(mongo_database.some, {}, _dump_file(tmp_path, documents))

    assert warnings == [("some: 1 document(s) stored by the server not exactly as backed up "
                        "(it changed a value it accepted, such as -0.0 into 0.0)")]
