"""The demo app's admin page and sign-in: the user list is for admins and root only, and in
prod a demo user can sign in with the password the server was started with, so the prod
panel can be seen (without that password, nobody can sign in there)."""

import pytest

from strongroom.web import create_app
from web_support import csrf_token, prepared, web_data  # noqa: F401 - fixtures

PASSWORD = "correct horse battery staple"


def sign_in(client, user: str, password: str | None = None):
    form = {"csrf_token": csrf_token(client), "user": user}
    if password is not None:
        form["password"] = password
    return client.post("/signin", data=form)


@pytest.mark.parametrize("user, allowed", [("user1", False), ("org1", False), ("admin", True), ("root", True)])
def test_the_admin_page_and_its_user_list_are_for_admins_and_root_only(web_data, user, allowed):
    client = create_app(web_data.config("pilot"), secret_key="test").test_client()
    assert sign_in(client, user).status_code == 303
    admin = client.get("/admin")
    page = admin.get_data(as_text=True)
    assert admin.status_code == (200 if allowed else 403)
    assert ("<td>user2</td>" in page) is allowed  # another user's name: the list itself
    assert ('id="admin-link"' in client.get("/").get_data(as_text=True)) is allowed


def test_in_prod_with_a_password_a_demo_admin_signs_in_and_sees_the_prod_panel(web_data, monkeypatch):
    monkeypatch.setenv("STRONGROOM_DEMO_PASSWORD", PASSWORD)
    client = create_app(web_data.config("prod"), secret_key="test").test_client()
    form = client.get("/signin").get_data(as_text=True)
    assert 'id="password-sign-in"' in form and 'id="user-picker"' not in form
    assert 'id="sign-in-link"' in client.get("/").get_data(as_text=True)
    assert sign_in(client, "admin", PASSWORD).status_code == 303
    page = client.get("/admin").get_data(as_text=True)
    assert 'id="sr-panel"' in page and web_data.backups["prod"]["site"] in page
    assert "the system makes the backups" in page and "Make backup" not in page


@pytest.mark.parametrize("user, password", [("admin", "wrong"), ("admin", ""), ("nobody", PASSWORD), ("admin", None)])
def test_in_prod_a_wrong_name_or_password_signs_nobody_in(web_data, monkeypatch, user, password):
    monkeypatch.setenv("STRONGROOM_DEMO_PASSWORD", PASSWORD)
    client = create_app(web_data.config("prod"), secret_key="test").test_client()
    assert sign_in(client, user, password).status_code == 403
    assert client.get("/api/v1/session").get_json()["user"] is None
    assert client.get("/admin").status_code == 403


def test_in_prod_without_a_password_nobody_signs_in_and_no_sign_in_link_is_shown(web_data, monkeypatch):
    monkeypatch.delenv("STRONGROOM_DEMO_PASSWORD", raising=False)
    client = create_app(web_data.config("prod"), secret_key="test").test_client()
    assert client.get("/signin").status_code == 404
    assert sign_in(client, "admin", "anything").status_code in (403, 404)
    assert 'id="sign-in-link"' not in client.get("/").get_data(as_text=True)


def test_outside_prod_the_password_is_not_asked_the_picker_is_kept(web_data, monkeypatch):
    monkeypatch.setenv("STRONGROOM_DEMO_PASSWORD", PASSWORD)
    client = create_app(web_data.config("pilot"), secret_key="test").test_client()
    assert 'id="user-picker"' in client.get("/signin").get_data(as_text=True)
    assert sign_in(client, "admin").status_code == 303
