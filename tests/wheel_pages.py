"""Every page of the demo app and of the panel, rendered by an installed Strongroom.

``test_wheel.py`` runs this file with the python of a fresh venv that has Strongroom from
the wheel and no source tree on its path (``python -I wheel_pages.py DATA_DIR``). It makes
the small demo site on the embedded engine in DATA_DIR, signs in, asks for each page with
Flask's test client and prints one JSON object: where ``strongroom`` was imported from,
and per page the status it answered and whether its known text was in it. It imports
nothing from the tests (they are not on the venv's path).
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from pathlib import Path

from werkzeug.test import Client
from werkzeug.wrappers import Response

import strongroom
from strongroom.config import Config
from strongroom.db.engines import open_database
from strongroom.demo import create_demo_site
from strongroom.fs import mutations
from strongroom.policy import User
from strongroom.service import Strongroom
from strongroom.web import create_app, mount, service_factory_for

WAIT = 60  # seconds, for a job to end


class Pages:
    """Asks for pages and records what each answered."""

    def __init__(self, client):
        self.client = client
        self.found: dict[str, dict] = {}

    def ask(self, name: str, path: str, text: str, status: int = 200, method: str = "GET", **kwargs):
        response = self.client.open(path, method=method, **kwargs)
        body = response.get_data(as_text=True)
        self.found[name] = {"path": path, "status": response.status_code, "expected": status, "text": text,
                            "has_text": text in body}
        return response


def wait_for_job(client, job_id: str) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        answer = client.get(f"/api/v1/jobs/{job_id}")  # 503 while a site restore runs
        if answer.status_code == 200 and answer.get_json()["job"]["state"] != "running":
            return
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not end in {WAIT} s")


def demo_pages(data_dir: Path) -> dict:
    config = Config(data_dir=data_dir, mode="pilot")
    database = open_database(config)
    project = create_demo_site(config, database, projects=2, editions=1, seed=1).project_ids[0]
    backup = Strongroom(config, database=database).make_backup(note="site", by="admin")["id"]
    site = f"/backups/site/{backup}"
    client = create_app(config, database=database, secret_key="wheel").test_client()
    pages = Pages(client)
    pages.ask("home", "/", "<h1>Projects</h1>")
    signin = pages.ask("sign-in", "/signin", 'name="user"')
    token = re.search(r'name="csrf_token" value="([^"]+)"', signin.get_data(as_text=True)).group(1)
    pages.ask("signing in", "/signin", "", 303, "POST", data={"csrf_token": token, "user": "admin"})
    token = client.get("/api/v1/session").get_json()["csrf_token"]
    pages.ask("admin", "/admin", 'id="sr-panel"')
    pages.ask("project", f"/projects/{project}", 'id="project-title"')
    pages.ask("site panel", "/backups/site", 'id="sr-panel"')
    pages.ask("project panel", f"/backups/projects/{project}", 'id="sr-panel"')
    pages.ask("details", f"{site}/details", 'id="sr-browse"')
    pages.ask("browse", f"{site}/details?path=project", "<strong>project</strong>")
    pages.ask("preview", f"{site}/preview", 'id="sr-preview"')
    pages.ask("preview of a part", f"{site}/preview-part", 'id="sr-preview-part"', method="POST",
              data={"csrf_token": token, "path": "project"})
    pages.ask("changes", f"{site}/changes", 'id="sr-changes"')
    pages.ask("confirm delete", f"{site}/confirm-delete", "Delete backup")
    pages.ask("download", f"{site}/download?path=project/{project}/about.md", "")
    pages.ask("missing page", f"{site}/no-such-page", 'class="sr-error"', 404)
    pages.ask("stylesheet", "/backups/static/strongroom.css", ".sr-panel")
    pages.ask("script", "/backups/static/strongroom.js", "function")
    pages.ask("openapi", "/api/v1/openapi.json", '"openapi"')
    pages.ask("session", "/api/v1/session", '"csrf_token"')
    checking = client.post(f"{site}/check", data={"csrf_token": token})
    job_id = checking.headers["Location"].rsplit("/", 1)[-1]
    wait_for_job(client, job_id)
    pages.ask("job page", f"/backups/jobs/{job_id}", "sr-job-page")
    pages.ask("job status", f"/api/v1/jobs/{job_id}", "\"done\"")
    with HeldRestore(client, site, token, config.data_dir / "working" / "pilot", database):
        pages.ask("maintenance", "/", "Maintenance: a restore of the whole site", 503)
    return pages.found | mounted_pages(config, database, backup)


def mounted_pages(config: Config, database, backup: str) -> dict:
    """The panel mounted in front of a plain WSGI app (``mount``), in its own layout."""
    host = Response("host page")
    admin = User("admin", "admin", frozenset())
    mounted = mount(host, "/backups", service_factory_for(config, database), lambda request: admin,
                    secret_key="wheel")
    pages = Pages(Client(mounted))
    pages.ask("mounted panel", "/backups/site", 'id="sr-panel"')
    pages.ask("mounted details", f"/backups/site/{backup}/details", 'id="sr-browse"')
    pages.ask("mounted stylesheet", "/backups/static/strongroom.css", ".sr-panel")
    pages.ask("mounted host", "/elsewhere", "host page")
    return pages.found


class HeldRestore:
    """A site restore started from the panel and held at its first drop of a collection."""

    def __init__(self, client, site: str, token: str, working: Path, database):
        self.client, self.site, self.token, self.working, self.database = client, site, token, working, database
        self.reached, self.release = threading.Event(), threading.Event()

    def __enter__(self):
        def hook(kind, detail):
            if threading.current_thread().name.startswith("strongroom-") and kind == "drop" \
                    and not self.release.is_set():
                self.reached.set()
                self.release.wait(WAIT)

        self.previous = mutations.set_hook(hook)
        changed = min(p for p in self.working.rglob("*") if p.is_file())
        changed.write_bytes(changed.read_bytes() + b" changed")  # so that the restore has work to do
        project = self.database.project  # and a collection to load: records already the backup's are not
        project.update_one({"_id": project.find_one({})["_id"]}, {"$set": {"title": "changed"}})
        started = self.client.post(f"{self.site}/restore", data={"csrf_token": self.token})
        self.job = started.headers["Location"].rsplit("/", 1)[-1]
        if not self.reached.wait(WAIT):
            raise AssertionError("the restore did not reach its first drop")
        return self

    def __exit__(self, *exc):
        self.release.set()
        mutations.set_hook(self.previous)
        wait_for_job(self.client, self.job)


def main(data_dir: str) -> None:
    found = demo_pages(Path(data_dir) / "demo")
    print(json.dumps({"strongroom": strongroom.__file__, "pages": found}))


if __name__ == "__main__":
    main(sys.argv[1])
