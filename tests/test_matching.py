"""Whether the records already are a backup's state: the cheap evidence first (names,
options and indexes, counts), collections smallest first, every collection read at most
once and none after the first difference, and never less strict for it: a count is
evidence of a difference only, so whatever it lets pass the documents decide. On the
embedded engine and on a server (FerretDB)."""

import random

import bson
import pytest
from bson import ObjectId

from conftest import records_fingerprint
from on_both_engines import EMBEDDED_ONLY, SERVER_ONLY, config, database  # noqa: F401 - fixtures
from strongroom.db import engines
from strongroom.inspect import diffing
from strongroom.restore import matching
from strongroom.restore.matching import same_records
from strongroom.scopes import Scope


@pytest.fixture
def grown(site, database):
    """The demo site with ``edition`` grown to the largest collection by far (300 more)."""
    rng = random.Random(7)
    database.edition.insert_many({"projectId": ObjectId(site.project_ids[n % 3]), "title": f"Grown {n:04d}",
                                  "body": rng.randbytes(200).hex()} for n in range(300))
    return site


@pytest.fixture
def reads(monkeypatch):
    """The collections whose live records the comparison reads, in order (through the
    comparison's own reader or the comparison by ``_id`` it once fell back to)."""
    names = []
    for module in (matching, diffing):
        read = module.raw_documents
        monkeypatch.setattr(module, "raw_documents",
                            lambda db, name, query, *rest, read=read: names.append(name) or read(db, name, query, *rest))
    return names


@pytest.fixture
def counted(monkeypatch):
    """The collections whose counts the comparison asks the engine for."""
    names = []
    ask = matching.collection_statistics
    monkeypatch.setattr(matching, "collection_statistics", lambda db, name: names.append(name) or ask(db, name))
    return names


def recorded(service, made: dict) -> dict[str, dict]:
    """The backup's manifest's per collection count, bytes and hashes."""
    return service.store.open(Scope.site(), made["id"])[1]["collections"]


def smallest_first(service, made: dict) -> list[str]:
    collections = recorded(service, made)
    return sorted(collections, key=lambda name: (collections[name]["bytes"], name))


def _same_length_edit(database, name: str, query: dict | None = None) -> None:
    """One record's string changed in place, keeping the count and every size."""
    document = next(d for d in database[name].find(query or {}) if isinstance(d.get(_field(d)), str))
    value = document[_field(document)]
    database[name].update_one({"_id": document["_id"]},
                              {"$set": {_field(document): value[:-1] + ("x" if value[-1] != "x" else "y")}})


def _field(document: dict) -> str:
    return next(k for k, v in document.items() if k != "_id" and isinstance(v, str))


def test_an_unchanged_site_is_compared_smallest_collection_first_each_read_once(service, database, grown, reads,
                                                                                 counted):
    made = service.make_backup()

    assert service.restore_backup(made["id"])["unchanged"] is True

    assert reads == smallest_first(service, made) and counted == smallest_first(service, made)
    assert smallest_first(service, made)[-1] == "edition"


def _add_large(database) -> None:
    database.edition.insert_one({"projectId": ObjectId(), "title": "added"})


def _remove_small(database) -> None:
    database.project.delete_one({"_id": database.project.find_one({})["_id"]})


@pytest.mark.parametrize("change", [_add_large, _remove_small], ids=lambda change: change.__name__.strip("_"))
def test_a_count_that_differs_is_a_difference_before_any_record_is_read(change, service, database, grown, reads):
    made = service.make_backup()
    change(database)

    result = service.restore_backup(made["id"])

    assert result["unchanged"] is False and result["pre_restore"]
    assert reads == []
    assert service.restore_backup(made["id"])["unchanged"] is True


def test_a_record_changed_in_place_in_a_small_collection_ends_the_comparison_there(service, database, grown,
                                                                                   reads):
    """Same count, same size, other content: the records tell, and the first collection
    that differs is the last one read (the 300-record one is never reached)."""
    made = service.make_backup()
    order = smallest_first(service, made)
    _same_length_edit(database, "project")

    result = service.restore_backup(made["id"])

    assert result["unchanged"] is False and result["pre_restore"]
    assert reads == order[:order.index("project") + 1] and "edition" not in reads
    assert service.restore_backup(made["id"])["unchanged"] is True


