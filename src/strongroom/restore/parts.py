"""The parts of a scope a partial restore puts back: files or folders, by path.

Each part is a path relative to the scope's folder, validated by
``ids.validate_relative_path``; a part inside another is the same as the outer one. A
path is *in* the parts if it is a part or lies below one; the folders that lead to a
part are its *ancestors*, which a partial restore needs but does not change.

``merge`` joins two file lists in walk order (both are in walk order, so it streams):
the backup's entries in the parts, and the live entries (the pre-restore backup's)
everywhere else. An ancestor keeps its live entry, so its mode and time stay, unless
the live scope lacks it as a folder: then the backup's folder is made.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from strongroom.errors import BadInput, NotFound
from strongroom.ids import validate_relative_path
from strongroom.repo.manifest import path_key


class Parts:
    def __init__(self, paths: Iterable[str] | str):
        if isinstance(paths, str):  # one path, never its characters
            paths = [paths]
        chosen = sorted({str(validate_relative_path(path.rstrip("/") or path)) for path in paths}, key=path_key)
        if not chosen:
            raise BadInput("name at least one path to restore")
        self.paths: list[str] = []
        for path in chosen:  # sorted, so an outer part comes before those inside it
            if not any(_within(path, outer) for outer in self.paths):
                self.paths.append(path)
        self.ancestors = {"/".join(path.split("/")[:depth]) for path in self.paths
                          for depth in range(1, path.count("/") + 1)}

    def __repr__(self) -> str:
        return f"Parts({self.paths!r})"

    def contains(self, path: str) -> bool:
        """Is ``path`` one of the parts or below one?"""
        return any(_within(path, part) for part in self.paths)

    def check_present(self, entries: Iterator[dict], backup_id: str) -> None:
        """``NotFound`` naming the parts the backup does not hold."""
        wanted = set(self.paths)
        for entry in entries:
            wanted.discard(entry["path"])
            if not wanted:
                return
        shown = ", ".join(sorted(wanted, key=path_key))
        raise NotFound(f"backup {backup_id} holds no {shown}: nothing was changed "
                       "(paths are relative to the scope's folder; `strongroom show` lists what a backup holds)")

    def select(self, entries: Iterator[dict]) -> Iterator[dict]:
        """The entries in the parts, and the folders that lead to them; a hard link to a
        file outside the parts is copied instead."""
        for entry in entries:
            if self.contains(entry["path"]):
                if "hardlink" in entry and not self.contains(entry["hardlink"]):
                    entry = {key: value for key, value in entry.items() if key != "hardlink"}
                yield entry
            elif entry["path"] in self.ancestors:
                yield entry

    def merge(self, backup: Iterator[dict], live: Iterator[dict]) -> Iterator[dict]:
        """The backup's entries in the parts and the live ones outside, in walk order."""
        ours = self.select(backup)
        theirs = (entry for entry in live if not self.contains(entry["path"]))
        mine, other = next(ours, None), next(theirs, None)
        while mine is not None or other is not None:
            if other is None or (mine is not None and path_key(mine["path"]) < path_key(other["path"])):
                yield mine
                mine = next(ours, None)
            elif mine is None or path_key(other["path"]) < path_key(mine["path"]):
                yield other
                other = next(theirs, None)
            else:  # an ancestor in both: the live folder stays, a live file or link gives way
                yield other if other["type"] == "dir" else mine
                mine, other = next(ours, None), next(theirs, None)


def _within(path: str, part: str) -> bool:
    return path == part or path.startswith(part + "/")
