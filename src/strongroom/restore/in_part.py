"""The use case of restoring part of a scope: which backup and scope, the checks, then
``partial``'s mechanism (in place: a whole restore of a mixed ``Source``; or into a folder
of its own) and the preview of either.

A project restored from a backup of that id comes first; a project with no backup of
that id, where the site has one, is taken out of the site backup (``from_site_backup``).
The caller holds the operation lock for ``restore_parts`` (``service``).

In place, parts that already are what the backup holds (the preview finds no file,
folder, link or record to add, change or remove in them) are left alone, as a whole
restore leaves a scope that already is its backup: no pre-restore backup, "nothing to
restore". The figures of a restore of parts count the parts only.
"""

from __future__ import annotations

import logging
import os

from strongroom.check import verifying
from strongroom.db import docfilter, linking
from strongroom.errors import CorruptBackup, NotFound
from strongroom.ids import validate_backup_id
from strongroom.inspect import preview
from strongroom.repo.checkedlist import CheckedList
from strongroom.restore import partial, preflight, rescue, restoring, sources
from strongroom.restore.parts import Parts
from strongroom.scopes import Scope, scope_dir

log = logging.getLogger("strongroom")


def from_site_backup(store, backup_id: str, project_id: str | None, from_site: bool | None = None) -> bool:
    """Would restoring ``project_id`` from ``backup_id`` take the project out of a site
    backup? With ``from_site=None``, when the project has no backup of that id and the
    site has (a project's own backup of that id comes first); ``True`` says so
    explicitly (``NotFound`` if there is no such site backup)."""
    validate_backup_id(backup_id)
    if from_site and (project_id is None or not store.exists(Scope.site(), backup_id)):
        raise NotFound(f"no site backup {backup_id} to take a project out of"
                       + ("" if project_id else ": name the project"))
    if project_id is None or from_site is False:
        return False
    return bool(from_site) or (not store.exists(Scope.project(project_id), backup_id)
                               and store.exists(Scope.site(), backup_id))


def scopes_of(sr, backup_id: str, project_id: str | None, from_site: bool | None = None) -> tuple[Scope, Scope]:
    """The scope to restore and the scope of the backup taken from (the site's, for one
    project out of a site backup)."""
    validate_backup_id(backup_id)
    if from_site_backup(sr.store, backup_id, project_id, from_site):
        sr.store.refuse_links(Scope.site(), backup_id)
        return Scope.project(project_id), Scope.site()
    scope = sr.existing(backup_id, project_id)
    return scope, scope


def open_source(sr, scope: Scope, backup_scope: Scope, backup_id: str, paths) -> tuple:
    """The backup's folder and manifest, what restoring ``scope`` from it puts back, and
    the chosen parts (None: all), once known to be in the backup."""
    path, manifest = sr.store.open(backup_scope, backup_id)
    source = partial.source_for(sr.config, scope, backup_scope, path, manifest,
                                lambda: sr.scope_name(scope.project_id, with_id=True))
    parts = Parts(paths) if paths else None
    if parts:
        parts.check_present(source.entries(), backup_id)
    return path, manifest, source, parts


def restore_parts(sr, scope: Scope, backup_scope: Scope, backup_id: str, paths,
                  target: os.PathLike | None, by: str) -> dict:
    """``Strongroom.restore_parts`` under its lock."""
    path, manifest, source, parts = open_source(sr, scope, backup_scope, backup_id, paths)
    listing = CheckedList(path, manifest)  # read and checked once, for the check and the build
    problems = verifying.check_before_restore(path, manifest, listing)
    if problems:
        raise CorruptBackup(f"refusing to restore {backup_id}: it fails verification: {problems[0]}")
    if scope == backup_scope:  # the source is the backup whole (``partial.source_for``): as checked
        source = sources.whole(path, manifest, listing)
    chosen = parts and parts.paths
    if target is not None:
        done = partial.to_folder(source, parts, target, sr.progress)
        return {"restored": backup_id, "parts": chosen, "records_restored": False, **done}
    unchanged = _already(preview_parts(sr, scope, backup_scope, backup_id, paths, None), backup_id)
    if unchanged:  # the parts (or the project) already are what the backup holds: nothing to do
        return unchanged
    if scope == backup_scope:
        preflight.check_restore(sr, scope, path, manifest)  # a whole restore's needs bound a part's
    plan = (lambda pre_path, pre: sources.with_parts(source, parts, pre_path, pre)) if parts \
        else (lambda pre_path, pre: source)
    result = restoring.restore(sr, scope, path, manifest, by, lambda: sr.make_pre_restore(scope, backup_id, by, path),
                               plan, replaces_records=not parts)
    log.info("partial restore of %s into the %s: %s; %d files copied", backup_id, scope,
             ", ".join(chosen) if chosen else "whole", result["copied"])
    return {**result, "parts": chosen, "records_restored": not parts}


def _already(report: dict, backup_id: str) -> dict | None:
    """A restore's result saying nothing was to be done, when ``report`` (``preview_parts``)
    finds no file, folder, link or record that the restore would change; else None. As a
    whole restore of a scope that already is its backup (``restoring.nothing_to_do``), it
    makes no pre-restore backup; it counts only what the parts hold."""
    if not report["changes_nothing"]:
        return None
    files = report["files"]["unchanged"]
    return {"restored": backup_id, "pre_restore": None, "unchanged": True, "files": files, "copied": 0,
            "kept": files, "hardlinked": 0, "bytes_copied": 0,
            "records": {name: counts["unchanged"] for name, counts in report["records"].items()},
            "warnings": [], "rescued": dict(rescue.NOTHING), "parts": report["parts"],
            "records_restored": report["records_restored"]}


def preview_parts(sr, scope: Scope, backup_scope: Scope, backup_id: str, paths,
                  target: os.PathLike | None) -> dict:
    """``Strongroom.preview_parts``: what ``restore_parts`` would change, changing nothing."""
    _, _, source, parts = open_source(sr, scope, backup_scope, backup_id, paths)
    within = parts.contains if parts else None
    descend = (lambda rel: parts.contains(rel) or rel in parts.ancestors) if parts else None
    live = target if target is not None else scope_dir(sr.config, scope)
    records = {}
    if parts is None and target is None:
        queries = linking.replaced_queries(sr.config, scope, sr.database, source.bson_dir, filtered=source.filtered)
        selects = docfilter.dump_queries(sr.config, scope.project_id, source.bson_dir) if source.filtered else None
        records = preview.diff_records(sr.database, source.bson_dir, list(source.collections), queries, selects)
    report = {"backup": backup_id, "scope": scope.kind, "project": scope.project_id,
              "parts": parts and parts.paths, "to": target and str(target),
              "records_restored": parts is None and target is None,
              **preview.diff_files(live, source.entries(), within, descend=descend), "records": records}
    return {**report, "changes_nothing": preview.changes_nothing(report), "changes_only_metadata": False}
