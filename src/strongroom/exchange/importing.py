"""Importing a backup made by others as a Strongroom backup of a scope (reason ``import``).

A source is a folder, one of:

- a backup folder of the original module (``backups/<mode>/<time>/`` for the site,
  ``backups/<mode>/project/<id>/<time>/`` for a project): ``files/`` and ``db/bson/``, one
  ``.bson`` per table or a folder per table with one ``.bson`` per record (``foreign``).
  Its ``db/json/`` is not read: the BSON is the data, and Strongroom writes its own JSON;
- a mongodump output folder, ``<dump>/<db>/<coll>.bson`` with ``<coll>.metadata.json``
  (or the collections directly in the folder), given with the folder of files it goes
  with (``files``): the scope's working folder as it was.

An import is an ordinary backup whose content comes from the source instead of the live
scope (``backing_up.make_backup`` with a ``Source``): the records are written by
``dbdump.write_collections`` in Strongroom's format, the files are snapshot into the
pool, the file list is read back through the validator, the manifest is written last by
``manifest.write_manifest`` and the staging folder renamed into place. Anything in the
source that is refused (see ``foreign``) fails the import with one line, and the staging
folder goes, with the pool objects only it used: nothing lands.

For a project only that project's records are kept, selected by the data model's queries
(``scopes.project_queries``, a collection linked through another by the ids the source
holds of that other); the project's own record must be among them. A collection linked
through another that the source lacks (the original module never backs up
``editionUser``) is left out, not written empty, so restoring the backup leaves it alone. The new backup
gets a new id, so it lists as the newest; its manifest's ``imported_from`` says what it
was made from. ``original_tree`` finds every backup of an original data dir, passing over
what is Strongroom's own there (``layout.strongrooms_own``: its backups, its ``rescued/``,
hidden names), and ``import_tree`` takes each in, going on past one it refuses.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import bson

from strongroom.backup import backing_up
from strongroom.db import dbdump
from strongroom.errors import BadInput, CorruptBackup, InvalidName, LinkedFolder
from strongroom.exchange import foreign
from strongroom.humanize import MAX_NOTE, escape, validate_note
from strongroom.ids import PROJECT_ID_RE, is_mode_name
from strongroom.repo.layout import strongrooms_own
from strongroom.repo.manifest import MANIFEST, summary
from strongroom.scopes import IdsOf, Scope, original_backups_dir, record_queries

SYSTEM_DATABASES = ("admin", "config", "local")


def import_folder(sr, scope: Scope, source: Path, files: Path | None, note: str, by: str) -> dict:
    """Make a backup of ``scope`` from ``source`` (the caller holds the lock); its manifest."""
    source = _folder(source, "the source")
    if (source / MANIFEST).exists():
        raise BadInput(f"{source} is already a Strongroom backup, not a folder to import")
    if _is_original(source):
        if files is not None:
            raise BadInput("an original backup holds its own files/: --files is for mongodump folders")
        _check_original_scope(source, scope)
        dump = foreign.read_original_dump(source, ("db", "bson"))
        files_dir, origin = source / "files", {"format": "original", "name": source.name}
    else:
        base = _mongodump_base(source)
        if files is None:
            raise BadInput("a mongodump folder holds records only: give the folder of files with --files DIR")
        dump = foreign.read_mongodump(source, base)
        files_dir, origin = _folder(files, "the files folder"), {"format": "mongodump", "name": dump.folder.name}
    content = backing_up.Source(
        dump=lambda db_dir, progress: write_records(sr, scope, dump, db_dir, progress),
        files=files_dir, live=False, details={"imported_from": origin}, warnings=dump.warnings,
        check_file_list=True,
    )
    # The folder's name is another's text: shown escaped, and bounded, as every note is (``humanize.validate_note``)
    note = note or validate_note(f"imported from the {origin['format']} backup {escape(origin['name'])}"[:MAX_NOTE])
    return backing_up.make_backup(sr, scope, "import", note, by, source=content)


def write_records(sr, scope: Scope, dump: foreign.ForeignDump, db_dir: Path, progress) -> dict[str, dict]:
    """Write the dump's records for ``scope`` into ``db_dir``, as a backup's dump."""
    queries = record_queries(sr.config, scope, _ids_in(dump))
    names = list(dump.collections) if queries is None else _project_collections(sr.config, dump)
    if queries is not None:
        dump.warnings.extend(f"left out {name}: not a collection of a project"
                             for name in dump.collections if name not in queries)
    chosen = [dump.collections.get(name) or foreign.ForeignCollection(name) for name in names]
    collections = (
        (c.name, foreign.documents(dump, c, queries and queries[c.name]), lambda c=c: foreign.metadata(dump, c))
        for c in chosen
    )
    written = dbdump.write_collections(db_dir, collections, len(chosen), progress)
    if queries is not None and written[sr.config.model.project_collection]["count"] == 0:
        raise BadInput(f"{dump.folder} holds no record of project {scope.project_id}")
    return written


def _ids_in(dump: foreign.ForeignDump) -> IdsOf:
    """``scopes.IdsOf`` read from a foreign dump (a collection it lacks has none)."""

    def ids_of(name: str, query: dict) -> list:
        collection = dump.collections.get(name) or foreign.ForeignCollection(name)
        return [document["_id"] for batch in foreign.documents(dump, collection, query)
                for document in bson.decode_all(batch)]

    return ids_of


def _project_collections(config, dump: foreign.ForeignDump) -> list[str]:
    """The project's collections to write: every one of the model, empty where the dump
    lacks it, except a collection linked through another (``editionUser``): the original
    module leaves those out of its project backups on purpose, so the new backup has none
    either, and restoring it leaves the live records of that collection as they are."""
    names = []
    for name in config.model.collections:
        link = next((link for link in config.model.linked if link.collection == name), None)
        if name not in dump.collections and link is not None and link.via != config.model.project_collection:
            dump.warnings.append(f"left out {name}: the source holds none, so restoring this backup leaves "
                                 f"the live {name} records as they are")
            continue
        names.append(name)
    return names


def _folder(path: Path, what: str) -> Path:
    """A folder the user named (a link the user gave is followed; nothing below it is)."""
    resolved = Path(path).resolve()
    if not resolved.is_dir():
        raise BadInput(f"{what} {path} is not a folder")
    return resolved


def _is_original(source: Path) -> bool:
    """Has the source the original's ``files/`` and ``db/``? Links there are refused."""
    kinds = {name: kind for name, kind in foreign.list_folder(source, ())}
    if "files" not in kinds and "db" not in kinds:
        return False
    if kinds.get("files") != "dir" or kinds.get("db") != "dir":
        raise BadInput(f"{source}: an original backup has the folders files/ and db/; one is missing")
    if ("bson", "dir") not in foreign.list_folder(source, ("db",)):
        raise BadInput(f"{source}/db has no bson/ folder: the records are imported from their BSON")
    return True


