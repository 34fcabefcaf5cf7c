"""What a MongoDB server can do, learned from its own answers, never from its name.

MongoDB-compatible servers differ: FerretDB 1.x, for one, does not implement
``renameCollection`` with ``dropTarget``, transactions, ``collMod``, validators,
collation or partial/TTL/text indexes. Strongroom asks for the best path first and
takes the server's refusal (``NotImplemented``, ``CommandNotFound``, ``IllegalOperation``
and kin) as the answer, remembered per server for the life of the process:

- ``rename_into_place``: staging collection over the live one by one
  ``renameCollection`` with ``dropTarget`` (readers see the old collection or the new
  one). Whether the server takes it is first asked by a probe that cannot change
  anything (renaming a collection that does not exist), so every restore on a server
  passes the same mutation points; a refusal of the real rename counts too. Refused: the live collection is renamed aside to ``strongroom_replaced_<name>``,
  staging is renamed in, the old one dropped: between the two renames (two commands,
  milliseconds) a reader finds no collection of that name; never a half-filled one.
  ``put_back_aside`` undoes a rename-aside a crash left behind.
- ``transactions``: a project restore runs in a transaction only where one can be
  started: the deployment is a replica set or sharded cluster (its ``hello`` answer)
  and a probe transaction (one read) commits.
- ``id_lists_scan``: does selecting records by a list of ``_id``s (``$in``) read the whole
  collection? Asked of the server's own query plan (``explain``): FerretDB 1.x answers
  ``filterPushdown: false`` (it decodes and filters every document itself, 10-13 s for
  200,000 records), and then a few records are better selected one ``_id`` at a time
  (``by_ids``). A server whose plan says nothing of the kind (MongoDB: an ``_id`` index
  scan) gets the list.

Every change still goes through ``strongroom.fs.mutations``.
"""

from __future__ import annotations

import uuid

from strongroom.db import engines
from strongroom.fs import mutations

ASIDE_PREFIX = engines.RESTORE_ASIDE_PREFIX
# The server's "I do not do that" answers, as opposed to errors about the data or the call.
REFUSAL_CODES = frozenset({
    20,   # IllegalOperation
    59,   # CommandNotFound
    115,  # CommandNotSupported
    238,  # NotImplemented
    263,  # OperationNotSupportedInTransaction
})

_known: dict[tuple, dict[str, bool]] = {}


def refused(exc: BaseException) -> bool:
    """Is ``exc`` the server saying it does not implement what was asked?"""
    from pymongo.errors import OperationFailure

    return isinstance(exc, OperationFailure) and exc.code in REFUSAL_CODES


def _server(database) -> dict[str, bool]:
    """What is known of the server ``database`` lives on (keyed by its addresses)."""
    addresses = tuple(sorted(database.client.topology_description.server_descriptions()))
    return _known.setdefault(addresses, {})


def rename_into_place(database, staging: str, name: str) -> None:
    """Put collection ``staging`` in the place of ``name`` (which may not exist)."""
    from pymongo.errors import OperationFailure

    known = _server(database)
    if "rename_drop_target" not in known:
        known["rename_drop_target"] = _probe_rename_drop_target(database)
    if known["rename_drop_target"]:
        try:
            mutations.rename_collection(database[staging], name, drop_target=True)
            return
        except OperationFailure as exc:
            if not refused(exc):
                raise
            known["rename_drop_target"] = False
    aside = ASIDE_PREFIX + name
    present = set(database.list_collection_names())
    if aside in present:  # a leftover from an earlier, finished-with restore
        mutations.drop_collection(database, aside)
    if name in present:
        mutations.rename_collection(database[name], aside, drop_target=False)
    mutations.rename_collection(database[staging], name, drop_target=False)
    if name in present:
        mutations.drop_collection(database, aside)


def _probe_rename_drop_target(database) -> bool:
    """Ask for a rename with ``dropTarget`` of a collection that does not exist: a server
    that implements it answers NamespaceNotFound, and nothing changes either way."""
    from pymongo.errors import OperationFailure

    absent = f"{database.name}.strongroom_probe_{uuid.uuid4().hex}"
    try:
        database.client.admin.command("renameCollection", absent, to=absent + "_to", dropTarget=True)
    except OperationFailure as exc:
        return not refused(exc)
    return True


def put_back_aside(database) -> None:
    """After a crash between the two renames: a collection renamed aside whose live name
    is free goes back; one whose live name is taken is a finished swap's leftover."""
    present = set(database.list_collection_names())
    for aside in sorted(n for n in present if n.startswith(ASIDE_PREFIX)):
        name = aside[len(ASIDE_PREFIX):]
        if name in present:
            mutations.drop_collection(database, aside)
        else:
            mutations.rename_collection(database[aside], name, drop_target=False)


def transactions(database) -> bool:
    """Can a multi-document transaction be started here? (Probed once per server.)"""
    known = _server(database)
    if "transactions" not in known:
        known["transactions"] = engines.supports_transactions(database) and _probe_transaction(database)
    return known["transactions"]


def _probe_transaction(database) -> bool:
    from pymongo.errors import OperationFailure

    try:
        with database.client.start_session() as session, session.start_transaction():
            database[engines.RESTORE_STAGING_PREFIX + "probe"].find_one({}, session=session)
        return True
    except OperationFailure:
        return False


def id_lists_scan(database, name: str) -> bool:
    """Does the server read every record of a collection to select some by a list of
    ``_id``s? (Asked once per server, of ``explain``; an answer it cannot give is no.)"""
    known = _server(database)
    if "id_lists_scan" not in known:
        known["id_lists_scan"] = _probe_id_lists_scan(database, name)
    return known["id_lists_scan"]


def _probe_id_lists_scan(database, name: str) -> bool:
    from bson import ObjectId
    from pymongo.errors import PyMongoError

    try:
        plan = database.command("explain", {"find": name, "filter": {"_id": {"$in": [ObjectId(), ObjectId()]}}},
                                verbosity="queryPlanner")
    except PyMongoError:
        return False
    return plan.get("filterPushdown") is False
