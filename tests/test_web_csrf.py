"""The CSRF token is bound to who is signed in, not only to the session.

``host_app`` says who is there from a header and never starts a new session: the host that
does not rotate its sessions at sign-in (as Pure3D). The same session's token, issued
before sign-in or to another user, must then be refused, by the panel's forms and by the
API alike (``tokens from the pure3d-shaped host``: ``test_web_mount.py``).
"""

import pytest

from web_support import csrf_token, host_app, prepared, state_of, wait_for_jobs, web_data  # noqa: F401


def make_backup(client, face: str, user: str, token: str):
    """Ask for a site backup as ``user`` with ``token``, through the panel's form or the API."""
    if face == "form":
        return client.post("/backups/site/make", data={"csrf_token": token, "note": "csrf"},
                           headers={"X-Test-User": user})
    return client.post("/api/v1/site/backups", json={"note": "csrf"}, headers={"X-Test-User": user, "X-CSRF-Token": token})


ACCEPTED = {"form": 303, "api": 202}


@pytest.fixture
def host(web_data):
    app = host_app(web_data.config("pilot"))
    yield app, app.test_client(), web_data
    wait_for_jobs(app)


def refused_as_csrf(response, face: str) -> bool:
    if face == "api":
        return response.status_code == 403 and response.get_json()["error"]["code"] == "csrf_refused"
    return response.status_code == 403 and "CSRF" in response.get_data(as_text=True)


@pytest.mark.parametrize("face", ["form", "api"])
def test_a_token_issued_before_sign_in_is_refused_once_someone_has_signed_in_on_that_session(host, face):
    _, client, data = host
    before_sign_in = csrf_token(client)
    before = state_of(data.config())
    assert refused_as_csrf(make_backup(client, face, "admin", before_sign_in), face)
    assert state_of(data.config()) == before
    assert make_backup(client, face, "admin", csrf_token(client, "admin")).status_code == ACCEPTED[face]


@pytest.mark.parametrize("face", ["form", "api"])
def test_a_token_issued_to_one_user_is_refused_for_another_on_the_same_session(host, face):
    _, client, data = host
    admins, roots = csrf_token(client, "admin"), csrf_token(client, "root")
    before = state_of(data.config())
    assert refused_as_csrf(make_backup(client, face, "root", admins), face)
    assert refused_as_csrf(make_backup(client, face, "admin", roots), face)
    assert state_of(data.config()) == before
    assert make_backup(client, face, "root", roots).status_code == ACCEPTED[face]


@pytest.mark.parametrize("face", ["form", "api"])
def test_a_token_of_another_session_is_refused_even_for_the_same_user(host, face):
    app, client, _ = host
    other = app.test_client()
    assert refused_as_csrf(make_backup(client, face, "admin", csrf_token(other, "admin")), face)


def test_the_session_endpoint_tells_one_token_per_user_and_the_same_one_each_time(host):
    _, client, _ = host
    tokens = {user: csrf_token(client, user) for user in (None, "admin", "root", "org1")}
    assert len(set(tokens.values())) == len(tokens)
    assert csrf_token(client, "admin") == tokens["admin"] and csrf_token(client) == tokens[None]
    page = client.get("/backups/site", headers={"X-Test-User": "admin"}).get_data(as_text=True)
    assert f'name="csrf_token" value="{tokens["admin"]}"' in page  # the forms carry the user's token


def test_the_session_secret_itself_is_never_a_valid_token(host):
    _, client, _ = host
    csrf_token(client, "admin")
    with client.session_transaction() as session:
        secret = session["strongroom_csrf"]
    assert refused_as_csrf(make_backup(client, "api", "admin", secret), "api")
