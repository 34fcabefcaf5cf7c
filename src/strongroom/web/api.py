"""The JSON API, ``/api/v1/…``: the panel's operations with the same permissions.

Reads answer 200 (a backup's folder listing, one stored file or a folder as tar.gz, a
diff); a backup, a confirmed restore, a delete and a check start a job and answer 202
with the job and its ``Location``; ``POST …/restore`` without ``"confirm": true``
answers the preview. Every error has one shape, ``{"error": {"status", "code",
"message"}}``, with the status of the core's typed error (400, 403, 404, 409), or
405 (with ``Allow``; OPTIONS too) and 404 from routing, or 413 for a body over
``MAX_BODY``. Bodies are read only after the CSRF and permission checks, with limits
(size, depth) and strict types. While a restore runs, writes get 409 and,
during a site restore, reads get 503 (``maintenance.py``). ``openapi.json`` describes it all.
"""

from __future__ import annotations

import json
import re
from importlib import resources

from flask import Blueprint, Flask, current_app, jsonify, request, url_for
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from strongroom.errors import BadInput, Busy, StrongroomError
from strongroom.web import csrf, downloads, messages


def _face():
    return current_app.extensions["strongroom"]


def error_response(status: int, code: str, message: str):
    response = jsonify({"error": {"status": status, "code": code, "message": message}})
    response.status_code = status
    return response


def _code(exc: Exception) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()


def _strongroom_error(exc: StrongroomError):
    return error_response(exc.http_status, _code(exc), str(exc))


def _http_error(exc: HTTPException):
    response = error_response(exc.code or 500, _code(exc), messages.routing(exc, request.path, request.method, api=True))
    for name, value in exc.get_headers():  # a 405's Allow
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _unexpected(exc: Exception):
    current_app.logger.exception("API request failed")
    return error_response(500, "internal_error", f"unexpected failure: {type(exc).__name__}")


def install_error_pages(app: Flask, api_prefix: str, pages_prefix: str | None = None, page=None) -> None:
    """Routing's 404 and 405 under the API's prefix answer JSON; elsewhere, what they did,
    and where nothing did, under ``pages_prefix`` (the panel's pages) ``page(exc)``."""
    for status in (404, 405):
        # Flask files a handler of 404 under its code, then its exception class
        previous = next(iter(app.error_handler_spec.get(None, {}).get(status, {}).values()), None)

        def handler(exc, previous=previous):
            if request.path.startswith(api_prefix):
                return _http_error(exc)
            if previous:
                return previous(exc)
            if page and pages_prefix and request.path.startswith(pages_prefix):
                return page(exc)
            return exc.get_response()

        app.register_error_handler(status, handler)


def make_api_blueprint() -> Blueprint:
    bp = Blueprint("api", __name__)
    bp.errorhandler(StrongroomError)(_strongroom_error)
    bp.errorhandler(HTTPException)(_http_error)
    bp.errorhandler(Exception)(_unexpected)

    def scoped(path: str, view, methods) -> None:
        for rule, defaults in ((f"/site/backups{path}", {"project_id": None}),
                               (f"/projects/<project_id>/backups{path}", {})):
            bp.add_url_rule(rule, view.__name__, view, methods=methods, defaults=defaults, merge_slashes=False,
                            provide_automatic_options=False)

    scoped("", list_backups, ["GET"])
    scoped("", create_backup, ["POST"])
    scoped("/<backup_id>", show_backup, ["GET"])
    scoped("/<backup_id>", delete_backup, ["DELETE"])
    scoped("/<backup_id>/restore", restore_backup, ["POST"])
    scoped("/<backup_id>/restore-part", restore_part, ["POST"])
    scoped("/<backup_id>/browse", browse_backup, ["GET"])
    scoped("/<backup_id>/download", download_file, ["GET"])
    scoped("/<backup_id>/archive", download_archive, ["GET"])
    scoped("/<backup_id>/diff", diff_backup, ["GET"])
    scoped("/<backup_id>/check", check_backup, ["POST"])
    # OPTIONS is not routed (405 with Allow, as documented): no CORS, nothing to announce
    bp.add_url_rule("/jobs/<job_id>", "job", job, merge_slashes=False, provide_automatic_options=False)
    bp.add_url_rule("/session", "session", session_info, provide_automatic_options=False)
    bp.add_url_rule("/openapi.json", "openapi", openapi, provide_automatic_options=False)
    return bp


MAX_BODY = 16 * 1024  # bytes: a note of 500 characters, escaped, fits many times over
MAX_DEPTH = 8  # nesting of arrays and objects; the bodies here are flat objects
JSON_TYPES = ("application/json",)
TYPE_WORDS = {bool: "true or false", str: "text", list: "a list"}
MAX_PARTS = 100  # paths in one partial restore


