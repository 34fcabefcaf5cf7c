"""Scopes: the only place that maps a scope to its folder, its records and its backups.

A scope is the whole site (every file of the working dir, every collection) or one
project (its folder ``project/<id>``, its project record and its linked records). People
know a project by its title: ``scope_name`` is the one place that names a scope for
them (the CLI, the web pages and the messages all call it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from strongroom.config import Config
from strongroom.ids import validate_backup_id, validate_mode_name, validate_project_id


@dataclass(frozen=True)
class Scope:
    kind: str  # "site" or "project"
    project_id: str | None = None

    @classmethod
    def site(cls) -> Scope:
        return cls("site")

    @classmethod
    def project(cls, project_id: str) -> Scope:
        return cls("project", validate_project_id(project_id))

    @classmethod
    def of(cls, project_id: str | None) -> Scope:
        """The site when ``project_id`` is None, else that (validated) project."""
        return cls.site() if project_id is None else cls.project(project_id)

    @property
    def is_site(self) -> bool:
        return self.kind == "site"

    def __str__(self) -> str:
        return "site" if self.is_site else f"project {self.project_id}"


def scope_dir(config: Config, scope: Scope) -> Path:
    """The live folder of the scope in the working dir."""
    if scope.is_site:
        return config.working_dir
    return config.working_dir / "project" / scope.project_id


def backups_root(config: Config, scope: Scope) -> Path:
    """The folder holding the scope's backups, one sub-folder per backup id."""
    if scope.is_site:
        return config.backups_dir / "site"
    return config.backups_dir / "project" / scope.project_id


def rescue_dir(config: Config, scope: Scope, restore_id: str) -> Path:
    """Where a restore keeps files others wrote into the live folder while it ran
    (``restore_id`` is its pre-restore backup's id)."""
    if scope.is_site:
        return config.backups_dir / "rescued" / "site" / validate_backup_id(restore_id)
    return config.backups_dir / "rescued" / "project" / scope.project_id / validate_backup_id(restore_id)


def original_backups_dir(data_dir: Path, mode: str) -> Path:
    """Where the original module keeps a run mode's backups in its data dir:
    ``backups/<mode>/<time>/`` for the site, ``project/<id>/<time>/`` below it for a project."""
    return Path(data_dir) / "backups" / validate_mode_name(mode)


def backup_dir(config: Config, scope: Scope, backup_id: str) -> Path:
    return backups_root(config, scope) / validate_backup_id(backup_id)


IdsOf = Callable[[str, dict], Iterable]  # (collection, its query) -> the _id of each record it selects


def record_queries(config: Config, scope: Scope, ids_of: IdsOf | None = None) -> dict[str, dict] | None:
    """What selects a scope's records: None for the site (every collection, whole), the
    project's queries (``project_queries``) for a project."""
    return None if scope.is_site else project_queries(config, scope.project_id, ids_of)


def project_queries(config: Config, project_id: str, ids_of: IdsOf | None = None) -> dict[str, dict]:
    """The records of a project, per collection in the model's order (a collection after
    the one it is linked via): its record by ``_id``, then each linked collection's.

    A link to the project matches its id as ObjectId or as the same id in hex, as apps
    store either. A link ``via`` another collection (Pure3D's ``editionUser`` by
    ``editionId`` through ``edition``) matches the ids of that collection's records in the
    scope, as ``ids_of(collection, its query)`` gives them: the live database's, a
    dump's, or both (``db.linking``); an ObjectId among them matches in hex too. Without
    ``ids_of`` the model may have no such link (``ValueError``: a mistake in the code).
    """
    makers = project_query_makers(config, project_id, ids_of)
    return {name: make() for name, make in makers.items()}


def project_query_makers(config: Config, project_id: str,
                         ids_of: IdsOf | None = None) -> dict[str, Callable[[], dict]]:
    """``project_queries`` with each query made only when it is asked for (and once), in
    order: a backup asks for a linked collection's query once the collection it is linked
    via is dumped, so that it reads the ids from that dump (``dbdump.dump_collections``).
    The project's own record's query needs no ids."""
    from bson import ObjectId  # here, not at the top: listing backups needs no bson

    oid = ObjectId(validate_project_id(project_id))
    model = config.model
    makers = {model.project_collection: cache(lambda: {"_id": oid})}
    for link in model.linked:
        if link.via == model.project_collection:
            makers[link.collection] = cache(_linked_to_project(link, [oid, project_id]))
        else:
            makers[link.collection] = cache(_linked_through(link, makers[link.via], ids_of))
    return makers


def _linked_to_project(link, ids: list) -> Callable[[], dict]:
    return lambda: {link.field: {"$in": ids}}


def _linked_through(link, via: Callable[[], dict], ids_of: IdsOf | None) -> Callable[[], dict]:
    def make() -> dict:
        if ids_of is None:
            raise ValueError(f"the query of {link.collection!r} needs the ids of the project's {link.via!r} records")
        return {link.field: {"$in": both_forms(ids_of(link.via, via()))}}
    return make


def in_model_order(config: Config, names) -> list[str]:
    """``names`` with the project's collections first, in the model's order (a linked
    collection is replaced after the one it is linked via), then the others as given."""
    order = {name: n for n, name in enumerate(config.model.collections)}
    return sorted(names, key=lambda name: order.get(name, len(order)))


def both_forms(ids: Iterable) -> list:
    """Each id once, in the order first seen; an ObjectId also as its hex string."""
    from bson import ObjectId, encode

    found: dict[bytes, object] = {}
    for value in ids:
        for form in (value, str(value)) if isinstance(value, ObjectId) else (value,):
            found.setdefault(encode({"v": form}), form)
    return list(found.values())


SITE_NAME = "the whole site"
MAX_TITLE_SHOWN = 80


def scope_name(config: Config, database, scope: Scope, with_id: bool = False) -> str:
    """How people know the scope: ``the whole site``, or ``project “Alpine Atlas”`` from the
    project record's title, falling back to ``project <id>`` when it has none or the
    database (None: there is none) cannot say; ``with_id`` adds the id after a title
    (``project “Alpine Atlas” (6548a1b2c3d4e5f601234567)``), where the id is what to type
    next. The title is user text: escape it for a terminal, as for a page."""
    if scope.is_site:
        return SITE_NAME
    title = project_title(config, database, scope.project_id) if database is not None else None
    if not title:
        return f"project {scope.project_id}"
    return f"project “{title}” ({scope.project_id})" if with_id else f"project “{title}”"


def project_title(config: Config, database, project_id: str) -> str | None:
    """The project's title from the app's records, shortened to ``MAX_TITLE_SHOWN``
    characters, or None."""
    from bson import ObjectId

    field = config.model.title_field
    try:
        record = database[config.model.project_collection].find_one({"_id": ObjectId(project_id)}, {field: 1})
    except Exception:  # noqa: BLE001 - a server away, collections being swapped: the id names it then
        return None
    title = record.get(field) if record else None
    if not isinstance(title, str) or not title.strip():
        return None
    title = " ".join(title.split())
    return title if len(title) <= MAX_TITLE_SHOWN else title[: MAX_TITLE_SHOWN - 1] + "…"
