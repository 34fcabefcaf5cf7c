"""The site key and the manifest's signature: nobody changes a backup unnoticed.

A manifest holds every checksum a restore or ``verify`` relies on (the file list's,
each collection's BSON, JSON and metadata) and what the backup is (scope, project,
run mode, id, the folder's own mode). It is signed with HMAC-SHA256 under the site
key, over its canonical JSON form (keys sorted, no spaces, ASCII) without the
``signature`` field itself, so any edit of it, even one that updates the inner
checksums, no longer matches.

The site key is 32 random bytes in ``<data dir>/backups/.site-key`` (mode 0600), made
at the first backup, or a file of the site's choice (``STRONGROOM_SITE_KEY_FILE``,
which must exist). Whoever could replace the key could sign a backup of their own, so
the key is read only when nothing but its reader could have written it
(``private_file``: a plain file owned by the user running Strongroom, writable by
nobody else, one name, in a folder writable by its owner alone, that owner being the
same user or root; a FIFO, folder, device or link at its place is refused at once,
never opened to wait on), and it must hold exactly 32 bytes. Anything else is
``KeyRefused``, never used.

Every signature names its key by its fingerprint, the key's id (``key_id``: a hash of
the key, which cannot sign): so a backup signed under another key is told apart from an
edited one (``SignedElsewhere``), and listed as such rather than hidden. A new key is
made only where no backup signed by a key exists (``keyring.signers``): a lost or
renamed key never silently becomes a second one that splits the history; the way
through a lost key is ``strongroom key``'s (``check.keys``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os

from strongroom.config import Config
from strongroom.errors import CorruptBackup, KeyMissing, KeyRefused, SignedElsewhere
from strongroom.fs import mutations
from strongroom.fs.private_file import Refused, judge_folder, read_private_file, write_private_file
from strongroom.humanize import plural
from strongroom.repo import keyring

ALGORITHM = "hmac-sha256"
KEY_BYTES = 32  # exactly: a key Strongroom made, or a copy of one


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


def signer(manifest: dict) -> str | None:
    """The id of the key ``manifest`` says signed it (a claim: only the key checks it)."""
    signature = manifest.get("signature")
    key = signature.get("key_id") if isinstance(signature, dict) else None
    return key if isinstance(key, str) else None


def authenticate(name: str, manifest: dict, key: bytes | None) -> None:
    """Raise ``CorruptBackup`` unless the manifest's signature is the site key's over it:
    ``SignedElsewhere`` when it names another key, or there is no key to check it with."""
    signature = manifest.get("signature")
    if not isinstance(signature, dict) or signature.get("algorithm") != ALGORITHM:
        raise CorruptBackup(f"backup {name}: its manifest carries no valid signature")
    claimed = signer(manifest)
    if key is None:
        raise KeyMissing(f"backup {name}: cannot check its signature (key {claimed}): there is no site key "
                              "(put it back: `strongroom key import FILE`; see `strongroom key status`)", claimed)
    if claimed != key_id(key):
        raise SignedElsewhere(f"backup {name} was signed with another site key (key {claimed}, this site's "
                              f"is {key_id(key)}; see `strongroom key status`)", claimed)
    expected = hmac.new(key, canonical(manifest), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, str(signature.get("value"))):
        raise CorruptBackup(f"backup {name}: its manifest does not match its signature: "
                            "it was changed after the backup was made")


class SiteKey:
    """The site's key, read once (and checked: ``private_file``); made at first use when
    it is the default one and no backup is signed by another."""

    def __init__(self, config: Config):
        self.config = config
        self.path = config.site_key_path
        self.configured = config.site_key_file is not None
        self._key: bytes | None = None

    def get(self, create: bool = False) -> bytes | None:
        """The key; None when there is none yet and ``create`` is False. ``KeyRefused``
        when the key at its place cannot be trusted or used, and when ``create`` would
        make a key while backups signed by another exist."""
        if self._key is None:
            self._key = self._read()
        if self._key is None and create:
            refuse_new_key(self.config, self.path)
            self._key = self.make()
        return self._key

    def state(self) -> dict:
        """``{"path", "configured", "state", "id", "problem"}``, never raising: ``state`` is
        ``ok`` (``id``: its fingerprint), ``none`` (none yet, and no backup needs one),
        ``missing`` (a configured key, or one that signed backups here, is not there) or
        ``refused`` (``problem`` says why it cannot be used)."""
        found = {"path": str(self.path), "configured": self.configured, "state": "ok", "id": None, "problem": None}
        try:
            key = self.get()
        except KeyRefused as exc:
            gone = self.configured and not os.path.lexists(self.path)
            return {**found, "state": "missing" if gone else "refused", "problem": str(exc)}
        if key is not None:
            return {**found, "id": key_id(key)}
        signed = any(k is not None for k in keyring.signers(self.config))
        return {**found, "state": "missing" if signed else "none"}

    def _read(self) -> bytes | None:
        try:
            key = read_private_file(self.path)
        except FileNotFoundError:
            if self.configured:
                raise KeyRefused(f"the configured site key {self.path} does not exist") from None
            return None
        except Refused as exc:
            raise KeyRefused(f"the site key {self.path} is refused: {exc} (it may have been swapped: put the "
                             "genuine key back, see `strongroom key status`)") from None
        except OSError as exc:
            raise KeyRefused(f"the site key {self.path} cannot be read: {exc.strerror}") from None
        check_length(key, f"the site key {self.path}")
        return key

    def make(self, key: bytes | None = None) -> bytes:
        """Put ``key`` (a new random one when None) at the key's place, unless a key is
        already there (the first writer wins); return the key that is there. The caller
        has checked that this may be done (``refuse_new_key``, ``check.keys``)."""
        mutations.makedirs(self.path.parent, mode=0o700)
        try:  # no key is written where others could swap it
            judge_folder(self.path.parent, os.stat(self.path.parent))
        except Refused as exc:
            raise KeyRefused(f"no site key is made at {self.path}: {exc}") from None
        write_private_file(self.path, key if key is not None else os.urandom(KEY_BYTES))
        self._key = None
        made = self._read()
        assert made is not None
        self._key = made
        return made


def check_length(key: bytes, what: str) -> None:
    """``KeyRefused`` unless ``key`` is ``KEY_BYTES`` long: a file of another length is no
    key Strongroom made (and a short one is easier to guess)."""
    if len(key) != KEY_BYTES:
        raise KeyRefused(f"{what} is refused: it holds {len(key)} bytes, and a site key is exactly {KEY_BYTES} "
                         "(the 32 random bytes Strongroom makes; see docs/keys.md)")


def refuse_new_key(config: Config, path) -> None:
    """``KeyRefused`` if a backup signed by a key exists: a new key would leave it (and
    every backup like it) unverifiable, and so unrestorable, without a word."""
    signed = {key: names for key, names in keyring.signers(config).items() if key is not None}
    if not signed:
        return
    count = sum(map(len, signed.values()))
    keys = ", ".join(f"{key} ({len(names)}, e.g. {names[-1]})" for key, names in signed.items())
    raise KeyRefused(f"there is no site key at {path}, and {plural(count, 'backup')} {'is' if count == 1 else 'are'} "
                     f"signed by another key ({keys}): no new key is made, which would leave them unverifiable; "
                     "put the key back (`strongroom key import FILE`) or, if it is lost for good, trust those backups' content "
                     "under a new key (`strongroom key adopt --from KEY`; see docs/keys.md)")
