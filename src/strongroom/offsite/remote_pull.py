"""Pulling an offsite copy back: a remote backup becomes a backup of this site again.

The copy lands as a backup does (``backing_up``): built in the scope's hidden staging
folder, the manifest written last, then renamed into place; if anything fails the
staging folder goes, with the pool objects only it used, and nothing is listed. It keeps
its id, its reason and its note; it verifies and restores like any other.

Nothing fetched is trusted before it is checked:

- the remote manifest must be that of the backup asked for, of this run mode and scope;
- the backup's own manifest must be signed by this site's key. A copy from encrypted
  storage was sealed under the remote key, which only this site holds, so when it was
  signed by another site key (a new server, the old one lost with its key) it is signed
  again under this one, recording the key it came with (``pulled.signed_by``). A plain
  copy could have been written by anyone with access to the bucket: it must carry this
  site's signature, or the pull is refused;
- every part and object is hashed after it is opened and must match its name; the file
  list is read through the validator (``manifest.iter_file_list``: paths, order,
  folders before what they hold), so no entry reaches outside the staging folder.

Objects this site's pool already holds are linked, not fetched; the others are fetched
several at once (``transfers``), and nothing fetched outlives a failed pull.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from strongroom.errors import BadInput, CorruptBackup, NotFound
from strongroom.fs import mutations
from strongroom.fs.nofollow import check_no_links
from strongroom.offsite.remote import OBJECTS, SPOOL, Remote
from strongroom.offsite.transfers import Transfers
from strongroom.repo import signing
from strongroom.repo.manifest import (
    FILE_LIST,
    is_signed_format,
    iter_file_list,
    summary,
    write_manifest,
)
from strongroom.scopes import Scope, backups_root


def pull(sr, remote: Remote, scope: Scope, backup_id: str) -> dict:
    """Fetch the remote copy of ``backup_id`` into the scope's backups (lock held by the
    caller); its summary, with ``objects_fetched``, ``bytes_fetched`` and
    ``signed_again_from`` (the key id of the site key that had signed it, when it was signed
    again under this site's key; else None)."""
    if not remote.check_marker():
        raise NotFound(f"no copies at {remote.store.describe()}")
    doc = remote.read_document(remote.manifest_name(sr.config.mode, scope, backup_id))
    if doc is None:
        raise NotFound(f"no remote copy of backup {backup_id} of the {scope} at {remote.store.describe()}")
    if (doc["mode"], doc["scope"], doc["project"], doc["id"]) != (
            sr.config.mode, scope.kind, scope.project_id, backup_id):
        raise CorruptBackup(f"the remote manifest of {backup_id} describes another backup")
    if backup_id in sr.store.taken_names(scope):
        raise BadInput(f"backup {backup_id} of the {scope} is already here")
    manifest = _trusted(sr, remote, backup_id, doc["manifest"])
    resigned = manifest is not doc["manifest"]
    check_no_links(sr.config.backups_anchor, backups_root(sr.config, scope))
    check_no_links(sr.config.backups_anchor, sr.store.pool.root)
    staging = sr.store.make_staging(sr.store.staging_path(scope, backup_id))
    fetched = {"objects_fetched": 0, "bytes_fetched": 0}
    try:
        _fill(sr, remote, staging, doc, manifest, fetched)
        mutations.sync_filesystem(staging)
        write_manifest(staging, manifest)
        sr.store.publish(staging, scope, backup_id)
    except BaseException:
        mutations.rmtree(staging)
        sr.store.pool.collect_garbage()
        raise
    # Signed again here: the site key that signed it is not this one (a machine rebuilt
    # without its exported key); the remote key proved who wrote it. The result says so.
    return {**summary(sr.store.open(scope, backup_id)[1]), **fetched,
            "signed_again_from": manifest["pulled"]["signed_by"] if resigned else None}


def _trusted(sr, remote: Remote, backup_id: str, manifest: dict) -> dict:
    """The manifest to land: signed by this site's key (see the module's description)."""
    key = sr.store.site_key.get(create=True)
    signature = manifest.get("signature")
    signed_here = isinstance(signature, dict) and signature.get("key_id") == signing.key_id(key)
    if signed_here or not remote.cipher.encrypted or not is_signed_format(manifest):
        try:
            signing.authenticate(backup_id, manifest, key)
        except CorruptBackup as exc:
            raise CorruptBackup(f"{exc}; a copy from unencrypted storage is taken only with the signature "
                                "of this site's key (STRONGROOM_SITE_KEY_FILE)") from None
        return manifest
    unsigned = {k: v for k, v in manifest.items() if k != "signature"}
    unsigned["pulled"] = {"from": remote.store.describe(), "signed_by": signature and signature.get("key_id"),
                          "at": datetime.now(UTC).isoformat(timespec="seconds")}
    return signing.sign(unsigned, key)


def _fill(sr, remote: Remote, staging: Path, doc: dict, manifest: dict, fetched: dict) -> None:
    """The backup's parts, then its files tree, as links into the pool; several objects
    are fetched at once (``transfers``), each written into the pool by its worker."""
    def landed(size: int) -> None:
        fetched["objects_fetched"] += 1
        fetched["bytes_fetched"] += size

    with Transfers() as transfers:
        for rel, digest in doc["parts"].items():
            dest = staging / rel
            mutations.makedirs(dest.parent)
            transfers.submit(partial(_fetch_into, remote, digest, dest), landed)
        transfers.finish()
        files = manifest["files"]
        entries = iter_file_list(staging / FILE_LIST, f"remote backup {doc['id']}",
                                 files.get("list_sha256"), files.get("entries"))
        files_dir = staging / "files"
        pool = sr.store.pool
        pool.make_folder(files_dir)
        waiting: dict[str, list[Path]] = {}  # an object on its way -> the other files that are it

        def stored(digest: str, written: tuple[int, bool]) -> None:
            landed(written[0])
            for dest in waiting.pop(digest):
                pool.link(digest, dest)

        for done, entry in enumerate(entries, 1):
            dest = files_dir / entry["path"]
            if entry["type"] == "dir":
                pool.make_folder(dest)
            elif entry["type"] == "symlink":
                mutations.symlink(entry["target"], dest)
            elif entry["hash"] in waiting:
                waiting[entry["hash"]].append(dest)
            elif not _link_existing(pool, entry["hash"], dest):
                digest = entry["hash"]
                waiting[digest] = []
                fetch = partial(pool.store_written, digest, dest, partial(_fetch, remote, digest))
                transfers.submit(fetch, partial(stored, digest))
            if done % 100 == 0:
                sr.progress("pull", done, files.get("entries"))
        transfers.finish()


def _link_existing(pool, digest: str, dest: Path) -> bool:
    if not pool.has(digest):
        return False
    try:
        pool.link(digest, dest)
    except FileNotFoundError:  # collected by another run mode meanwhile: fetch it
        return False
    return True


def _fetch_into(remote: Remote, digest: str, dest: Path) -> int:
    with mutations.create(dest) as fh:
        return _fetch(remote, digest, fh)


def _fetch(remote: Remote, digest: str, fh) -> int:
    """Fetch, open and check one object into the file open as ``fh``; its size in the store."""
    name = OBJECTS + remote.cipher.object_name(digest)
    with tempfile.SpooledTemporaryFile(SPOOL) as sealed:
        if not remote.store.get(name, sealed):
            raise CorruptBackup(f"the remote copy lacks the object {name}")
        size = sealed.tell()
        sealed.seek(0)
        got = remote.cipher.open(name, sealed, _Writer(fh))
    if got != digest:
        raise CorruptBackup(f"the remote object {name} does not match its hash: it was changed")
    return size


class _Writer:
    """Writes through ``mutations``, where a full disk shows."""

    def __init__(self, fh):
        self.fh = fh

    def write(self, data: bytes) -> None:
        mutations.write(self.fh, data)
