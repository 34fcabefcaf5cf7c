"""The site key and the manifest's signature: nobody changes a backup unnoticed.

A manifest holds every checksum a restore or ``verify`` relies on (the file list's,
each collection's BSON, JSON and metadata) and what the backup is (scope, project,
run mode, id, the folder's own mode). It is signed with HMAC-SHA256 under the site
key, over its canonical JSON form (keys sorted, no spaces, ASCII) without the
``signature`` field itself, so any edit of it, even one that updates the inner
checksums, no longer matches.

The site key is 32 random bytes in ``<data dir>/backups/.site-key`` (mode 0600), made
at the first backup: written under a temporary name and linked into place, so two
processes never make two keys and an existing key is never overwritten. A site may
keep it elsewhere (``STRONGROOM_SITE_KEY_FILE``); a configured key must exist. The
key's id (a hash of it, not the key) is recorded beside each signature, so a backup
signed under another key is told apart from an edited one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os

from strongroom.config import Config
from strongroom.errors import BadInput, CorruptBackup
from strongroom.fs import mutations

ALGORITHM = "hmac-sha256"
KEY_BYTES = 32
MIN_KEY_BYTES = 16


def key_id(key: bytes) -> str:
    """A public name for a key: who holds the id cannot sign."""
    return hashlib.sha256(b"strongroom site key id\0" + key).hexdigest()[:16]


def canonical(manifest: dict) -> bytes:
    """The bytes that are signed: the manifest without its signature, in one fixed form."""
    unsigned = {k: v for k, v in manifest.items() if k != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def sign(manifest: dict, key: bytes) -> dict:
    """The manifest with its ``signature`` field (a new dict)."""
    value = hmac.new(key, canonical(manifest), hashlib.sha256).hexdigest()
    return {**manifest, "signature": {"algorithm": ALGORITHM, "key_id": key_id(key), "value": value}}


def is_signed_by(document: dict, key: bytes | None) -> bool:
    """Does ``document`` carry a signature of ``key`` over it? (For small files beside the
    backups, such as the live index's header, that are ignored when they fail.)"""
    signature = document.get("signature")
    if key is None or not isinstance(signature, dict) or signature.get("key_id") != key_id(key):
        return False
    expected = hmac.new(key, canonical(document), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, str(signature.get("value")))


def authenticate(name: str, manifest: dict, key: bytes | None) -> None:
    """Raise ``CorruptBackup`` unless the manifest's signature is the site key's over it."""
    signature = manifest.get("signature")
    if not isinstance(signature, dict) or signature.get("algorithm") != ALGORITHM:
        raise CorruptBackup(f"backup {name}: its manifest carries no valid signature")
    if key is None:
        raise CorruptBackup(f"backup {name}: cannot check its signature: there is no site key "
                            "(restore the key file, or point STRONGROOM_SITE_KEY_FILE at it)")
    if signature.get("key_id") != key_id(key):
        raise CorruptBackup(f"backup {name} was signed with another site key "
                            f"({signature.get('key_id')!r}, this site's is {key_id(key)!r})")
    expected = hmac.new(key, canonical(manifest), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, str(signature.get("value"))):
        raise CorruptBackup(f"backup {name}: its manifest does not match its signature: "
                            "it was changed after the backup was made")


class SiteKey:
    """The site's key, read once; made at first use when it is the default one."""

    def __init__(self, config: Config):
        self.path = config.site_key_path
        self.configured = config.site_key_file is not None
        self._key: bytes | None = None

    def get(self, create: bool = False) -> bytes | None:
        """The key; None when there is none yet and ``create`` is False."""
        if self._key is None:
            self._key = self._read()
        if self._key is None and create:
            self._key = self._create()
        return self._key

    def _read(self) -> bytes | None:
        try:
            key = self.path.read_bytes()
        except FileNotFoundError:
            if self.configured:
                raise BadInput(f"the configured site key {self.path} does not exist") from None
            return None
        if len(key) < MIN_KEY_BYTES:
            raise BadInput(f"the site key {self.path} is too short ({len(key)} bytes; at least {MIN_KEY_BYTES})")
        return key

    def _create(self) -> bytes:
        """Write a new key beside its place, then link it there: the first writer wins."""
        folder = self.path.parent
        mutations.makedirs(folder, mode=0o700)
        tmp = folder / f".site-key.{os.getpid()}-{os.urandom(6).hex()}"
        try:
            with mutations.create(tmp) as fh:
                mutations.chmod(tmp, 0o600)  # before the key is in it
                mutations.write(fh, os.urandom(KEY_BYTES))
                fh.flush()
                os.fsync(fh.fileno())
            try:
                mutations.link(tmp, self.path)
            except FileExistsError:
                pass  # another process made it first: use that one
            mutations.fsync_dir(folder)
        finally:
            if os.path.lexists(tmp):
                mutations.unlink(tmp)
        key = self._read()
        assert key is not None
        return key

