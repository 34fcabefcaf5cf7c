"""Who may read the backups: the modes of the backups root, of each mode's folder, of the
pool, of every folder and file Strongroom writes below them and of every stored object.

A backup holds copies of files its owner may have kept secret (a file of mode 000 is
stored all the same), so nobody but the operator may read them: every folder Strongroom
makes or writes into below the backups root is mode 0700, every file it writes there
0600, and objects have mode 0400. Every path to an object passes through the backups
root, so the folders alone keep others out; the inner modes keep them out of a copy made
without ``-p``. The site key (``signing``) is mode 0600 in any case, and its folder is
never tightened when others may write it: it is refused instead (``private_file``).

Modes are given when Strongroom writes, whoever made a folder before: a host that made
``backups/`` or ``backups/<mode>/`` 0755 finds them 0700 after the first backup
(``ensure_folders`` at every operation, ``make_folders`` for a scope's folders, and the
store's publishing of a backup, ``seal_backup``). ``verify`` checks them again.

A site that wants a group of auditors or a copying job to read backups configures it
(``STRONGROOM_BACKUP_GROUP``): folders are then 0750, files 0640 and objects 0440, owned
by that group. Modes are set by ``chmod`` after ``mkdir``, so no umask can widen them.
"""

from __future__ import annotations

import grp
import os
import stat
from pathlib import Path

from strongroom.config import Config
from strongroom.errors import BadInput
from strongroom.fs import mutations
from strongroom.fs.private_file import folder_is_safe

PRIVATE_FOLDER = 0o700
PRIVATE_FILE = 0o600
PRIVATE_OBJECT = 0o400
GROUP_FOLDER = 0o750
GROUP_FILE = 0o640
GROUP_OBJECT = 0o440


def group_id(config: Config) -> int | None:
    """The configured group's id, or None; ``BadInput`` for a group that does not exist."""
    if config.backup_group is None:
        return None
    name = config.backup_group
    try:
        return int(name) if name.isdigit() else grp.getgrnam(name).gr_gid
    except KeyError:
        raise BadInput(f"backup group {name!r} does not exist") from None


def folder_mode(config: Config) -> int:
    return PRIVATE_FOLDER if config.backup_group is None else GROUP_FOLDER


def object_mode(config: Config) -> int:
    return PRIVATE_OBJECT if config.backup_group is None else GROUP_OBJECT


def file_mode(config: Config) -> int:
    """The mode of the files Strongroom writes into a backup (its records, its lists)."""
    return PRIVATE_FILE if config.backup_group is None else GROUP_FILE


def private_folders(config: Config) -> list[Path]:
    """The folders whose modes keep others out: the backups root, the mode's folder, the pool."""
    return [config.backups_base, config.backups_dir, config.pool_dir]


def every_private_folder(config: Config) -> list[Path]:
    """``private_folders`` with every run mode's folder, not only this one's."""
    return [config.backups_base, *(config.backups_base / mode for mode in config.modes), config.pool_dir]


def ensure_folders(config: Config) -> None:
    """Create the private folders that are missing, and give them all their modes, whoever
    made them (at every operation, before anything goes in)."""
    for folder in private_folders(config):
        make_folders(config, folder)


def make_folders(config: Config, folder: Path, root: Path | None = None) -> None:
    """``folder`` and the folders from the backups root (or ``root``) down to it: made if missing, and
    each given the private mode and group if it has another (whoever made it). The
    folders above the root are not Strongroom's (a host's ``backups/``): made if missing,
    as ``mkdir -p`` would, and left as they are. A link is never changed: the operations
    that would use it refuse it (``nofollow``)."""
    root, wanted, gid = root or config.backups_base, folder_mode(config), group_id(config)
    if not os.path.lexists(root.parent):
        mutations.makedirs(root.parent)
    parts = folder.relative_to(root).parts
    for path in [root, *(root.joinpath(*parts[:n]) for n in range(1, len(parts) + 1))]:
        if not _keys_unsafe_folder(config, path):
            _make_or_seal(path, wanted, gid)


