"""Strongroom's backups beside the original module's: telling them apart, and moving
backups out of the layout they once shared (``strongroom migrate-layout``).

The original module keeps its backups in ``<data dir>/backups/<mode>/``: its admin page
lists every folder there but ``project`` as a site backup, and every folder of
``project/<id>/`` as that project's backup, hidden names included. Strongroom's backups
once lay in the same folders (``site/``, ``rescued/``, its project backups beside the
original's, its pool and site key in ``backups/``), so that page offered them as its
own. They now have a root of their own (``config``): by default ``backups/.strongroom/``,
which is not below any ``backups/<mode>/``, and whose name no run mode can take.

Which entries of the old layout are Strongroom's (``own_entries``): in ``backups/``, the
pool and the site key; in ``backups/<mode>/``, ``site/``, ``rescued/``, ``audit.log`` and
every hidden name (its lock, journal, reserve); in ``backups/<mode>/project/<id>/``, every
backup with a manifest and every hidden name (staging folders, the live index). The rest
is the original module's and stays where it is.

Moving (``migrate``): under the lock of every run mode that has backups in the old
layout, each of Strongroom's entries is renamed, never copied, into ``<root>.moving``
(the same tree below it), the pool last; the site key is linked there, not moved; then
``<root>.moving`` is renamed to the root in one step, and the old key's name removed.
Renames keep every inode, so the hard links between backups and the pool stay whole
and nothing is read or written again; they need the root on the same file system. Until
the last rename the data dir resolves to the old layout and every operation is refused
while ``<root>.moving`` exists (``check_in_place``); running ``migrate`` again finishes a
move that was cut short. A program that still uses the old layout after the move (a web
app started before it) refuses every operation and says to restart.
"""

from __future__ import annotations

import os
import stat
from contextlib import ExitStack
from pathlib import Path

from strongroom.config import LEGACY_MARKERS, MOVING_SUFFIX, OWN_ROOT, Config
from strongroom.errors import BadInput
from strongroom.fs import mutations, privacy
from strongroom.ids import PROJECT_ID_RE, is_mode_name
from strongroom.repo.journal import NAME as JOURNAL
from strongroom.repo.locking import OperationLock
from strongroom.repo.manifest import MANIFEST

POOL, SITE_KEY = LEGACY_MARKERS
MODE_FOLDER_NAMES = ("site", "rescued", "audit.log")  # Strongroom's, besides hidden names
LOCK = ".lock"
LOCK_FILES = (LOCK, ".audit.lock")  # not moved: removed once the move is done


def target_root(config: Config) -> Path:
    """Where the backups belong: the configured root, or Strongroom's own in ``backups/``."""
    return config.shared_backups_dir / OWN_ROOT if config.legacy_layout else config.backups_root


def moving_dir(root: Path) -> Path:
    return root.with_name(root.name + MOVING_SUFFIX)


def in_place(config: Config) -> bool:
    """``check_in_place`` as a question (the audit log writes nothing where nobody looks)."""
    try:
        check_in_place(config)
    except BadInput:
        return False
    return True


def check_in_place(config: Config) -> None:
    """``BadInput`` when the backups are not where this configuration looks for them: a
    move that was cut short, or one made since this program started."""
    target = target_root(config)
    if os.path.lexists(moving_dir(target)):
        raise BadInput(f"a move of the backups to {target} was cut short: run `strongroom migrate-layout` "
                       "to finish it")
    if config.legacy_layout and os.path.lexists(target) and config.backups_root != target:
        raise BadInput(f"the backups were moved to {target} (strongroom migrate-layout): restart this program "
                       "so that it uses them")


def own_entries(shared: Path) -> list[Path]:
    """Strongroom's entries in the old layout below ``shared`` (``<data dir>/backups``),
    as the module's docstring lists them; the original module's are left out."""
    found = [shared / name for name in LEGACY_MARKERS if os.path.lexists(shared / name)]
    for mode in _folders(shared):
        if is_mode_name(mode):
            found += _own_in_mode(shared / mode)
    return found


def strongrooms_own(path: Path, in_mode_folder: bool = False) -> bool:
    """Is ``path``, an entry of the original module's folders (``backups/<mode>/`` when
    ``in_mode_folder``, else a folder of backups below it), Strongroom's own: a hidden
    name, a backup with a manifest, or (in a mode's folder) one of ``MODE_FOLDER_NAMES``?"""
    if path.name.startswith(".") or (in_mode_folder and path.name in MODE_FOLDER_NAMES):
        return True
    return os.path.isfile(path / MANIFEST)


def _own_in_mode(folder: Path) -> list[Path]:
    found = [folder / name for name in sorted(os.listdir(folder))
             if (name.startswith(".") or name in MODE_FOLDER_NAMES) and name not in LOCK_FILES]
    projects = folder / "project"
    for project_id in _folders(projects):
        if PROJECT_ID_RE.match(project_id):
            found += [projects / project_id / name for name in sorted(os.listdir(projects / project_id))
                      if strongrooms_own(projects / project_id / name)]
    return found


def _folders(folder: Path) -> list[str]:
    """The names of the real folders (not links) in ``folder``, sorted; none if it is not one."""
    try:
        with os.scandir(folder) as entries:
            return sorted(e.name for e in entries if e.is_dir(follow_symlinks=False))
    except (FileNotFoundError, NotADirectoryError):
        return []


