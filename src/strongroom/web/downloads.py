"""HTTP answers that carry a backup's content (one file, or one folder as a tar.gz), and
the ``path`` of such URLs.

A file name may be any bytes the file system allows, not only UTF-8 (the manifest keeps
the others as surrogate escapes). ``path_url`` puts the bytes of a path in the query
string percent-encoded, and ``path_arg`` reads them back the same way, so every name
that can be listed can be opened; the path then goes through the one validator.

Both stream (``browsing`` reads in blocks and checks each file's hash as it goes) and are
always attachments with ``nosniff``, so a browser saves what a backup holds and never
runs it as a page of this site. A file's answer announces its length: when its stored
content turns out damaged, the last block is withheld and the download ends short, which
every client reports as a failed transfer rather than a good file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from urllib.parse import quote, unquote_to_bytes

from flask import Response, request, url_for


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


def send_file(face, project_id: str | None, backup_id: str) -> Response:
    """One stored file of the backup (``?path=``), for the panel and the API alike."""
    entry, blocks = face.file(project_id, backup_id, query_arg("path"))
    return file_response(entry, blocks)


def send_folder(face, project_id: str | None, backup_id: str) -> Response:
    """One folder of the backup (``?path=``; the top when absent) as a tar.gz."""
    name, blocks = face.archive(project_id, backup_id, query_arg("path"))
    return archive_response(name, blocks)


def crumbs(path: str) -> list[tuple[str, str]]:
    """``a/b/c`` as ``[("a", "a"), ("b", "a/b"), ("c", "a/b/c")]``: the way back up."""
    parts = path.split("/") if path else []
    return [(part, "/".join(parts[: i + 1])) for i, part in enumerate(parts)]


def path_url(endpoint: str, path: str | None = None, **values) -> str:
    """``url_for(endpoint, **values)`` with ``?path=`` holding the path's bytes, percent-encoded."""
    url = url_for(endpoint, **values)
    return f"{url}?path={quote(os.fsencode(path), safe='/')}" if path else url


def path_field(path: str) -> str:
    """A path's bytes, percent-encoded, for a form's hidden ``path_bytes`` field: any name
    the file system allows survives the page (HTML cannot carry bytes that are not UTF-8)."""
    return quote(os.fsencode(path), safe="/")


def form_paths() -> list[str]:
    """The paths a form sent: each ``path_bytes`` field decoded as ``path_field`` wrote it
    (surrogate escapes for bytes that are not UTF-8), then each typed ``path`` field."""
    encoded = [unquote_to_bytes(value).decode("utf-8", "surrogateescape") for value in request.form.getlist("path_bytes")]
    return encoded + request.form.getlist("path")


def query_arg(name: str) -> str | None:
    """The query-string value ``name``, with bytes that are not UTF-8 kept as surrogate
    escapes (as the manifest keeps such names), or None when absent."""
    for pair in request.query_string.split(b"&"):
        key, _, value = pair.partition(b"=")
        if unquote_to_bytes(key.replace(b"+", b" ")) == name.encode():
            return unquote_to_bytes(value.replace(b"+", b" ")).decode("utf-8", "surrogateescape")
    return None
