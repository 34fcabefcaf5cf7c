"""Offsite copies: push backups to object storage, list them, prune them (pull: ``remote_pull``).

The remote (a bucket and a prefix in it, ``remote_store``) holds:

```
<prefix>strongroom-remote.json   whether the copies are encrypted, and the key's public id
<prefix>objects/<name>           content, one object per distinct content hash
<prefix>backups/<name>           one remote manifest per backup copied
<prefix>leases/<kind>-<random>   a push or prune under way (``remote_lease``)
```

Names and content are as ``remote_cipher`` makes them (plain, or sealed under the
configured key). Every file of a backup is an object: each file's content, and the
backup's file list and record dumps too. A remote manifest is a JSON document holding
the backup's own (signed) manifest, which object holds each of the backup's other
parts (``parts``), and the hash of every object it needs (``objects``).

Guarantees:

- Content-addressed: a push sends only the objects the remote lacks; a backup whose
  remote manifest is there is not sent again. What the remote holds, a push learns from
  the newest copy of the same scope already there (what it names is there: see below),
  asking for each object it does not name before sending it; with no such copy (a first
  push) it lists every object instead (one request per thousand).
- Several objects go up at once (``transfers``); the first failure stops the others.
- A remote manifest is uploaded only after every object it names: a push cut short
  leaves objects that no manifest names yet, never a manifest that names a missing
  object, and the next push sends what is still missing, then the manifest.
- A push sends only a backup that passes the checks a restore makes (``verifying``),
  and checks each object's content against its hash as it reads it.
- ``prune`` deletes the remote manifests its policy does not keep first, then the
  objects no remaining manifest (of any scope or run mode) names: an interruption
  leaves at worst objects nobody names, which the next prune deletes.
- Pushes and prunes of several hosts or run modes on one prefix hold leases
  (``remote_lease``): no prune deletes an object a push under way sent or counts on; it
  leaves them for a later prune (``objects_deferred``).
- One remote holds encrypted or plain copies, never both, and one key: the marker says
  which, and any other key or none is refused before anything is read or written.
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Iterable
from functools import partial
from pathlib import Path

from strongroom.backup.pruning import RetentionPolicy, backups_to_keep
from strongroom.check import verifying
from strongroom.config import RemoteSettings
from strongroom.db import dbdump
from strongroom.errors import BadInput, CorruptBackup, InvalidName, NotFound
from strongroom.ids import backup_id_sort_key, is_mode_name, validate_backup_id
from strongroom.offsite import remote_lease
from strongroom.offsite.remote_cipher import Plain, Sealed, cipher_for
from strongroom.offsite.remote_store import ObjectStore, S3Store
from strongroom.offsite.transfers import Transfers
from strongroom.repo.manifest import FILE_LIST, HEX64, iter_entries, summary
from strongroom.repo.pool import hash_file
from strongroom.scopes import Scope

MARKER = "strongroom-remote.json"
OBJECTS = "objects/"
BACKUPS = "backups/"
REMOTE_FORMAT = "strongroom-remote"
BACKUP_FORMAT = "strongroom-remote-backup"
SPOOL = 8 << 20  # sealed objects up to this size stay in memory on their way
UNENCRYPTED = ("the remote copies are not encrypted: the storage provider can read them "
               "(set STRONGROOM_REMOTE_KEY_FILE to encrypt them on this machine)")


def scope_path(scope: Scope) -> str:
    return "site" if scope.is_site else f"project/{scope.project_id}"


class Remote:
    """The offsite copies behind one ``ObjectStore``, named and sealed by one cipher."""

    def __init__(self, store: ObjectStore, cipher: Plain | Sealed):
        self.store, self.cipher = store, cipher

    @classmethod
    def open(cls, settings: RemoteSettings) -> Remote:
        return cls(S3Store(settings), cipher_for(settings))

    # -- the marker -------------------------------------------------------------------

    def check_marker(self, create: bool = False) -> bool:
        """Refuse a remote written with another key, or none; False when it is empty.
        With ``create``, an empty remote gets its marker first."""
        raw = self._get_bytes(MARKER)
        if raw is None:
            if create:
                marker = {"format": REMOTE_FORMAT, "version": 1, "encrypted": self.cipher.encrypted,
                          "key_id": self.cipher.key_id}
                self.store.put(MARKER, io.BytesIO(json.dumps(marker).encode()))
            return create
        try:
            marker = json.loads(raw)
            encrypted, key_id = bool(marker["encrypted"]), marker.get("key_id")
        except (ValueError, KeyError, TypeError):
            raise CorruptBackup(f"{self.store.describe()}{MARKER} is not a Strongroom marker") from None
        where = self.store.describe()
        if encrypted and not self.cipher.encrypted:
            raise BadInput(f"the copies at {where} are encrypted: set STRONGROOM_REMOTE_KEY_FILE to their key")
        if not encrypted and self.cipher.encrypted:
            raise BadInput(f"the copies at {where} are not encrypted; encrypted copies need a prefix "
                           "of their own (STRONGROOM_S3_PREFIX)")
        if encrypted and key_id != self.cipher.key_id:
            raise BadInput(f"the copies at {where} were encrypted with another key (id {key_id}); "
                           f"the configured key's id is {self.cipher.key_id}: wrong STRONGROOM_REMOTE_KEY_FILE")
        return True

    # -- remote manifests -------------------------------------------------------------

    def manifest_name(self, mode: str, scope: Scope, backup_id: str) -> str:
        return BACKUPS + self.cipher.manifest_name(mode, scope_path(scope), backup_id)

    def documents(self, mode: str | None = None, scope: Scope | None = None) -> dict[str, dict]:
        """The remote manifests (by name), of ``mode`` and ``scope`` when given."""
        listed = BACKUPS
        if not self.cipher.encrypted and mode and scope:
            listed = f"{BACKUPS}{mode}/{scope_path(scope)}/"  # plain names say where they belong
        found = {}
        for name in self.store.list(listed):
            doc = self.read_document(name)
            if doc is not None and (mode is None or doc["mode"] == mode) and (
                    scope is None or (doc["scope"], doc["project"]) == (scope.kind, scope.project_id)):
                found[name] = doc
        return found

    def read_document(self, name: str) -> dict | None:
        """One remote manifest, opened and checked for form; None when it is not there."""
        sealed = self._get_bytes(name)
        if sealed is None:
            return None
        plain = io.BytesIO()
        self.cipher.open(name, io.BytesIO(sealed), plain)
        try:
            doc = json.loads(plain.getvalue())
            _check_document(doc)
        except (ValueError, KeyError, TypeError, InvalidName) as exc:
            raise CorruptBackup(f"remote manifest {name} is not valid: {exc}") from None
        return doc

    # -- pushing ----------------------------------------------------------------------

    def push(self, sr, scope: Scope, backup_ids: list[str]) -> dict:
        """Copy the backups (oldest first) that the remote lacks (the caller holds the lock)."""
        self.check_marker(create=True)
        result = {"pushed": [], "already": [], "objects_uploaded": 0, "bytes_uploaded": 0,
                  "encrypted": self.cipher.encrypted, "remote": self.store.describe(),
                  "warnings": [] if self.cipher.encrypted else [UNENCRYPTED]}
        with remote_lease.holding(self.store, "push") as lease:
            lease.wait_while("prune")  # then no prune deletes what is listed here, or sent
            manifests = set(self.store.list(BACKUPS))
            present, listed = self._present(sr, scope, manifests)
            for backup_id in sorted(backup_ids, key=backup_id_sort_key):
                name = self.manifest_name(sr.config.mode, scope, backup_id)
                if name in manifests:
                    result["already"].append(backup_id)
                    continue
                self._push_one(sr, scope, backup_id, name, present, listed, result, lease)
                result["pushed"].append(backup_id)
        return result

    def _present(self, sr, scope: Scope, manifests: set[str]) -> tuple[set[str], bool]:
        """Objects known to be in the store, and whether they are all there is: those the
        newest remote copy of the scope names (one request: a remote manifest goes up after
        every object it names, and no prune deletes an object while this push's lease is
        there), or, with no such copy, a listing of every object."""
        for backup_id in sr.store.ids(scope):
            name = self.manifest_name(sr.config.mode, scope, backup_id)
            doc = self.read_document(name) if name in manifests else None
            if doc is not None:
                return {OBJECTS + self.cipher.object_name(digest) for digest in doc["objects"]}, False
        return set(self.store.list(OBJECTS)), True

    def _push_one(self, sr, scope: Scope, backup_id: str, name: str, present: set[str], listed: bool,
                  result: dict, lease: remote_lease.Lease) -> None:
        path, manifest = sr.store.open(scope, backup_id)
        problems = verifying.check_before_restore(path, manifest)
        if problems:
            raise CorruptBackup(f"refusing to push {backup_id}: it fails verification: {problems[0]}")
        parts = {rel: hash_file(path / rel)[0] for rel in backup_parts(manifest)}
        files = {e["hash"]: e["path"] for e in iter_entries(path, manifest) if e["type"] == "file"}
        wanted = [(digest, path / rel) for rel, digest in parts.items()]
        wanted += [(digest, path / "files" / rel) for digest, rel in files.items()]
        def landed(size: int | None) -> None:
            if size is not None:  # None: it was there
                result["bytes_uploaded"] += size
                result["objects_uploaded"] += 1

        with Transfers() as transfers:
            for done, (digest, source) in enumerate(wanted, 1):
                sr.progress("push", done, len(wanted))
                lease.renew_if_due()
                object_name = OBJECTS + self.cipher.object_name(digest)
                if object_name not in present:
                    present.add(object_name)  # sent once, though two parts may share it
                    send = self._upload if listed else self._upload_missing
                    transfers.submit(partial(send, object_name, source, digest), landed)
            transfers.finish()
        doc = {"format": BACKUP_FORMAT, "version": 1, "mode": sr.config.mode, "scope": scope.kind,
               "project": scope.project_id, "id": backup_id, "manifest": manifest, "parts": parts,
               "objects": sorted({digest for digest, _ in wanted})}
        # Last: once the manifest is there, everything it names is there.
        lease.check()
        self._upload_bytes(name, json.dumps(doc).encode())

    def _upload(self, name: str, source: Path, digest: str) -> int:
        with open(source, "rb") as src, tempfile.SpooledTemporaryFile(SPOOL) as sealed:
            if self.cipher.seal(name, src, sealed) != digest:
                raise CorruptBackup(f"{source} no longer matches its hash: check the backups with "
                                    "`strongroom verify --all --repair`")
            size = sealed.tell()
            sealed.seek(0)
            self.store.put(name, sealed)
        return size

    def _upload_missing(self, name: str, source: Path, digest: str) -> int | None:
        return None if self.store.has(name) else self._upload(name, source, digest)

    def _upload_bytes(self, name: str, data: bytes) -> None:
        sealed = io.BytesIO()
        self.cipher.seal(name, io.BytesIO(data), sealed)
        sealed.seek(0)
        self.store.put(name, sealed)

    def _get_bytes(self, name: str) -> bytes | None:
        out = io.BytesIO()
        return out.getvalue() if self.store.get(name, out) else None

    # -- listing and pruning ----------------------------------------------------------

    def list(self, mode: str, scope: Scope) -> list[dict]:
        """Summaries of the scope's remote copies, newest first."""
        if not self.check_marker():
            return []
        docs = self.documents(mode, scope).values()
        return sorted((summary(doc["manifest"]) for doc in docs),
                      key=lambda s: backup_id_sort_key(s["id"]), reverse=True)

    def prune(self, sr, scope: Scope, policy: RetentionPolicy, dry_run: bool) -> dict:
        """Delete the remote copies ``policy`` does not keep, then the objects nobody names;
        with ``dry_run``, delete nothing and give the figures the real run would give
        (were no push under way then: it would leave the objects for a later prune)."""
        if not self.check_marker():
            raise NotFound(f"no copies at {self.store.describe()}")
        docs = self.documents()
        mine = {doc["id"]: name for name, doc in docs.items()
                if doc["mode"] == sr.config.mode and (doc["scope"], doc["project"]) == (scope.kind, scope.project_id)}
        sequences = {docs[name]["id"]: docs[name]["manifest"].get("sequence", 0) for name in mine.values()}
        kept = backups_to_keep(list(mine), policy, sequences)
        doomed = sorted((i for i in mine if i not in kept), key=backup_id_sort_key, reverse=True)
        result = {"kept": sorted(kept, key=backup_id_sort_key, reverse=True), "deleted": doomed,
                  "objects_deleted": 0, "bytes_deleted": 0, "objects_deferred": 0, "dry_run": dry_run}
        if dry_run:  # the real run's figures, nothing written (not even a lease)
            dropped = {mine[i] for i in doomed}
            garbage = self._unnamed(doc for name, doc in docs.items() if name not in dropped)
            result["objects_deleted"], result["bytes_deleted"] = len(garbage), sum(garbage.values())
            return result
        with remote_lease.holding(self.store, "prune") as lease:
            self.store.delete([mine[i] for i in doomed])  # manifests first: no copy lists a missing object
            # Before looking at what is named: a push under way now may need what is not yet
            # named (a later prune deletes it); a push that starts later waits for this one.
            pushing = lease.others("push")
            garbage = self._unnamed(self.documents().values())
            if pushing:
                result["objects_deferred"] = len(garbage)
                return result
            names = sorted(garbage)
            for start in range(0, len(names), 1000):
                lease.check()
                self.store.delete(names[start:start + 1000])
            self.store.delete(lease.expired())
        result["objects_deleted"], result["bytes_deleted"] = len(garbage), sum(garbage.values())
        return result


    def _unnamed(self, docs: Iterable[dict]) -> dict[str, int]:
        """The objects in the store that none of the remote manifests ``docs`` names, with their sizes."""
        named = {OBJECTS + self.cipher.object_name(digest) for doc in docs for digest in doc["objects"]}
        return {name: size for name, size in self.store.list(OBJECTS).items() if name not in named}


