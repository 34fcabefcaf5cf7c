"""Helpers for the tests that tamper with backups as an attacker would."""

from __future__ import annotations

import json
from pathlib import Path

from strongroom.repo.signing import sign


def read_manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def write_manifest(folder: Path, manifest: dict) -> None:
    """Replace the manifest as an attacker without the site key can."""
    (folder / "manifest.json").write_text(json.dumps(manifest))


def resign(config, folder: Path, manifest: dict) -> None:
    """Replace the manifest signed with the site key, as someone holding the key could:
    what the signature does not stop, the checks behind it must."""
    key = config.site_key_path.read_bytes()
    write_manifest(folder, sign({k: v for k, v in manifest.items() if k != "signature"}, key))