def _keys_unsafe_folder(config: Config, path: Path) -> bool:
    """Is ``path`` the site key's folder, as others may write it? It is then left as it is,
    never tightened in passing: the key in it may have been swapped, and reading it
    refuses it, saying why (``private_file``)."""
    return path == config.site_key_path.parent and os.path.isdir(path) and not folder_is_safe(path)


def _make_or_seal(path: Path, wanted: int, gid: int | None) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        try:
            mutations.mkdir(path, wanted)
        except FileExistsError:  # made meanwhile by another process
            pass
        st = os.lstat(path)
    if stat.S_ISDIR(st.st_mode) and (stat.S_IMODE(st.st_mode) != wanted or (gid is not None and st.st_gid != gid)):
        _seal(path, wanted, gid)


def seal_backup(config: Config, backup: Path) -> list[str]:
    """Give a backup its modes: its folder, ``files/`` and every folder and file outside
    ``files/`` (the records, the manifest, the file list); say which were changed. At
    publishing (before the backup is renamed into place) and by ``verify`` (backups made
    before it was done). What is below ``files/`` was made private as it was written
    (folders by the pool's ``make_folder``; files are the pool's objects)."""
    folders, files, gid = folder_mode(config), file_mode(config), group_id(config)
    changed = [_tighten(backup, os.lstat(backup), folders, gid)]
    stack = [backup]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    changed.append(_tighten(Path(entry.path), st, folders, gid))
                    if entry.path != os.path.join(backup, "files"):
                        stack.append(Path(entry.path))
                elif stat.S_ISREG(st.st_mode):
                    changed.append(_tighten(Path(entry.path), st, files, gid))
    return [change for change in changed if change]


def _tighten(path: Path, st: os.stat_result, wanted: int, gid: int | None) -> str | None:
    mode = stat.S_IMODE(st.st_mode)
    if mode == wanted and (gid is None or st.st_gid == gid):
        return None
    _seal(path, wanted, gid)
    return f"{path} was mode {mode:04o}, now {wanted:04o}"


def repair_folders(config: Config) -> list[str]:
    """Give each existing private folder (every run mode's) its mode and group; say what
    was changed."""
    wanted, gid = folder_mode(config), group_id(config)
    fixed = []
    for folder in every_private_folder(config):
        try:
            st = os.lstat(folder)
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(st.st_mode) or _keys_unsafe_folder(config, folder):
            continue  # not ours to change; the operations that use it refuse
        if stat.S_IMODE(st.st_mode) != wanted or (gid is not None and st.st_gid != gid):
            _seal(folder, wanted, gid)
            fixed.append(f"{folder} was mode {stat.S_IMODE(st.st_mode):04o}, now {wanted:04o}")
    return fixed


def repair_key(config: Config) -> list[str]:
    """The site key is the operator's alone (mode 0600), whatever the backup group; a
    configured key elsewhere is the site's business and left as it is. A key that others
    could write, or that is not the operator's, is never "repaired": its content may be
    someone else's, and reading it refuses it (``private_file``)."""
    key = config.site_key_path
    if config.site_key_file is not None:
        return []
    try:
        st = os.lstat(key)
    except FileNotFoundError:
        return []
    if (not stat.S_ISREG(st.st_mode) or stat.S_IMODE(st.st_mode) == 0o600 or st.st_mode & 0o022
            or st.st_uid != os.geteuid() or not folder_is_safe(key.parent)):
        return []
    mutations.chmod(key, 0o600)
    return [f"{key} was mode {stat.S_IMODE(st.st_mode):04o}, now 0600"]


def repair_object(path: Path | str, wanted: int, gid: int | None) -> str | None:
    """Take the read bits a stored file should not have (objects of older versions were
    0444), and give it the configured group. A writable object is left alone: it may
    have been edited, and its hash says so."""
    st = os.lstat(path)
    mode = stat.S_IMODE(st.st_mode)
    if not stat.S_ISREG(st.st_mode) or mode & 0o222:
        return None
    if mode & ~wanted == 0 and (gid is None or st.st_gid == gid):
        return None
    _seal(path, wanted, gid)
    return f"{path} was mode {mode:04o}, now {wanted:04o}"


def _seal(path: Path, mode: int, gid: int | None) -> None:
    if gid is not None:
        mutations.chown_group(path, gid)
    mutations.chmod(path, mode)