def test_a_record_changed_in_place_in_the_largest_collection_is_found_reading_it_once(service, database, grown,
                                                                                      reads):
    made = service.make_backup()
    _same_length_edit(database, "edition", {"title": "Grown 0150"})
    records = records_fingerprint(database)

    result = service.restore_backup(made["id"])

    assert result["unchanged"] is False and reads == smallest_first(service, made)
    assert records_fingerprint(database) != records  # put back as it was
    assert service.restore_backup(made["id"])["unchanged"] is True


def test_a_record_of_another_size_is_told_by_the_embedded_engines_bytes_and_by_the_records_on_a_server(
        service, config, database, grown, reads):
    made = service.make_backup()
    database.edition.update_one({"title": "Grown 0150"}, {"$set": {"title": "Grown 0150 and longer"}})

    result = service.restore_backup(made["id"])

    assert result["unchanged"] is False
    assert (reads == []) is (config.db_uri is None)  # a server's statistics have no exact size


def test_records_in_another_order_with_one_changed_are_a_difference_found_in_one_read(service, database, grown,
                                                                                     reads):
    made = service.make_backup()
    documents = list(database.edition.find({}))
    database.edition.delete_many({})
    documents[100]["title"] = documents[100]["title"][:-1] + "!"
    database.edition.insert_many(list(reversed(documents)))

    result = service.restore_backup(made["id"])

    assert result["unchanged"] is False
    assert reads.count("edition") == 1


def test_records_in_another_order_but_equal_match_in_one_read(service, database, grown, reads):
    made = service.make_backup()
    documents = list(database.edition.find({}))
    random.Random(3).shuffle(documents)
    database.edition.delete_many({})
    database.edition.insert_many(documents)

    assert service.restore_backup(made["id"])["unchanged"] is True
    assert reads.count("edition") == 1


def test_a_collection_only_live_is_a_difference_before_any_count_or_record(service, database, grown, reads,
                                                                           counted):
    made = service.make_backup()
    database.extra.insert_one({"only": "live"})

    result = service.restore_backup(made["id"])

    assert result["unchanged"] is False and reads == [] and counted == []
    assert "extra" not in engines.list_collections(database)


def test_a_collection_only_in_the_backup_is_a_difference_before_any_count_or_record(service, database, grown,
                                                                                    reads, counted):
    made = service.make_backup()
    records = records_fingerprint(database)
    database.drop_collection("projectUser")

    result = service.restore_backup(made["id"])

    assert result["unchanged"] is False and reads == [] and counted == []
    assert records_fingerprint(database) == records


def _add_index(database) -> None:
    database.edition.create_index("title", name="by_title")


def _drop_index(database) -> None:
    database.edition.drop_index("by_title")


# The embedded engine keeps no secondary index (test_restore_unchanged: it is no difference).
@SERVER_ONLY
@pytest.mark.parametrize("change", [_add_index, _drop_index], ids=lambda change: change.__name__.strip("_"))
def test_an_index_that_differs_is_a_difference_before_any_count_or_record(change, service, config, database, grown,
                                                                          reads, counted):
    if change is _drop_index:
        _add_index(database)
    made = service.make_backup()
    change(database)

    result = service.restore_backup(made["id"])

    assert result["unchanged"] is False and reads == [] and counted == []
    assert service.restore_backup(made["id"])["unchanged"] is True


def test_a_count_is_never_taken_for_sameness(service, config, database, grown, reads, monkeypatch):
    """An engine whose statistics say every collection is as backed up, while a record was
    added: the records still tell."""
    made = service.make_backup()
    collections = recorded(service, made)
    _add_large(database)
    monkeypatch.setattr(matching, "collection_statistics", lambda db, name: engines.Statistics(
        collections[name]["count"], collections[name]["bytes"], exact=True))

    result = service.restore_backup(made["id"])

    assert result["unchanged"] is False and "edition" in reads
    assert database.edition.count_documents({}) == collections["edition"]["count"]


