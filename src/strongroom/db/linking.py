"""Which records a project's queries select when the model links a collection through
another: the ids those queries are made of, from the live database, a dump, or both.

A collection linked to a project through another (``config.Link.via``: Pure3D's
``editionUser`` by ``editionId`` through ``edition``) gets its query once the ids of the
project's records of that other collection are known (``scopes.project_queries``).
Which records those are depends on the side, and one rule makes every operation agree:
the query that *replaces* records covers both sides.

- A backup reads the ids from its own dump as it writes it (``backing_up``): it holds the
  couplings of exactly the editions it holds. A pre-restore backup adds the ids of the
  backup about to be restored, so that it holds every record the restore will replace.
- A restore replaces what ``replaced_queries`` selects: the ids live now *and* the
  dump's. An edition added since the backup loses its couplings (they are the
  project's, and the edition goes), one deleted since gets its couplings back. From a
  dump that holds more (one project of a site backup) it loads what the dump's own ids
  select (``docfilter.dump_queries``), never another project's records.
- A dump loaded whole also clears the places its own records go (``named_ids``: the
  editions its couplings name). That matters for a pre-restore backup, which may hold
  couplings of editions it does not hold (an edition moved to another project since the
  backup being restored): rolling back to it must not fail on records already there.
- A restore takes the records it replaces from its pre-restore backup, made moments
  before while the host app's writes were held (``saved_alike``), for the project's own
  record and the collections linked to the project itself: their queries take no ids,
  so that dump holds exactly what a read of the live database would give (on FerretDB
  1.x such a read is a scan of the whole collection). A collection linked through
  another is read live, by the rule above.
- A rollback is a restore of the pre-restore backup: the same rule.
- The preview, the comparison that lets a restore do nothing (``matching``) and the diff
  against live read the live side as a restore would replace it.

Collections are replaced in the model's order (``scopes.in_model_order``: ``edition``
before ``editionUser``), so a restore cut short between two of them is rolled back by the
same rule: the editions live then are the backup's or the pre-restore backup's.
"""

from __future__ import annotations

from pathlib import Path

import bson

from strongroom.config import Config
from strongroom.db.docfilter import dump_ids, named_ids
from strongroom.db.engines import raw_documents
from strongroom.scopes import IdsOf, Scope, project_queries


def live_ids(database) -> IdsOf:
    """``scopes.IdsOf`` read from the live database."""

    def ids_of(name: str, query: dict) -> list:
        return [document["_id"] for batch in raw_documents(database, name, query)
                for document in bson.decode_all(batch)]

    return ids_of


def either(*sources: IdsOf) -> IdsOf:
    """The ids any of ``sources`` gives (``scopes.both_forms`` drops the repeats)."""
    return lambda name, query: [found for ids_of in sources for found in ids_of(name, query)]


def replaced_queries(config: Config, scope: Scope, database, bson_dir: Path, *,
                     filtered: bool = False) -> dict[str, dict] | None:
    """What restoring ``scope`` from the dump in ``bson_dir`` replaces (None: the whole site):
    the records the live ids select, those the dump's ids select and, for a dump loaded
    whole (not ``filtered``), those in the places its own records go (``named_ids``)."""
    if scope.is_site:
        return None
    sources = [live_ids(database), dump_ids(bson_dir)]
    if not filtered:
        sources.append(named_ids(config, bson_dir))
    return project_queries(config, scope.project_id, either(*sources))


def saved_alike(config: Config, scope: Scope, saved: Path | None) -> dict[str, Path]:
    """Per collection, the ``.bson`` file of the dump in ``saved`` (a pre-restore backup's)
    that holds the scope's records exactly as a restore would select them live: the
    project's record and the collections linked to the project itself. None for the site,
    or without such a dump."""
    if scope.is_site or saved is None:
        return {}
    model = config.model
    direct = [model.project_collection, *(link.collection for link in model.linked
                                          if link.via == model.project_collection)]
    return {name: saved / f"{name}.bson" for name in direct}