def migrate(config: Config, by: str | None) -> dict:
    """Move the backups of the old layout into their own root (see the module's docstring).

    ``{"from", "to", "moved": [paths relative to from]}``; ``moved`` is empty when there
    was nothing to move. Running it again after a move that was cut short finishes it."""
    shared, target = config.shared_backups_dir, target_root(config)
    staging = moving_dir(target)
    if target == shared:
        raise BadInput(f"the backups root is {shared} itself (STRONGROOM_BACKUPS_DIR): there is nowhere to move "
                       "them; unset it to use the default")
    _forget_old_key(shared, target)  # what a finished move may have left
    entries = own_entries(shared)
    if not entries and not os.path.lexists(staging):
        _remove_lock_files(shared)
        return {"from": str(shared), "to": str(target), "moved": []}
    _check_target(target, staging, shared)
    modes = sorted({p.relative_to(shared).parts[0] for p in entries if p.parent != shared})
    with ExitStack() as locks:
        for mode in modes:
            locks.enter_context(OperationLock(shared / mode / LOCK, "migrate-layout", by))
        _refuse_pending_restores(shared, modes)
        moved = _move(config, shared, staging, own_entries(shared))
        mutations.fsync_dir(staging)
        mutations.rename(staging, target)
        mutations.fsync_dir(target.parent)
    _forget_old_key(shared, target)
    _remove_lock_files(shared)
    _remove_empty_project_folders(shared)
    return {"from": str(shared), "to": str(target), "moved": moved}


def _check_target(target: Path, staging: Path, shared: Path) -> None:
    """The target must be new (or empty) and on the file system of the old layout."""
    if os.path.lexists(target) and (not os.path.isdir(target) or os.path.islink(target) or os.listdir(target)):
        raise BadInput(f"{target} already holds backups: the old layout's are not merged into it; move them "
                       "by hand or choose another STRONGROOM_BACKUPS_DIR")
    if os.path.isdir(target):
        mutations.rmtree(target)  # empty: the final rename puts the moved tree in its place
    parent = target.parent
    if not parent.is_dir():
        raise BadInput(f"the folder {parent} of the backups root does not exist")
    if os.stat(parent).st_dev != os.stat(shared).st_dev:
        raise BadInput(f"{target} is on another file system than {shared}: backups are moved by renaming, which "
                       "keeps their hard links; copy them with `rsync -aH` (one command, so that links stay "
                       "links) while nothing runs, or choose a root on the same file system")
    if os.path.lexists(staging) and not (os.path.isdir(staging) and not os.path.islink(staging)):
        raise BadInput(f"{staging} is in the way: not a folder of an earlier move")


def _refuse_pending_restores(shared: Path, modes: list[str]) -> None:
    for mode in modes:
        if os.path.lexists(shared / mode / JOURNAL):
            raise BadInput(f"an interrupted restore in run mode {mode} is not recovered yet: run "
                           f"`strongroom --mode {mode} recover` first, then migrate-layout again")


def _move(config: Config, shared: Path, staging: Path, entries: list[Path]) -> list[str]:
    """Rename each entry to its place below ``staging`` (the pool last); the site key is
    linked, so a key is found under one of its names at every moment."""
    privacy.make_folders(config, staging, root=staging)
    moved = []
    for entry in sorted(entries, key=lambda p: p.name == POOL):
        rel = entry.relative_to(shared)
        destination = staging / rel
        privacy.make_folders(config, destination.parent, root=staging)
        if entry == shared / SITE_KEY:
            if not os.path.lexists(destination):
                mutations.link(entry, destination)
        elif os.path.lexists(destination):
            raise BadInput(f"both {entry} and {destination} exist: an earlier move left them both; keep one by hand")
        else:
            mutations.rename(entry, destination)
        moved.append(rel.as_posix())
    return moved


def _forget_old_key(shared: Path, target: Path) -> None:
    """The site key's old name goes once its new name (the same file) is in place."""
    try:
        if os.path.samestat(os.lstat(shared / SITE_KEY), os.lstat(target / SITE_KEY)):
            mutations.unlink(shared / SITE_KEY)
    except FileNotFoundError:
        pass


def _remove_lock_files(shared: Path) -> None:
    """The old layout's lock files: a program still using it refuses to work once the
    backups are gone (``check_in_place``), so nothing needs them."""
    for mode in _folders(shared):
        for name in LOCK_FILES:
            path = shared / mode / name
            if is_mode_name(mode) and os.path.isfile(path) and not os.path.islink(path):
                mutations.unlink(path)


def _remove_empty_project_folders(shared: Path) -> None:
    """``project/<id>/`` (and ``project/``) folders that held Strongroom's backups alone."""
    for mode in _folders(shared):
        if not is_mode_name(mode):
            continue
        projects = shared / mode / "project"
        for project_id in _folders(projects):
            _remove_if_empty(projects / project_id)
        _remove_if_empty(projects)


def _remove_if_empty(folder: Path) -> None:
    try:
        if stat.S_ISDIR(os.lstat(folder).st_mode) and not os.listdir(folder):
            mutations.rmtree(folder)
    except FileNotFoundError:
        pass
