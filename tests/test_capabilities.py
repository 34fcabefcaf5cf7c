"""A server's capabilities come from its answers: the same code, told "not implemented"
or not, takes the one rename or the rename-aside path. The stand-in below answers like a
server would (an ``OperationFailure`` with the server's code), whatever it calls itself."""

from __future__ import annotations

import pytest
from pymongo.errors import OperationFailure

from faults import count_points
from strongroom.db import capabilities
from strongroom.db.engines import open_database


class Answering:
    """A database whose renames answer as ``refuse_code`` says (None: they succeed)."""

    def __init__(self, real, refuse_code: int | None):
        self.real, self.refuse_code, self.name = real, refuse_code, real.name
        self.client = self  # the probe goes through client.admin.command
        self.admin = self
        self.topology_description = real.client.topology_description

    def command(self, name, *args, **kwargs):
        assert name == "renameCollection" and kwargs.get("dropTarget")  # the probe, of an absent collection
        if self.refuse_code:
            raise OperationFailure("not implemented", code=self.refuse_code)
        raise OperationFailure("source namespace does not exist", code=26)  # NamespaceNotFound

    def __getitem__(self, name):
        collection = self.real[name]
        outer = self

        class Renaming:
            def __getattr__(self, attribute):
                return getattr(collection, attribute)

            def rename(self, new_name, dropTarget=False):
                if dropTarget and outer.refuse_code:
                    raise OperationFailure("not implemented", code=outer.refuse_code)
                if dropTarget:
                    outer.real.drop_collection(new_name)  # what a server implementing it does
                return collection.rename(new_name)

        return Renaming()

    def list_collection_names(self):
        return self.real.list_collection_names()

    def drop_collection(self, name):
        return self.real.drop_collection(name)


@pytest.fixture(autouse=True)
def forget_servers():
    capabilities._known.clear()
    yield
    capabilities._known.clear()


@pytest.mark.parametrize("refuse_code,expected", [
    (238, ["x -> strongroom_replaced_x", "strongroom_restore_x -> x"]),  # NotImplemented
    (59, ["x -> strongroom_replaced_x", "strongroom_restore_x -> x"]),  # CommandNotFound
    (None, ["strongroom_restore_x -> x"]),
])
def test_the_rename_path_follows_the_servers_answer(server_config, refuse_code, expected):
    real = open_database(server_config)
    real.x.insert_one({"_id": "old"})
    real.strongroom_restore_x.insert_one({"_id": "new"})
    database = Answering(real, refuse_code)

    points = count_points(lambda: capabilities.rename_into_place(database, "strongroom_restore_x", "x"))

    assert [d for kind, d in points if kind == "rename-collection"] == expected
    assert list(real.x.find()) == [{"_id": "new"}]
    assert sorted(real.list_collection_names()) == ["x"]


def test_a_server_that_cannot_start_a_transaction_gets_none(server_config):
    """FerretDB answers ``hello`` as a standalone: no transaction is attempted."""
    assert capabilities.transactions(open_database(server_config)) is False
