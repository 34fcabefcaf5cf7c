"""Importing an archive (``archive_format``) as a new backup of this site, reason ``import``.

1. The archive is read into a staging folder inside ``backups/`` and checked whole
   (``archive_reading``); nothing else is written until it passes.
2. Its scope must be valid here: a site archive lands as a site backup (no
   ``--project``/``--as-project``); a project archive as a backup of that project, or
   of the one ``as_project`` names, and every record it holds must be of its project
   (so a site backup relabelled as a project's is refused). With ``as_project`` the
   project's own record and its links are rewritten to the new id.
3. A manifest signed with this site's key must authenticate (an archive of our own
   backup, edited, is refused); one signed elsewhere cannot be checked here, only its
   checksums: its key id is recorded in ``imported_from``.
4. The backup's files are laid out in the staging folder from the file list and the
   objects (a folder, a file moved or copied from its object with its mode and mtime, a
   symbolic link as the data it is, a hard link to its earlier name), then the new backup
   is made from it exactly as any import (``backing_up.make_backup`` with a ``Source``):
   every file re-hashed into the pool through the pool's own API, the records in place,
   a new id after the newest, the manifest signed with this site's key and written last,
   the folder published by a rename.

The staging folder is removed at the end, whatever happened; one left by a crash is
removed by the next operation (``store.clean_leftovers``).
"""

from __future__ import annotations

import os
from pathlib import Path

import bson
from bson import ObjectId, json_util
from bson.codec_options import CodecOptions, DatetimeConversion

from strongroom.backup import backing_up
from strongroom.db import dbdump, docfilter
from strongroom.errors import BadArchive, CorruptBackup, InvalidName, NoSpace
from strongroom.exchange import archive_reading
from strongroom.exchange.archive_format import Limits
from strongroom.fs import mutations, space
from strongroom.fs.nofollow import check_no_links
from strongroom.repo import signing
from strongroom.repo.manifest import iter_file_list, restorable_root_mode
from strongroom.scopes import Scope, backups_root, project_queries

STAGING = ".staging-archive-"
CODEC = CodecOptions(datetime_conversion=DatetimeConversion.DATETIME_AUTO)


def import_archive(sr, raw, project_id: str | None, as_project: str | None, note: str, by: str,
                   limits: Limits) -> dict:
    """Make a backup from the archive stream ``raw`` (the caller holds the lock); its manifest."""
    requested = Scope.of(project_id) if project_id else None
    wanted = Scope.of(as_project) if as_project else None
    root = backups_root(sr.config, Scope.site())
    check_no_links(sr.config.backups_anchor, root)
    staging = sr.store.make_staging(root / f"{STAGING}{os.getpid()}-{os.urandom(6).hex()}")
    try:
        unpacked = archive_reading.unpack(raw, staging, limits)
        origin = _scope(unpacked.manifest)
        target = _target(origin, requested, wanted)
        _authenticate_if_ours(sr, unpacked)
        _check_records(sr, unpacked, origin, target)
        tree = _lay_out_files(unpacked, staging / "tree")
        source = backing_up.Source(
            dump=lambda db_dir, progress: _records(sr, unpacked, origin, target, db_dir, progress),
            files=tree, live=False, details={"imported_from": _origin(unpacked)}, check_file_list=True,
        )
        note = note or f"imported from an archive of backup {unpacked.manifest['id']} of the {origin}"
        return backing_up.make_backup(sr, target, "import", note, by, source=source)
    except OSError as exc:
        if space.is_out_of_space(exc):
            raise NoSpace(f"import failed: the disk is full ({exc}); no backup was made") from exc
        raise
    finally:
        _remove(staging)


def _scope(manifest: dict) -> Scope:
    try:
        return Scope.of(manifest["project"] if manifest.get("scope") == "project" else None)
    except InvalidName as exc:
        raise BadArchive(f"the archive's manifest names no valid scope ({exc})") from None


