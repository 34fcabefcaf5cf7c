"""Walking a folder in the order every file list uses, and merge-joining two such streams.

The walk is depth-first with siblings sorted by name, so entries come in the order of
their path components (``manifest.path_key``). File lists are written in that order, so
a walk and a list (or two lists) can be joined in constant memory with ``Cursor``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from .manifest import path_key


class Cursor:
    """Finds items of a stream in walk order by path, advancing only forward.

    The stream is a file list's entries (path under ``"path"``) or ``walk``'s tuples
    (path first); asked for paths in walk order, it merge-joins in constant memory.
    """

    def __init__(self, items: Iterator | None, path_of: Callable = lambda item: item["path"]):
        self._items = items or iter(())
        self._path_of = path_of
        self._current = next(self._items, None)

    def find(self, path: str):
        key = path_key(path)
        while self._current is not None and path_key(self._path_of(self._current)) < key:
            self._current = next(self._items, None)
        if self._current is not None and self._path_of(self._current) == path:
            return self._current
        return None


def walk(root: Path | str, prefix: str = "") -> Iterator[tuple[str, str, os.stat_result]]:
    """(relative path, absolute path, lstat) of everything below ``root``, in walk order:
    depth-first, siblings by name, a folder right before its contents."""
    with os.scandir(root) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        rel = prefix + entry.name
        st = entry.stat(follow_symlinks=False)
        yield rel, entry.path, st
        if stat.S_ISDIR(st.st_mode):
            yield from walk(entry.path, rel + "/")

