"""The titles of the folders a page's paths run through, shown beside their hex ids.

A project's files sit in folders named by record ids (the original's
``edition/<edition id>/scene.json``); a page that names the editions above should not
leave the reader to match ``350aa153…`` by eye. A folder ``<collection>/<id>`` is titled
when ``<collection>`` is a collection linked to the project (``DataModel.linked``) and
holds a record with that id; in the site's scope ``project/<id>`` is titled too, and the
folders below it. The titles are read once a request, by id and title only.
"""

from __future__ import annotations

from bson import ObjectId
from bson.errors import InvalidId
from flask import g, request
from markupsafe import Markup, escape

from strongroom import humanize
from strongroom.db.engines import database_exists


def _records(database, collection: str, query: dict, field: str) -> dict[str, str]:
    return {str(r["_id"]): humanize.escape(str(r.get(field) or ""))
            for r in database[collection].find(query, {field: 1}) if r.get(field)}


def folder_titles(service, project_id: str | None) -> dict[str, str]:
    """``{"edition/<id>": "Title", …}`` for a project; for the site, its projects' folders
    (``project/<id>``) and theirs below (``project/<id>/edition/<id>``)."""
    if not database_exists(service.config):
        return {}
    model, database = service.config.model, service.database
    own = [link for link in model.linked if link.via == model.project_collection]
    if project_id is not None:
        projects = [project_id]
        titles = {}
    else:
        titles = {f"{model.project_collection}/{pid}": title for pid, title in
                  _records(database, model.project_collection, {}, model.title_field).items()}
        projects = [key.split("/", 1)[1] for key in titles]
    for pid in projects:
        try:
            query_id = ObjectId(pid)
        except InvalidId:
            continue
        prefix = "" if project_id is not None else f"{model.project_collection}/{pid}/"
        for link in own:
            for rid, title in _records(database, link.collection, {link.field: query_id}, model.title_field).items():
                titles[f"{prefix}{link.collection}/{rid}"] = title
    return titles


def titled(face, path: str, exact: bool = False) -> Markup:
    """`` (“Title”)`` after a path: the title of the deepest titled folder on it (or only
    of the path itself, with ``exact``); nothing when none is."""
    if "strongroom_titles" not in g:
        project_id = (request.view_args or {}).get("project_id")
        g.strongroom_titles = folder_titles(face.service(), project_id)
    titles, parts = g.strongroom_titles, path.split("/")
    candidates = [path] if exact else ["/".join(parts[:n]) for n in range(len(parts), 0, -1)]
    for key in candidates:
        if key in titles:
            return Markup(' <span class="sr-folder-title">(<bdi>{}</bdi>)</span>').format(escape(f"“{titles[key]}”"))
    return Markup("")
