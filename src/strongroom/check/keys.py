"""The site key's life: what signs what, a copy for safekeeping, a key put back, a key adopted.

- ``report``: the key in use (its fingerprint, or why it cannot be used), its recorded
  exports, and which keys sign the data dir's backups (``keyring.signers``).
- ``export_key``: a copy of the key into a new file (mode 0600) outside ``backups/``, and a
  record that it was made (``status`` warns until there is one).
- ``import_key``: a saved key put back at the key's place, when none is there, or when
  what is there is refused (moved aside, kept as evidence). It must be the key of the
  backups here: a key that signs none of them while others are signed is refused, so a
  wrong file never becomes a new key that splits the history.
- ``require_key``: before a restore saves or changes anything, a usable key (there is
  none to check the backup with otherwise); refused in one line saying how to proceed.
- ``require_signing_key``: before a backup is started as a job, a key it can sign with.
- ``adopt``: the way through a key lost for good. The backups whose signature names key
  ``from_key`` (which cannot be checked: the key is gone) are verified in full, every
  stored file and record dump re-hashed against their manifest and nothing unlisted in
  their folders, and those that pass are signed with the site key (made now if there is
  none), their manifest recording ``adopted``: when, by whom, from which key. Their
  content proves itself consistent, not genuine: whoever can write ``backups/`` can make
  a consistent forged backup and name any key in its signature. So nothing adopts by
  itself: the operator names the key, sees the list of backups (``candidates``) and says
  yes; the audit log and each manifest keep the act.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from strongroom.check import verifying
from strongroom.errors import BadInput, KeyRefused, NotFound
from strongroom.fs import mutations
from strongroom.fs.private_file import Refused, read_private_file, write_private_file
from strongroom.repo import keyring, signing
from strongroom.repo.manifest import replace_manifest, summary
from strongroom.scopes import Scope


def report(sr) -> dict:
    """``{"path", "configured", "id", "problem", "exports", "signers"}``: ``signers`` maps
    each key id (``"unsigned"`` for backups made before signing) to its backups' count."""
    state = sr.store.site_key.state()
    return {**state, "exports": keyring.exports(sr.config, state["id"]) if state["id"] else [],
            "signers": {key or "unsigned": len(names) for key, names in keyring.signers(sr.config).items()}}


def require_key(sr, doing: str) -> None:
    """``KeyRefused`` (exit 2) when there is no usable site key: ``doing`` (``restore of
    ID``) could check no backup's signature, so it is refused before it saves or changes
    anything, saying how to proceed (docs/keys.md)."""
    try:
        key = sr.store.site_key.get()
    except KeyRefused as exc:
        raise KeyRefused(f"{doing} refused: {exc}; nothing was saved or changed") from None
    if key is not None:
        return
    signed = sorted(k for k in keyring.signers(sr.config) if k is not None)
    by = f" (the backups here are signed by {', '.join(signed)})" if signed else ""
    raise KeyRefused(f"{doing} refused: the site key is missing ({sr.store.site_key.path}){by}, so no backup can be "
                     "checked; nothing was saved or changed. Put the key back (`strongroom key import FILE`) or, if "
                     f"it is lost for good, adopt the backups (`strongroom key adopt --from {signed[0] if signed else 'KEY'}`): "
                     "see docs/keys.md, 'When the key is lost'")


def require_signing_key(sr, doing: str) -> None:
    """``KeyRefused`` (exit 2, HTTP 409) when a backup could not be signed: the key at its
    place is refused, or there is none and none may be made (backups signed by another
    key exist: ``signing.refuse_new_key``). Asked before a backup is started as a job, so
    that the caller hears it at once instead of from a job that failed."""
    try:
        if sr.store.site_key.get() is None:
            signing.refuse_new_key(sr.config, sr.store.site_key.path)
    except KeyRefused as exc:
        raise KeyRefused(f"{doing} refused: {exc}; nothing was saved") from None


def export_key(sr, to: Path, by: str) -> dict:
    """Copy the site key into the new file ``to``; ``{"key", "to"}``."""
    to = Path(to).absolute()
    base = sr.config.backups_base
    if to == base or base in to.parents:
        raise BadInput(f"{to} is inside {base}: keep the copy away from the backups, "
                       "whose loss it is meant to outlive")
    key = sr.store.site_key.get()
    if key is None:
        raise NotFound(f"there is no site key at {sr.store.site_key.path} to export")
    if not to.parent.is_dir():
        raise NotFound(f"no folder {to.parent} to write the key into")
    if os.path.lexists(to) or not write_private_file(to, key):
        raise BadInput(f"{to} exists: the key is written only into a new file")
    keyring.record_export(sr.config, signing.key_id(key), to, by, _now())
    return {"key": signing.key_id(key), "to": str(to)}


