"""The permission matrix, through the API and through the pages, cell by cell.

Users: anonymous, a plain user, the organiser of project A, the organiser of project B,
admin, root. Operations: list, show, preview, backup, restore, delete. Scopes: the site
and project A. Modes: pilot and prod. Every allowed cell succeeds (and its job ends
well); every refused one answers 403 and changes nothing. Then the organiser of B tries
A's backup ids through B's URLs: 404, nothing changed.
"""

import pytest

from strongroom.policy import can
from strongroom.scopes import Scope
from web_support import csrf_token, host_app, last_job, prepared, state_of, wait_for_jobs, web_data  # noqa: F401

USERS = {"anonymous": "", "plain user": "user1", "organiser of A": "org1", "organiser of B": "org2",
         "admin": "admin", "root": "root"}
ACTION = {"list": "view", "show": "view", "preview": "restore", "backup": "backup", "restore": "restore",
          "delete": "delete"}
CHANGES = ("backup", "restore", "delete")


def api_request(client, op: str, scope_path: str, backup_id: str, token: str, user: str):
    base = f"/api/v1/{scope_path}/backups"
    headers = {"X-Test-User": user, "X-CSRF-Token": token}
    call = {
        "list": lambda: client.get(base, headers=headers),
        "show": lambda: client.get(f"{base}/{backup_id}", headers=headers),
        "preview": lambda: client.post(f"{base}/{backup_id}/restore", json={}, headers=headers),
        "backup": lambda: client.post(base, json={"note": "matrix"}, headers=headers),
        "restore": lambda: client.post(f"{base}/{backup_id}/restore", json={"confirm": True}, headers=headers),
        "delete": lambda: client.delete(f"{base}/{backup_id}", headers=headers),
    }
    return call[op]()


def page_request(client, op: str, scope_path: str, backup_id: str, token: str, user: str):
    base = f"/backups/{scope_path}"
    headers = {"X-Test-User": user}
    form = {"csrf_token": token}
    call = {
        "list": lambda: client.get(base, headers=headers),
        "show": lambda: client.get(f"{base}/{backup_id}/details", headers=headers),
        "preview": lambda: client.get(f"{base}/{backup_id}/preview", headers=headers),
        "backup": lambda: client.post(f"{base}/make", data={**form, "note": "matrix"}, headers=headers),
        "restore": lambda: client.post(f"{base}/{backup_id}/restore", data=form, headers=headers),
        "delete": lambda: client.post(f"{base}/{backup_id}/delete", data=form, headers=headers),
    }
    return call[op]()


FACES = {"api": api_request, "pages": page_request}


def scope_path(web_data, scope: str) -> str:
    return "site" if scope == "site" else f"projects/{web_data.project_a if scope == 'A' else web_data.project_b}"


@pytest.mark.parametrize("face", list(FACES))
@pytest.mark.parametrize("mode", ["pilot", "prod"])
@pytest.mark.parametrize("scope", ["site", "A"])
@pytest.mark.parametrize("op", list(ACTION))
@pytest.mark.parametrize("user", list(USERS))
def test_permission_matrix_cell(web_data, user, op, scope, mode, face):
    config = web_data.config(mode)
    app = host_app(config)
    client = app.test_client()
    users = {"": None, **{u.name: u for u in _users(app)}}
    project_id = None if scope == "site" else web_data.project_a
    allowed = can(users[USERS[user]], ACTION[op], Scope.of(project_id), mode)
    before = state_of(config)

    response = FACES[face](client, op, scope_path(web_data, scope), web_data.backups[mode][scope],
                           csrf_token(client, USERS[user]), USERS[user])

    if not allowed:
        assert response.status_code == 403, response.get_data(as_text=True)[:300]
        assert state_of(config) == before
        return
    if op in CHANGES:
        assert response.status_code == (202 if face == "api" else 303)
        wait_for_jobs(app)
        job = last_job(app)
        assert job.state == "done", job.error
        assert state_of(config) != before
    else:
        assert response.status_code == 200
        assert state_of(config) == before


@pytest.mark.parametrize("face", list(FACES))
@pytest.mark.parametrize("op", ["show", "preview", "restore", "delete"])
def test_organiser_of_b_cannot_reach_a_backup_of_a_through_b_urls(web_data, op, face):
    config = web_data.config("pilot")
    app = host_app(config)
    client = app.test_client()
    before = state_of(config)
    a_backup = web_data.backups["pilot"]["A"]
    assert a_backup not in {b["id"] for b in app.config["factory"]().list_backups(web_data.project_b)}

    response = FACES[face](client, op, scope_path(web_data, "B"), a_backup, csrf_token(client, "org2"), "org2")

    assert response.status_code == 404
    wait_for_jobs(app)
    assert state_of(config) == before


def _users(app):
    from web_support import users_of

    return users_of(app.config["factory"]().database).values()