def _target(origin: Scope, requested: Scope | None, wanted: Scope | None) -> Scope:
    """The scope the archive lands in, or ``BadArchive``/``BadInput`` if it may not."""
    if origin.is_site:
        if requested or wanted:
            raise BadArchive("the archive holds a backup of the whole site: import it without --project "
                             "or --as-project")
        return origin
    if requested and requested != origin:
        raise BadArchive(f"the archive holds a backup of {origin}, not of {requested} "
                         f"(to land it as {requested}, use --as-project {requested.project_id})")
    return wanted or origin


def _authenticate_if_ours(sr, unpacked: archive_reading.Unpacked) -> None:
    """A manifest signed with this site's key must be this site's, unchanged."""
    key = sr.store.site_key.get()
    signature = unpacked.manifest.get("signature")
    if key is not None and isinstance(signature, dict) and signature.get("key_id") == signing.key_id(key):
        try:
            signing.authenticate(unpacked.manifest["id"], unpacked.manifest, key)
        except CorruptBackup as exc:
            raise BadArchive(f"the archive's manifest fails this site's signature: {exc}") from None


def _origin(unpacked: archive_reading.Unpacked) -> dict:
    manifest = unpacked.manifest
    signature = manifest.get("signature") or {}
    return {"format": "archive", "name": manifest["id"], "scope": manifest["scope"],
            "project": manifest.get("project"), "mode": manifest.get("mode"),
            "created_at": manifest.get("created_at"), "site_key_id": signature.get("key_id"),
            "fingerprint": unpacked.fingerprint}


# -- files ----------------------------------------------------------------------------


def _lay_out_files(unpacked: archive_reading.Unpacked, tree: Path) -> Path:
    """The backup's files as a folder below staging, from its file list and objects.

    The list was checked (order, each entry inside a folder entry before it, hard links
    to earlier files), so nothing here is created through a link. A content used by one
    entry is moved into place, by more entries copied; setuid and setgid bits are dropped.
    """
    files = unpacked.manifest["files"]
    remaining = dict(unpacked.uses)
    folders: list[tuple[Path, int, int]] = []
    mutations.mkdir(tree, 0o700)
    for entry in iter_file_list(unpacked.backup / "files.jsonl", "the archive's backup",
                                files.get("list_sha256"), files.get("entries")):
        path = tree / entry["path"]
        if entry["type"] == "dir":
            mutations.mkdir(path, 0o700)
            folders.append((path, entry["mode"], entry["mtime_ns"]))
            continue
        if entry["type"] == "symlink":
            mutations.symlink(entry["target"], path)
        elif "hardlink" in entry:
            mutations.link(tree / entry["hardlink"], path)
            continue
        else:
            _place_content(unpacked, entry["hash"], path, remaining)
            mutations.chmod(path, entry["mode"] & 0o1777)
        mutations.utime(path, entry["mtime_ns"])
    for path, mode, mtime_ns in reversed(folders):  # after their content, which changes them
        mutations.chmod(path, restorable_root_mode(mode))
        mutations.utime(path, mtime_ns)
    root = files.get("root")
    if root:
        mutations.chmod(tree, restorable_root_mode(root["mode"]))
        mutations.utime(tree, root["mtime_ns"])
    return tree


def _place_content(unpacked, digest: str, path: Path, remaining: dict[str, int]) -> None:
    remaining[digest] -= 1
    if remaining[digest] == 0:
        mutations.rename(unpacked.object_path(digest), path)
    else:
        mutations.copy_file(unpacked.object_path(digest), path)


# -- records --------------------------------------------------------------------------


def _records(sr, unpacked, origin: Scope, target: Scope, db_dir: Path, progress) -> dict[str, dict]:
    """The archive's record dumps as the new backup's: moved as they are, or for a
    project landed under another id, written again with the links rewritten."""
    collections = unpacked.manifest["collections"]
    source = unpacked.backup / "db"
    if target == origin:
        mutations.rename(source, db_dir)
        return {name: dict(info) for name, info in collections.items()}
    rewrite = _Rewrite(sr.config, origin.project_id, target.project_id)
    written = (
        (name, rewrite.batches(name, source / "bson" / f"{name}.bson"),
         lambda name=name: _metadata(source / "bson" / f"{name}.metadata.json"))
        for name in collections
    )
    return dbdump.write_collections(db_dir, written, len(collections), progress)


