"""HTTP answers that carry a backup's content: one file, or one folder as a tar.gz.

Both stream (``browsing`` reads in blocks and checks each file's hash as it goes) and are
always attachments with ``nosniff``, so a browser saves what a backup holds and never
runs it as a page of this site. A file's answer announces its length: when its stored
content turns out damaged, the last block is withheld and the download ends short, which
every client reports as a failed transfer rather than a good file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from urllib.parse import quote

from flask import Response


def _disposition(name: str) -> str:
    """``attachment`` with the name in RFC 6266 form (any bytes, even not UTF-8, survive)."""
    fallback = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in name) or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(os.fsencode(name), safe='')}"


def _streamed(blocks: Iterator[bytes], mimetype: str, name: str, length: int | None = None) -> Response:
    response = Response(blocks, mimetype=mimetype, direct_passthrough=True)
    response.headers["Content-Disposition"] = _disposition(name)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"  # a backup's content stays off shared caches
    if length is not None:
        response.headers["Content-Length"] = str(length)
    return response


def file_response(entry: dict, blocks: Iterator[bytes]) -> Response:
    return _streamed(blocks, "application/octet-stream", entry["path"].rsplit("/", 1)[-1], entry["size"])


def archive_response(name: str, blocks: Iterator[bytes]) -> Response:
    return _streamed(blocks, "application/gzip", name)


def crumbs(path: str) -> list[tuple[str, str]]:
    """``a/b/c`` as ``[("a", "a"), ("b", "a/b"), ("c", "a/b/c")]``: the way back up."""
    parts = path.split("/") if path else []
    return [(part, "/".join(parts[: i + 1])) for i, part in enumerate(parts)]
