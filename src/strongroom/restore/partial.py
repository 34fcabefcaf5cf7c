"""Restoring part of a scope: some files or folders, or one project of a site backup.

In place, a partial restore is a whole restore (``restoring``: reserve, pre-restore
backup, journal, build beside, swap, rollback, recovery, rescue) of a ``Source``
(``sources``) that equals the live scope except in the chosen parts: inside them the
backup's entries, outside them the pre-restore backup's, which describes the live
folder at the moment the restore began. Unchanged live files are hard-linked into the
new tree, so outside the parts nothing is copied and nothing changes; a file someone
changes outside the parts while the restore runs is kept in the rescue folder, as in a
whole restore. A restore of paths leaves the records alone (the journal says so, and a
rollback does too); one project of a site backup brings back the project's records,
selected from the site's dump by the project's queries.

``to_folder`` writes the chosen parts into a folder of their own and touches nothing
live: the folder must not be in the working dir or the backups, no folder on its way
may be a link, and it must be new or empty. The parts are built beside it and renamed
into place, so it ends complete or not at all (a folder that was filled meanwhile
makes the rename fail, never lose what was put there).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

from strongroom.db import docfilter
from strongroom.errors import BadInput, LinkedFolder, NotFound
from strongroom.fs import mutations
from strongroom.restore import rebuild, sources
from strongroom.restore.parts import Parts
from strongroom.restore.recovering import tree_paths
from strongroom.scopes import Scope, project_query_makers


def source_for(config, scope: Scope, backup_scope: Scope, path: Path, manifest: dict,
               name: Callable[[], str] | None = None) -> sources.Source:
    """What restoring ``scope`` from the backup at ``path`` (of ``backup_scope``) puts back;
    ``name()`` names the project in a refusal (``scopes.scope_name``)."""
    if scope == backup_scope:
        return sources.whole(path, manifest)
    folder = f"project/{scope.project_id}"
    if not (sources.has_folder(path, manifest, folder) or _holds_record(path, manifest, config, scope.project_id)):
        named = name() if name else str(scope)
        raise NotFound(f"site backup {manifest['id']} holds no {named}: nothing was changed")
    return sources.project_of_site(path, manifest, scope.project_id, list(config.model.collections))


def _holds_record(path: Path, manifest: dict, config, project_id: str) -> bool:
    """Does the site backup's dump hold the project's own record?"""
    name = config.model.project_collection
    if name not in manifest["collections"]:
        return False
    query = project_query_makers(config, project_id)[name]()
    return bool(docfilter.dump_ids(path / "db" / "bson")(name, query))


def check_target(config, target: str | os.PathLike) -> Path:
    """The folder ``restore --to`` may write into, as an absolute path; ``BadInput`` if it
    lies in the working dir or the backups (or holds them), ``LinkedFolder`` if a folder on
    its way is a link, ``BadInput`` if it is there and not an empty folder."""
    folder = Path(os.path.abspath(target))
    _refuse_links_on_the_way(folder)
    for kept in (config.data_dir / "working", config.shared_backups_dir, config.backups_root):
        kept = Path(os.path.realpath(kept))
        if folder == kept or kept in folder.parents or folder in kept.parents:
            raise BadInput(f"refusing to restore into {folder}: it is inside the live files or the backups "
                           f"({kept}); name a folder elsewhere")
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        return folder
    if not stat.S_ISDIR(st.st_mode) or os.listdir(folder):
        raise BadInput(f"refusing to restore into {folder}: it is there and not an empty folder")
    return folder


def _refuse_links_on_the_way(folder: Path) -> None:
    for place in [*reversed(folder.parents), folder]:
        try:
            st = os.lstat(place)
        except FileNotFoundError:
            return
        if stat.S_ISLNK(st.st_mode):
            raise LinkedFolder(f"refusing to restore into {folder}: {place} is a symbolic link, "
                               "and links are never followed")


def to_folder(source: sources.Source, parts: Parts | None, target: Path, progress=None) -> dict:
    """Write ``parts`` of ``source`` (all of it if None) into ``target``, built beside it and
    renamed into place; nothing live changes. ``{"to", "files", "copied", "bytes_copied"}``."""
    if not target.parent.is_dir():
        raise BadInput(f"cannot restore into {target}: the folder {target.parent} does not exist")
    chosen = sources.only_parts(source, parts) if parts else source
    staging, _ = tree_paths(target, source.backup_id)
    parent_fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        stats = rebuild.build_tree(chosen.entries(), chosen.files_dir, target, staging, chosen.total,
                                   progress, root=target.parent, top=chosen.top)
        mutations.sync_filesystem(staging)
        try:  # onto an empty folder or none: a folder filled meanwhile makes it fail, losing nothing
            mutations.rename(staging.name, target.name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                raise
            raise BadInput(f"refusing to restore into {target}: it is no longer an empty folder") from None
        os.fsync(parent_fd)
    except BaseException:
        mutations.rmtree(staging.name, dir_fd=parent_fd)
        raise
    finally:
        os.close(parent_fd)
    return {"to": str(target), "files": stats.files, "copied": stats.copied, "bytes_copied": stats.bytes_copied}