def _check_records(sr, unpacked, origin: Scope, target: Scope) -> None:
    """Before anything is made: a project archive's records are all its project's, and
    landed under another id they clash with no other project's here."""
    if origin.is_site:
        return
    collections = unpacked.manifest["collections"]
    source = unpacked.backup / "db"
    _check_project_records(sr, source, collections, origin)
    if target != origin:
        _refuse_clashes(sr, source, collections, target)


def _check_project_records(sr, source: Path, collections: dict, origin: Scope) -> None:
    """Every record of a project archive is of that project: a site backup relabelled as
    a project's (or one of another project) is refused."""
    queries = project_queries(sr.config, origin.project_id, docfilter.dump_ids(source / "bson"))
    for name in collections:
        if name not in queries:
            raise BadArchive(f"the archive of {origin} holds the collection {name}, which is not a project's")
        of_project = docfilter.matcher(queries[name])
        for document in _documents(source / "bson" / f"{name}.bson"):
            if not of_project(document):
                raise BadArchive(f"the archive of {origin} holds a {name} record of another project "
                                 f"({document.get('_id')!r})")


def _refuse_clashes(sr, source: Path, collections: dict, target: Scope) -> None:
    """A project landed under another id keeps its linked records' ids: if one of them
    belongs to another project on this site, a restore could not insert it. Refused now,
    in one line, rather than by a restore that rolls back."""
    every_id = docfilter.dump_ids(source / "bson")  # all the archive's: they are all its project's
    queries = project_queries(sr.config, target.project_id, lambda name, _query: every_id(name, {}))
    for link in sr.config.model.linked:
        name, field = link.collection, link.field
        if name not in collections:
            continue
        ids = every_id(name, {})
        mine = queries[name][field]["$in"]  # the new project's id, or the ids of its records it is linked via
        for start in range(0, len(ids), 1000):
            clash = sr.database[name].find_one({"_id": {"$in": ids[start:start + 1000]}, field: {"$nin": mine}},
                                               {"_id": 1})
            if clash is not None:
                raise BadArchive(f"the {name} record {clash['_id']} of the archive belongs to another project on "
                                 f"this site: --as-project cannot land a copy beside it, its records keep their ids")


def _documents(path: Path):
    with open(path, "rb") as fh:
        yield from bson.decode_file_iter(fh, CODEC)


def _metadata(path: Path) -> dict:
    try:
        return json_util.loads(path.read_bytes())
    except ValueError as exc:
        raise BadArchive(f"{path.name} of the archive is not valid JSON ({exc})") from None


class _Rewrite:
    """A project's records under another project id: its record's ``_id`` and the link
    field of each linked collection (as ObjectId or hex, as it was stored)."""

    def __init__(self, config, old: str, new: str):
        self.project_collection = config.model.project_collection
        model = config.model  # a link through another collection points to ids that are kept
        self.links = {link.collection: link.field for link in model.linked if link.via == model.project_collection}
        self.old, self.new = old, new

    def batches(self, name: str, path: Path):
        for document in _documents(path):
            field = "_id" if name == self.project_collection else self.links.get(name)
            if field and field in document:
                document[field] = self._moved(document[field])
            yield bson.encode(document, codec_options=CODEC)

    def _moved(self, value):
        if value == ObjectId(self.old):
            return ObjectId(self.new)
        if value == self.old:
            return self.new
        return value


def _remove(staging: Path) -> None:
    try:
        if os.path.lexists(staging):
            mutations.rmtree(staging)
    except OSError:
        pass  # the next operation's clean-up removes it (``store.clean_leftovers``)