def _body(fields: dict[str, type]) -> dict:
    """The request's JSON body, checked: called only after the permission check.

    It is read whatever its framing (``Content-Length`` or chunked), at most ``MAX_BODY``
    bytes (413 beyond), nested at most ``MAX_DEPTH`` deep, must be a JSON object whose
    members are among ``fields`` with exactly their types (400 otherwise). No body (zero
    bytes) is ``{}``.
    """
    raw = _read_limited()
    if not raw:  # no body at all; white space alone is not JSON (400)
        return {}
    if request.mimetype not in JSON_TYPES and not request.mimetype.endswith("+json"):
        raise BadInput("the request body must be JSON, sent as Content-Type: application/json")
    body = _parse(raw)
    if not isinstance(body, dict):
        raise BadInput("the request body must be a JSON object")
    for name, value in body.items():
        if name not in fields:
            allowed = f"it may hold {', '.join(map(json.dumps, fields))}" if fields else "it takes none"
            raise BadInput(f"unknown member {json.dumps(name)} in the request body; {allowed}")
        if type(value) is not fields[name]:  # exactly: True is not a number, 1 is not a bool
            raise BadInput(f'"{name}" must be {TYPE_WORDS.get(fields[name], "text")}')
    return body


def _read_limited() -> bytes:
    too_large = RequestEntityTooLarge(f"the request body is larger than the limit of {MAX_BODY} bytes")
    if (request.content_length or 0) > MAX_BODY:
        raise too_large
    stream, chunks, size = request.stream, [], 0
    while size <= MAX_BODY:  # a chunked body has no length: read until its end, or past the limit
        chunk = stream.read(MAX_BODY + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > MAX_BODY:
        raise too_large
    return b"".join(chunks)


def _parse(raw: bytes):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput("the request body must be JSON in UTF-8") from None
    if _too_deep(text):
        raise BadInput(f"the request body is nested more than {MAX_DEPTH} levels deep")
    try:
        return json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:  # also NaN, Infinity, and integers too long to convert
        raise BadInput(f"the request body is not valid JSON: {exc}") from None


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _too_deep(text: str) -> bool:
    """Is the JSON in ``text`` nested deeper than ``MAX_DEPTH`` (brackets inside strings aside)?

    Checked before parsing, so that no nesting reaches the parser's recursion limit."""
    depth, in_string, escaped = 0, False, False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def _started(kind: str, project_id, backup_id=None, note="", start=None):
    try:
        job = start() if start else _face().start(kind, project_id, backup_id, note)
    except Busy as exc:
        raise Busy(messages.refused(kind, str(exc))) from None
    response = jsonify({"job": job.to_dict()})
    response.status_code = 202
    response.headers["Location"] = url_for(".job", job_id=job.id)
    return response


def list_backups(project_id):
    face = _face()
    backups = face.list(project_id)
    return {"scope": "site" if project_id is None else "project", "project": project_id, "mode": face.mode,
            "may_change": face.can("backup", project_id), "backups": backups}


def create_backup(project_id):
    _face().authorize("backup", project_id)  # before the body is read
    return _started("backup", project_id, note=_body({"note": str}).get("note", ""))


def show_backup(project_id, backup_id):
    return {"backup": _face().show(project_id, backup_id)}


def restore_backup(project_id, backup_id):
    _face().authorize("restore", project_id)  # before the body is read
    if not _body({"confirm": bool}).get("confirm", False):
        return {"preview": _face().preview(project_id, backup_id)}
    return _started("restore", project_id, backup_id)


def restore_part(project_id, backup_id):
    """``{"paths": [...]}``: the preview of restoring only those files or folders; with
    ``"confirm": true``, the restore (a job)."""
    face = _face()
    face.authorize("restore", project_id)  # before the body is read
    body = _body({"paths": list, "confirm": bool})
    paths = body.get("paths")
    if not paths or len(paths) > MAX_PARTS or not all(type(path) is str for path in paths):
        raise BadInput(f'"paths" must be a list of 1 to {MAX_PARTS} paths (text), relative to the scope\'s folder')
    if not body.get("confirm", False):
        return {"preview": face.preview_parts(project_id, backup_id, paths)}
    return _started("restore", project_id, backup_id, start=lambda: face.start_parts(project_id, backup_id, paths))


def delete_backup(project_id, backup_id):
    return _started("delete", project_id, backup_id)


def browse_backup(project_id, backup_id):
    return {"listing": _face().browse(project_id, backup_id, downloads.query_arg("path"))}


def download_file(project_id, backup_id):
    return downloads.send_file(_face(), project_id, backup_id)


def download_archive(project_id, backup_id):
    return downloads.send_folder(_face(), project_id, backup_id)


def diff_backup(project_id, backup_id):
    return {"diff": _face().diff(project_id, backup_id, request.args.get("against"))}


def check_backup(project_id, backup_id):
    _face().authorize("view", project_id)  # before the body is read
    _body({})
    return _started("check", project_id, backup_id)


def job(job_id):
    return {"job": _face().job(job_id).to_dict()}


def session_info():
    face = _face()
    user = face.user()
    shown = None if user is None else {"name": user.name, "role": user.role, "organises": sorted(user.organises)}
    return {"user": shown, "mode": face.mode, "csrf_token": csrf.token()}


def openapi():
    """The document, its server being where the API is served (under a mount's prefix too)."""
    document = load_openapi()
    document["servers"] = [{**document["servers"][0], "url": url_for(".openapi").rsplit("/", 1)[0]}]
    return jsonify(document)


def load_openapi() -> dict:
    return json.loads(resources.files(__package__).joinpath("openapi.json").read_text("utf-8"))