def import_key(sr, source: Path, by: str) -> dict:
    """Put the key saved in ``source`` at the key's place; ``{"key", "signs", "moved_aside"}``."""
    key = _read_saved(Path(source))
    new_id = signing.key_id(key)
    site_key = sr.store.site_key
    moved = None
    try:
        current = site_key.get()
    except KeyRefused:
        current = None
        moved = _move_aside(site_key.path)  # None: a configured key that is missing
    if current is not None:
        if signing.key_id(current) == new_id:
            return {"key": new_id, "signs": _signed_by(sr, new_id), "moved_aside": None}
        raise BadInput(f"a site key is in place ({site_key.path}, key {signing.key_id(current)}): it is not "
                       "replaced; export it (`strongroom key export --to FILE`) and move it away first")
    signed = {k: names for k, names in keyring.signers(sr.config).items() if k is not None}
    if signed and new_id not in signed:
        raise KeyRefused(f"{source} holds key {new_id}, which signed none of the backups here "
                         f"(they are signed by {', '.join(signed)}): not their key")
    site_key.make(key)
    return {"key": new_id, "signs": _signed_by(sr, new_id), "moved_aside": moved and str(moved)}


def _read_saved(source: Path) -> bytes:
    try:
        key = read_private_file(source, check_folder=False)  # a copy: checked by what it holds and signed
    except FileNotFoundError:
        raise NotFound(f"no key file {source}") from None
    except Refused as exc:
        raise KeyRefused(f"the key file {source} is refused: {exc}") from None
    signing.check_length(key, f"the key file {source}")
    return key


def _move_aside(path: Path) -> Path | None:
    """Keep what was refused at the key's place (the evidence of a swap) under another name."""
    if not os.path.lexists(path):
        return None
    aside = path.with_name(f"{path.name}.refused-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")
    mutations.rename(path, aside)
    mutations.fsync_dir(path.parent)
    return aside


def _signed_by(sr, key: str) -> int:
    return len(keyring.signers(sr.config).get(key, []))


def candidates(sr, from_key: str) -> list[tuple[Scope, Path, dict]]:
    """The backups of this run mode whose signature names ``from_key`` and that the site
    key cannot check (every scope: the site's, each project's), newest first per scope."""
    found = []
    for scope in sr.scopes_with_backups():
        for path, manifest, trust in sr.store.open_each(scope):
            if trust in ("other-key", "no-key") and signing.signer(manifest) == from_key:
                found.append((scope, path, manifest))
    return found


def adopt(sr, from_key: str, by: str) -> dict:
    """Verify in full and sign with the site key each of ``candidates``; ``{"key",
    "adopted": [summaries], "refused": [{"id", "scope", "project", "problems"}]}``."""
    current = sr.store.site_key.get()  # KeyRefused: a key that cannot be trusted signs nothing
    if current is not None and signing.key_id(current) == from_key:
        raise BadInput(f"key {from_key} is the site key in use: its backups need no adopting")
    chosen = candidates(sr, from_key)
    if not chosen:
        raise NotFound(f"no backup of the {sr.config.mode} run mode is signed by key {from_key} "
                       "(see `strongroom key status`)")
    passed, refused = [], []
    for scope, path, manifest in chosen:
        found = verifying.Findings()
        verifying.check_content(sr, path, manifest, found)
        if found.problems:
            refused.append({"id": manifest["id"], "scope": scope.kind, "project": scope.project_id,
                            "problems": found.problems})
        else:
            passed.append((path, manifest))
    key = current if current is not None or not passed else sr.store.site_key.make()
    adopted = []
    for path, manifest in passed:
        unsigned = {k: v for k, v in manifest.items() if k != "signature"}
        unsigned["adopted"] = {"at": _now(), "by": by, "from_key": from_key}
        replace_manifest(path, signing.sign(unsigned, key))
        adopted.append(summary(manifest))
    return {"key": key and signing.key_id(key), "adopted": adopted, "refused": refused}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