def backup_parts(manifest: dict) -> list[str]:
    """The files of a backup folder besides ``files/`` and the manifest, relative to it."""
    parts = [FILE_LIST]
    for name in manifest["collections"]:
        parts += [f"db/{dbdump.BSON_DIR}/{name}.bson", f"db/{dbdump.BSON_DIR}/{name}.metadata.json",
                  f"db/{dbdump.JSON_DIR}/{name}.json"]
    return parts


def _check_document(doc: dict) -> None:
    """A remote manifest's form; ``ValueError`` (or ``InvalidName``) when it is not right."""
    if doc["format"] != BACKUP_FORMAT or doc["version"] != 1 or not is_mode_name(doc["mode"]):
        raise ValueError("not a Strongroom remote manifest of a known version")
    scope = Scope.site() if doc["scope"] == "site" and doc["project"] is None else Scope.project(doc["project"])
    if scope.kind != doc["scope"]:
        raise ValueError(f"unknown scope {doc['scope']!r}")
    validate_backup_id(doc["id"])
    manifest = doc["manifest"]
    if not isinstance(manifest, dict) or manifest.get("id") != doc["id"] or not isinstance(
            manifest.get("collections"), dict) or not isinstance(manifest.get("files"), dict):
        raise ValueError("its backup manifest is not for this backup")
    if set(doc["parts"]) != set(backup_parts(manifest)):
        raise ValueError("its parts are not those of its backup")
    digests = [*doc["parts"].values(), *doc["objects"]]
    if not all(isinstance(d, str) and HEX64.match(d) for d in digests):
        raise ValueError("it names an object by something other than a SHA-256")
