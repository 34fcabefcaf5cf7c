"""Restoring one file or folder from the web: the details page's form, its preview, the
job, and the API's ``…/restore-part`` against its OpenAPI document."""

import re

from strongroom.scopes import Scope, scope_dir
from test_web import demo, text  # noqa: F401 - the demo app fixture and its page text
from test_web_api import api, conforms, follow  # noqa: F401 - the fixture
from test_web_security import signed_in
from web_support import (  # noqa: F401 - fixtures
    csrf_token,
    engine_prepared,
    engine_web_data,
    host_app,
    prepared,
    wait_for_jobs,
    web_data,
)


def test_the_details_page_offers_restore_this_only_to_those_who_may_restore(demo):
    _app, client, data = demo
    backup = data.backups["pilot"]["A"]
    signed_in(client, "org1")
    assert 'id="sr-restore-part"' in text(client.get(f"/backups/projects/{data.project_a}/{backup}/details"))
    prod = host_app(data.config("prod")).test_client()
    page = text(prod.get(f"/backups/projects/{data.project_a}/{data.backups['prod']['A']}/details",
                         headers={"X-Test-User": "org1"}))
    assert "files in" in page and 'id="sr-restore-part"' not in page  # prod: nobody restores by hand


def test_restore_this_previews_the_part_then_puts_back_only_it(demo):
    app, client, data = demo
    token = signed_in(client, "org1")
    backup = data.backups["pilot"]["A"]
    live = scope_dir(data.config(), Scope.project(data.project_a))
    scene, about = next(live.rglob("scene.json")), live / "about.md"
    original = scene.read_bytes()
    scene.write_text("changed")
    about.write_text("changed outside the part")
    part = scene.relative_to(live).as_posix()

    preview = text(client.post(f"/backups/projects/{data.project_a}/{backup}/preview-part",
                               data={"csrf_token": token, "path": part}))

    assert scene.read_text() == "changed"  # the preview changed nothing
    changed_row = re.search(r'<tr class="sr-changed"><td data-label="Change">changed</td><td class="sr-num" data-label="Files">(\d+)</td>', preview)
    assert changed_row and changed_row.group(1) == "1" and "about.md" not in preview
    assert "records stay as they are" in preview
    response = client.post(f"/backups/projects/{data.project_a}/{backup}/restore-part",
                           data={"csrf_token": token, "path": part})
    wait_for_jobs(app)
    page = text(client.get(response.location))
    assert f"Restored {part} from backup {backup}" in page and "records were not restored" in page
    assert scene.read_bytes() == original
    assert about.read_text() == "changed outside the part"


def test_restore_this_names_a_path_the_backup_lacks_and_refuses_a_get(demo):
    _app, client, data = demo
    token = signed_in(client, "org1")
    backup = data.backups["pilot"]["A"]
    url = f"/backups/projects/{data.project_a}/{backup}"
    missing = client.post(f"{url}/preview-part", data={"csrf_token": token, "path": "no-such-file"})
    assert missing.status_code == 404 and "no-such-file" in text(missing)
    assert client.post(f"{url}/preview-part", data={"csrf_token": token, "path": "../up"}).status_code == 400
    assert client.get(f"{url}/restore-part").status_code == 405
    assert client.post(f"{url}/restore-part", data={"path": "about.md"}).status_code in (400, 403)  # no CSRF token


def test_the_api_previews_and_restores_parts_as_its_document_says(api):
    _app, call, data = api
    backup = data.backups["pilot"]["A"]
    url, path = f"/projects/{data.project_a}/backups/{backup}/restore-part", \
        "/projects/{project_id}/backups/{backup_id}/restore-part"
    live = scope_dir(data.config(), Scope.project(data.project_a))
    original = (live / "about.md").read_bytes()
    (live / "about.md").write_text("changed")
    (live / "icon.png").write_bytes(b"changed outside")

    preview = conforms(call("POST", url, json={"paths": ["about.md"]}), path, "post")["preview"]
    started = conforms(call("POST", url, json={"paths": ["about.md"], "confirm": True}), path, "post")["job"]
    job = follow(call, started["id"])

    assert preview["parts"] == ["about.md"] and preview["files"]["changed"]["paths"] == ["about.md"]
    assert job["state"] == "done" and job["result"]["records_restored"] is False
    assert (live / "about.md").read_bytes() == original
    assert (live / "icon.png").read_bytes() == b"changed outside"
    for body, status in (({"paths": ["missing.txt"]}, 404), ({"paths": []}, 400), ({"paths": "about.md"}, 400),
                         ({"paths": [1]}, 400), ({}, 400), ({"paths": ["../x"]}, 400)):
        response = call("POST", url, json=body)
        assert response.status_code == status, (body, response.get_json())
        conforms(response, path, "post")
    assert call("POST", url, user="org2", json={"paths": ["about.md"]}).status_code == 403