def _check_original_scope(source: Path, scope: Scope) -> None:
    """A project backup imported as the site's (or another project's) would replace the
    wrong data on restore: its place in the original's tree says which it is."""
    owner = source.parent
    if owner.parent.name != "project" or not PROJECT_ID_RE.match(owner.name):
        if not scope.is_site and (owner.name == "site" or (owner.parent.name == "backups" and is_mode_name(owner.name))):
            raise BadInput(f"{source} is a backup of the whole site: import it without --project")
        return
    if scope.is_site:
        raise BadInput(f"{source} is a backup of project {owner.name}: import it with --project {owner.name}")
    if owner.name != scope.project_id:
        raise BadInput(f"{source} is a backup of project {owner.name}, not of project {scope.project_id}")


def _mongodump_base(source: Path) -> tuple[str, ...]:
    """Where the collections are: in the folder itself, or in its one database folder."""
    if foreign.holds_dump(source, ()):
        return ()
    databases = [name for name, kind in foreign.list_folder(source, ())
                 if kind == "dir" and name not in SYSTEM_DATABASES and foreign.holds_dump(source, (name,))]
    if not databases:
        raise BadInput(f"{source} is neither an original backup (files/ and db/bson/) nor a mongodump "
                       "folder (<db>/<collection>.bson)")
    if len(databases) > 1:
        raise BadInput(f"{source} holds dumps of several databases ({', '.join(databases)}): "
                       "give the folder of one as the source")
    return (databases[0],)


def imported_names(store, scope: Scope) -> set[str]:
    """The folder names of the original backups already imported into ``scope``."""
    names = set()
    for backup_id in store.ids(scope):
        try:
            origin = store.open(scope, backup_id)[1].get("imported_from") or {}
        except CorruptBackup:
            continue
        if isinstance(origin, dict) and origin.get("format") == "original":
            names.add(origin.get("name"))
    return names


def original_tree(data_dir: Path, mode: str) -> list[tuple[Scope, Path]]:
    """Every backup folder of an original data dir's run mode, oldest first per scope:
    ``backups/<mode>/<time>/`` (or ``site/<time>/``) and ``project/<id>/<time>/``.

    What is Strongroom's own there is passed over (``layout.strongrooms_own``), so the
    data dir may be the one Strongroom uses, its backups beside the original's."""
    root = original_backups_dir(_folder(Path(data_dir), "the original data dir"), mode)
    found: list[tuple[Scope, Path]] = []
    for folder, scope in [(root, Scope.site()), (root / "site", Scope.site()), *_project_roots(root)]:
        for name in sorted(_subfolders(folder)):
            path = folder / name
            if folder == root and name in ("site", "project"):
                continue
            if not strongrooms_own(path, in_mode_folder=folder == root):
                found.append((scope, path))
    return found


def _project_roots(root: Path) -> list[tuple[Path, Scope]]:
    return [(root / "project" / name, Scope.project(name))
            for name in sorted(_subfolders(root / "project")) if PROJECT_ID_RE.match(name)]


def _subfolders(folder: Path) -> list[str]:
    """The names of real folders (not links) in ``folder``; none if it is not one."""
    try:
        if not stat.S_ISDIR(os.lstat(folder).st_mode):
            return []
        with os.scandir(folder) as entries:
            return [e.name for e in entries if e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []


REFUSALS = (BadInput, InvalidName, CorruptBackup, LinkedFolder)  # a source refused; the others go on


def import_tree(sr, data_dir: Path, by: str) -> dict:
    """Take in every backup of this run mode in an original data dir, oldest first,
    leaving out those imported before (``Strongroom.import_original_tree``). A source
    that is refused is named with the reason, and the others are still taken in:
    ``{"imported": [summaries], "skipped": [names], "refused": [{"scope", "project",
    "folder", "reason"}]}``."""
    imported, skipped, refused = [], [], []
    for scope, folder in original_tree(data_dir, sr.config.mode):
        if folder.name in imported_names(sr.store, scope):
            skipped.append(f"{scope}: {folder.name}")
            continue
        try:
            imported.append(summary(import_folder(sr, scope, folder, None, "", by)))
        except REFUSALS as exc:
            refused.append({"scope": scope.kind, "project": scope.project_id, "folder": str(folder),
                            "reason": str(exc)})
    return {"imported": imported, "skipped": skipped, "refused": refused}
