"""The job page says what became of a restore that failed (issue 11, item 1): never a
blue "100% failed", but the phase it stopped in, where the bar got to, and "failed and
rolled back", marked for the red-amber colour."""

import re

from strongroom.db import dbrestore
from strongroom.scopes import Scope, scope_dir
from strongroom.web import create_app
from test_web_security import signed_in
from web_support import prepared, wait_for_jobs, web_data  # noqa: F401


def test_a_failed_restore_shows_failed_and_rolled_back_where_it_stopped(web_data, monkeypatch):
    app = create_app(web_data.config("pilot"), secret_key="test")
    client = app.test_client()
    token = signed_in(client, "org1")
    backup = web_data.backups["pilot"]["A"]
    scene = next(scope_dir(web_data.config(), Scope.project(web_data.project_a)).rglob("scene.json"))
    scene.write_text("changed")
    real, calls = dbrestore.restore_collections, []

    def broken_once(*args, **kwargs):  # the restore's load fails; the rollback's works
        calls.append(args)
        if len(calls) == 1:
            raise OSError("the database went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(dbrestore, "restore_collections", broken_once)
    response = client.post(f"/backups/projects/{web_data.project_a}/{backup}/restore", data={"csrf_token": token})
    wait_for_jobs(app)
    page = client.get(response.location).get_data(as_text=True)

    assert 'data-outcome="rolled back"' in page
    assert re.search(r'id="sr-state" class="sr-outcome">failed and rolled back<', page)
    assert re.search(r'id="sr-step">Loading records<', page)
    percent = int(re.search(r'<progress id="sr-progress" max="100" value="(\d+)"', page).group(1))
    assert percent < 100
    assert "Restore failed: " in page and scene.read_text() == "changed"  # put back as it was
