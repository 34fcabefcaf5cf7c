"""What a restore puts back: a backup whole, one project of a site backup, or parts of either.

A ``Source`` is the file list (in walk order, paths relative to the scope's folder), the
folder its files are copied from, the mode of the scope's folder, and the records: the
dump's folder and collections, or none (the records are left as they are). The restore
(``restoring``) builds its new tree and loads its records from a ``Source`` alone, so a
partial restore runs the very same journaled build-beside-then-swap as a whole one.

- ``whole``: the backup as it is.
- ``project_of_site``: one project of a site backup: the entries below
  ``project/<id>/`` with that prefix taken off, and the records the project's queries
  select (``scopes.project_queries``), the dump filtered as it is loaded
  (``docfilter``).
- ``with_parts``: the live scope with only some parts (files or folders) taken from a
  source (``parts``); every other entry comes from the pre-restore backup, which
  describes the live folder as it is, so whatever lies outside the parts stays.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from strongroom.repo.checkedlist import CheckedList
from strongroom.repo.manifest import iter_entries, restorable_root_mode
from strongroom.restore.parts import Parts

FROM_PRE = "_from"  # an entry marked with it is copied from ``Source.more_files``


@dataclass(frozen=True)
class Source:
    backup_id: str
    files_dir: Path
    entries: Callable[[], Iterator[dict]]
    total: int  # bytes of the files to copy (``rebuild.build_tree``'s progress)
    top: dict | None  # the scope folder's own mode and time
    bson_dir: Path | None  # None: the records are not restored
    collections: tuple[str, ...] = ()
    filtered: bool = False  # the dump holds more than the scope: load only what its queries select
    more_files: Path | None = None  # the pre-restore backup's files, for entries marked FROM_PRE
    records: int = 0  # records in the dump's chosen collections (an upper bound when filtered)
    recorded: Mapping[str, dict] = field(default_factory=dict)  # the manifest's count, bytes, hashes per collection
    counted: Callable[[str], bool] | None = None  # the paths a result counts (a restore of parts: its parts)


def whole(path: Path, manifest: dict, listing: CheckedList | None = None) -> Source:
    """The backup at ``path`` as it is; its entries from ``listing`` if given (the file
    list the check before the restore read, kept checked: ``checkedlist``)."""
    entries = listing.entries if listing is not None else lambda: iter_entries(path, manifest)
    return Source(manifest["id"], path / "files", entries,
                  manifest["files"].get("bytes", 0), _top(manifest["files"].get("root")),
                  path / "db" / "bson", tuple(manifest["collections"]), records=_records(manifest, manifest["collections"]),
                  recorded=manifest["collections"])


def project_of_site(path: Path, manifest: dict, project_id: str, collections: list[str]) -> Source:
    """Project ``project_id`` of the site backup at ``path``: its folder's entries and the
    records of ``collections`` (the project's, as far as the backup holds them)."""
    prefix = f"project/{project_id}"
    chosen = tuple(name for name in manifest["collections"] if name in collections)
    folder = {"entry": None, "bytes": 0}
    for entry in iter_entries(path, manifest):  # its bytes, and the folder's own mode and time
        if entry["path"] == prefix:
            folder["entry"] = entry
        elif entry["path"].startswith(prefix + "/"):
            folder["bytes"] += entry.get("size", 0) if entry["type"] == "file" else 0
    files = path / "files" / "project" / project_id if folder["entry"] else path / "files"
    return Source(manifest["id"], files,
                  lambda: _below(iter_entries(path, manifest), prefix), folder["bytes"],
                  _top(folder["entry"]), path / "db" / "bson", chosen, filtered=True,
                  records=_records(manifest, chosen))


def has_folder(path: Path, manifest: dict, folder: str) -> bool:
    """Does the backup hold ``folder`` as a folder?"""
    return any(entry["path"] == folder and entry["type"] == "dir" for entry in iter_entries(path, manifest))


def _below(entries: Iterator[dict], prefix: str) -> Iterator[dict]:
    """The entries below ``prefix``, relative to it; a hard link to a file outside is copied."""
    start = prefix + "/"
    for entry in entries:
        if not entry["path"].startswith(start):
            continue
        entry = {**entry, "path": entry["path"][len(start):]}
        if "hardlink" in entry:
            if entry["hardlink"].startswith(start):
                entry["hardlink"] = entry["hardlink"][len(start):]
            else:
                del entry["hardlink"]
        yield entry


def with_parts(source: Source, parts: Parts, pre_path: Path, pre: dict) -> Source:
    """The live scope (as the pre-restore backup ``pre`` describes it) with ``parts`` taken
    from ``source``; no records. Only the parts count (``Source.counted``): the restore's
    figures and progress are theirs, not those of the live files kept around them."""
    return replace(source, entries=lambda: parts.merge(source.entries(), _marked(iter_entries(pre_path, pre))),
                   total=_bytes(parts.select(source.entries())), top=_top(pre["files"].get("root")),
                   bson_dir=None, collections=(), filtered=False, more_files=pre_path / "files",
                   counted=parts.contains)


def only_parts(source: Source, parts: Parts) -> Source:
    """Just ``parts`` of ``source`` (and the folders that lead to them), for a folder of
    their own (``restore --to``); no records."""
    return replace(source, entries=lambda: parts.select(source.entries()), total=_bytes(parts.select(source.entries())),
                   top=None, bson_dir=None, collections=(), filtered=False)


def _bytes(entries: Iterator[dict]) -> int:
    """The bytes of the files among ``entries``."""
    return sum(entry.get("size", 0) for entry in entries if entry["type"] == "file")


def _marked(entries: Iterator[dict]) -> Iterator[dict]:
    """The pre-restore backup's entries, each marked to be copied from it if it must be
    copied. A hard link is not rebuilt from the list (its earlier name could be a part):
    an unchanged live file is kept by inode, which keeps the link."""
    for entry in entries:
        entry = {**entry, FROM_PRE: True}
        entry.pop("hardlink", None)
        yield entry


def _records(manifest: dict, names) -> int:
    return sum(manifest["collections"][name].get("count", 0) for name in names)


def _top(root: dict | None) -> dict | None:
    """The scope folder's own mode and time, as a restore may give them (``restorable_root_mode``)."""
    return root and {"mode": restorable_root_mode(root["mode"]), "mtime_ns": root["mtime_ns"]}
