"""Scopes: the only place that maps a scope to its folder, its records and its backups.

A scope is the whole site (every file of the working dir, every collection) or one
project (its folder ``project/<id>``, its project record and its linked records). People
know a project by its title: ``scope_name`` is the one place that names a scope for
them (the CLI, the web pages and the messages all call it).
"""

from __future__ import annotations

from dataclasses import dataclass
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


def record_queries(config: Config, scope: Scope) -> dict[str, dict] | None:
    """What selects a scope's records: None for the site (every collection, whole), the
    project's queries (``project_queries``) for a project."""
    return None if scope.is_site else project_queries(config, scope.project_id)


def project_queries(config: Config, project_id: str) -> dict[str, dict]:
    """The records of a project, per collection: its record by ``_id``, the linked ones.

    Links are matched as ObjectId or as the same id in hex, as apps store either.
    """
    from bson import ObjectId  # here, not at the top: listing backups needs no bson

    oid = ObjectId(validate_project_id(project_id))
    model = config.model
    queries = {model.project_collection: {"_id": oid}}
    for collection, field in model.linked:
        queries[collection] = {field: {"$in": [oid, project_id]}}
    return queries


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
