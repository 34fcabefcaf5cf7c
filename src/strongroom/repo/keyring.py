"""Which keys signed the data dir's backups, and when the site key was last exported.

``signers`` reads the signature of every complete backup of every run mode (what each
manifest *claims*: a key id is public, and only the key itself can check the claim) and
groups the backups by the id of the key that signed them. It is read where a key is
about to be made or put in place, so that no new key silently splits the history
(``signing``), and by ``key status``.

``backups/.site-key.exports`` remembers each ``key export``: one JSON line with when, by
whom, where to and which key (its id). ``status`` warns while the key in use has none: a
key that exists in one place only is lost with that disk, and with it the means to
check (and so to restore) every backup.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from strongroom.config import RUN_MODES, Config
from strongroom.fs import mutations
from strongroom.ids import PROJECT_ID_RE, is_backup_id
from strongroom.repo.manifest import read_manifest_bytes

log = logging.getLogger("strongroom")

EXPORTS = ".site-key.exports"
UNSIGNED = None  # the "key" of backups made before manifests were signed


def signers(config: Config) -> dict[str | None, list[str]]:
    """Key id (None: unsigned) -> the backups whose manifest claims it, as
    ``<mode>/site/<id>`` or ``<mode>/project/<project>/<id>``, in every run mode."""
    found: dict[str | None, list[str]] = {}
    for name, folder in _backups(config.backups_base):
        data = read_manifest_bytes(folder)
        if data is None:
            continue  # not complete: no backup
        found.setdefault(_claimed_key(data), []).append(name)
    return found


def _backups(base: Path):
    """(name, folder) of every backup folder of every run mode below ``base``."""
    for mode in RUN_MODES:
        roots = [(f"{mode}/site", base / mode / "site")]
        projects = base / mode / "project"
        roots += [(f"{mode}/project/{p}", projects / p) for p in _names(projects) if PROJECT_ID_RE.match(p)]
        for label, root in roots:
            for backup_id in _names(root):
                if is_backup_id(backup_id):
                    yield f"{label}/{backup_id}", root / backup_id


def _names(folder: Path) -> list[str]:
    try:
        return sorted(entry.name for entry in os.scandir(folder) if entry.is_dir(follow_symlinks=False))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _claimed_key(data: bytes) -> str | None:
    try:
        signature = json.loads(data).get("signature")
    except (ValueError, UnicodeDecodeError, AttributeError):
        return UNSIGNED
    key = signature.get("key_id") if isinstance(signature, dict) else None
    return key if isinstance(key, str) and key.isalnum() and len(key) <= 64 else UNSIGNED


def record_export(config: Config, key_id: str, to: Path, by: str, at: str) -> None:
    """Remember that the key ``key_id`` was exported to ``to``."""
    line = json.dumps({"at": at, "by": by, "to": str(to), "key": key_id}, ensure_ascii=True) + "\n"
    mutations.makedirs(config.backups_base, mode=0o700)
    path = config.backups_base / EXPORTS
    fd = mutations.open_append(path, 0o600)
    try:
        mutations.write_fd(fd, line.encode(), str(path))
        os.fsync(fd)
    finally:
        os.close(fd)


def exports(config: Config, key_id: str) -> list[dict]:
    """The recorded exports of key ``key_id``, oldest first."""
    try:
        fd = os.open(config.backups_base / EXPORTS, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return []
    try:
        with os.fdopen(fd, "rb") as fh:
            lines = fh.read(1 << 20).splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        try:
            entry = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            continue  # a line a full disk cut short
        if isinstance(entry, dict) and entry.get("key") == key_id:
            found.append(entry)
    return found