def test_a_servers_count_that_is_off_is_asked_again_exactly_before_it_is_believed(service, config, database, grown,
                                                                                   monkeypatch):
    made = service.make_backup()
    collections = recorded(service, made)
    monkeypatch.setattr(matching, "collection_statistics", lambda db, name: engines.Statistics(
        collections[name]["count"] + 5, None, exact=False))

    assert service.restore_backup(made["id"])["unchanged"] is True


@EMBEDDED_ONLY  # a server's statistics ($collStats) are checked by the tests above
def test_the_embedded_engines_count_and_bytes_are_those_of_its_dump(config, database, grown, service):
    made = service.make_backup()

    for name, counts in recorded(service, made).items():
        statistics = engines.collection_statistics(database, name)
        assert (statistics.count, statistics.bytes, statistics.exact) == (counts["count"], counts["bytes"], True)


@EMBEDDED_ONLY
def test_an_embedded_collection_being_written_gives_no_count(config, database, grown, tmp_path):
    path = engines.embedded_collection_file(database, "edition")
    (path.parent / f"{path.name}-wal").write_bytes(b"")

    assert engines.collection_statistics(database, "edition") is None


# -- the comparison of two streams of records ---------------------------------------------


def _records(*pairs) -> list[bytes]:
    return [bson.encode({"_id": key, "v": value}) for key, value in pairs]


SAME = [(1, "a"), (2, "b"), (3, "c"), (4, "d")]


@pytest.mark.parametrize(("stored", "live", "same"), [
    (SAME, SAME, True),
    (SAME, list(reversed(SAME)), True),
    (SAME, [SAME[1], SAME[0], SAME[3], SAME[2]], True),
    (SAME, [(1, "a"), (2, "B"), (3, "c"), (4, "d")], False),  # same _id, other bytes, in step
    (SAME, [(2, "b"), (1, "A"), (4, "d"), (3, "c")], False),  # the same, out of step
    (SAME, SAME[:3], False),
    (SAME[:3], SAME, False),
    (SAME, [(1, "a"), (2, "b"), (3, "c"), (5, "d")], False),  # another _id
    (SAME, [(4, "d"), (1, "a"), (2, "b"), (5, "e")], False),
    ([(1, "a"), (1, "a"), (2, "b")], [(1, "a"), (2, "b"), (3, "c")], False),  # an _id twice in the dump
    ([(2, "b"), (1, "a"), (1, "a")], [(1, "a"), (2, "b"), (3, "c")], False),
    ([], [], True),
], ids=lambda value: "" if isinstance(value, list) else str(value))
def test_two_streams_of_records_are_the_same_only_when_they_hold_the_same_records(stored, live, same):
    assert same_records(iter(_records(*stored)), iter(_records(*live))) is same


def test_records_out_of_step_are_held_only_while_out_of_step(monkeypatch):
    """What waits is what is out of step: two records swapped in 10,000 hold two."""
    held = []
    meet = matching._meet
    monkeypatch.setattr(matching, "_meet", lambda key, raw, mine, theirs: held.append(len(mine) + len(theirs))
                        or meet(key, raw, mine, theirs))
    stored = _records(*[(n, "x") for n in range(10_000)])
    live = list(stored)
    live[10], live[9_000] = live[9_000], live[10]

    assert same_records(iter(stored), iter(live)) is True
    assert max(held) <= 2


def test_the_comparison_stops_reading_at_the_first_difference():
    taken = []

    def stream(records):
        for raw in records:
            taken.append(raw)
            yield raw

    stored = _records(*[(n, "x") for n in range(1_000)])
    live = list(stored)
    live[10] = _records((10, "y"))[0]

    assert same_records(stream(stored), stream(live)) is False
    assert len(taken) == 22  # eleven from each side
