"""What the storage provider sees of offsite copies: names and sealed content.

Without a key (``Plain``) an object is named by its SHA-256 and stored as it is, a
backup's remote manifest by its run mode, scope and id. With a key (``Sealed``) the
provider sees neither content nor names:

- the configured key file's bytes are the master key; HKDF-SHA256 derives from it one
  key for content, one for names and a public key id (recorded on the remote, so a
  wrong key is told at once, before anything is read or written);
- an object's name is the HMAC-SHA256 of its content hash under the names key, a remote
  manifest's the HMAC of its run mode, scope and id: equal content still has one name
  (a push sends only what the remote lacks), but the name is not the content's hash;
- content is sealed with AES-256-GCM in chunks of 1 MiB, each under a fresh random
  96-bit nonce; the associated data binds each chunk to the object's name, its place in
  the object and whether it is the last, so a chunk moved, dropped, reordered or cut
  off, or an object put under another name, fails to open.

Both compute the SHA-256 of the plain content while sealing or opening, so the caller
checks it against the name it was stored under.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path
from typing import BinaryIO

from strongroom.config import ENV_REMOTE_KEY_FILE, RemoteSettings
from strongroom.errors import BadInput, CorruptBackup

MAGIC = b"SRE1"
CHUNK = 1 << 20
NONCE = 12
TAG = 16
MIN_KEY_BYTES = 16


class Plain:
    """No key: content as it is, names that say what they are."""

    encrypted = False
    key_id = None

    def object_name(self, digest: str) -> str:
        return digest

    def manifest_name(self, mode: str, scope_path: str, backup_id: str) -> str:
        return f"{mode}/{scope_path}/{backup_id}.json"

    def seal(self, name: str, src: BinaryIO, dst) -> str:
        """Copy ``src`` to ``dst``; return the SHA-256 of the content."""
        return _copy(src, dst)

    def open(self, name: str, src: BinaryIO, dst) -> str:
        return _copy(src, dst)


class Sealed:
    """A key: AES-256-GCM content and HMAC names (see the module's description)."""

    encrypted = True

    def __init__(self, master: bytes):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead = AESGCM(_derive(master, b"strongroom remote content"))
        self._names = _derive(master, b"strongroom remote names")
        self.key_id = _derive(master, b"strongroom remote key id").hex()[:16]

    def object_name(self, digest: str) -> str:
        return hmac.new(self._names, f"object\0{digest}".encode(), hashlib.sha256).hexdigest()

    def manifest_name(self, mode: str, scope_path: str, backup_id: str) -> str:
        return hmac.new(self._names, f"backup\0{mode}\0{scope_path}\0{backup_id}".encode(),
                        hashlib.sha256).hexdigest()

    def seal(self, name: str, src: BinaryIO, dst) -> str:
        """Write ``src`` sealed to ``dst``; return the SHA-256 of the plain content."""
        hasher = hashlib.sha256()
        dst.write(MAGIC)
        index, chunk = 0, src.read(CHUNK)
        while True:
            following = src.read(CHUNK) if len(chunk) == CHUNK else b""
            hasher.update(chunk)
            nonce = os.urandom(NONCE)
            dst.write(nonce + self._aead.encrypt(nonce, chunk, _bound(name, index, not following)))
            if not following:
                return hasher.hexdigest()
            index, chunk = index + 1, following

    def open(self, name: str, src: BinaryIO, dst) -> str:
        """Write the plain content of sealed ``src`` to ``dst``; its SHA-256.
        ``CorruptBackup`` when any part of it does not open under this key."""
        from cryptography.exceptions import InvalidTag

        if src.read(len(MAGIC)) != MAGIC:
            raise CorruptBackup(f"remote object {name} is not sealed by Strongroom")
        hasher, frame_size = hashlib.sha256(), NONCE + CHUNK + TAG
        index, frame = 0, src.read(frame_size)
        while True:
            following = src.read(frame_size) if len(frame) == frame_size else b""
            try:
                plain = self._aead.decrypt(frame[:NONCE], frame[NONCE:], _bound(name, index, not following))
            except (InvalidTag, ValueError):
                raise CorruptBackup(f"remote object {name} does not open with the configured key: "
                                    "it was changed, cut short or moved") from None
            hasher.update(plain)
            dst.write(plain)
            if not following:
                return hasher.hexdigest()
            index, frame = index + 1, following


def cipher_for(settings: RemoteSettings) -> Plain | Sealed:
    """``Sealed`` under the configured key file, or ``Plain`` when none is configured."""
    if settings.key_file is None:
        return Plain()
    return Sealed(read_key(settings.key_file))


def read_key(path: Path) -> bytes:
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        raise BadInput(f"the remote key file {path} ({ENV_REMOTE_KEY_FILE}) does not exist") from None
    except OSError as exc:
        raise BadInput(f"the remote key file {path} cannot be read: {exc.strerror}") from None
    if len(key) < MIN_KEY_BYTES:
        raise BadInput(f"the remote key file {path} is too short ({len(key)} bytes; at least "
                       f"{MIN_KEY_BYTES}, best 32 random bytes)")
    return key


def _derive(master: bytes, purpose: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(master)


def _bound(name: str, index: int, last: bool) -> bytes:
    """The associated data of one chunk: which object, which chunk, the last or not."""
    return name.encode() + b"\0" + index.to_bytes(8, "big") + (b"\1" if last else b"\0")


def _copy(src: BinaryIO, dst) -> str:
    hasher = hashlib.sha256()
    while chunk := src.read(CHUNK):
        hasher.update(chunk)
        dst.write(chunk)
    return hasher.hexdigest()
