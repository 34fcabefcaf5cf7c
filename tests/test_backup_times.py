"""A backup's id and its times agree (issue 11, item 3).

The id is the time the backup started; ``started_at`` says the same, ``created_at`` when
it was finished, and every place that shows a backup shows its id as text.
"""

import re
from datetime import UTC, datetime, timedelta

from strongroom import humanize
from strongroom.ids import backup_id_time
from strongroom.scopes import Scope, scope_dir
from strongroom.service import Strongroom
from strongroom.web import create_app
from test_web_security import signed_in
from web_support import prepared, web_data  # noqa: F401


def _slow_clock(start: datetime, step: timedelta):
    """A clock that moves ``step`` on at every reading: a backup that takes time."""
    moments = iter(start + n * step for n in range(1000))
    return lambda: next(moments)


def test_started_at_is_the_ids_time_and_created_at_the_end(config, database):
    (scope_dir(config, Scope.site())).mkdir(parents=True)
    (scope_dir(config, Scope.site()) / "a.txt").write_text("a")
    start = datetime(2026, 11, 26, 11, 12, 51, tzinfo=UTC)
    service = Strongroom(config, database=database, clock=_slow_clock(start, timedelta(seconds=5)))
    made = service.make_backup()
    assert made["id"] == "2026-11-26T11-12-51"
    assert made["started_at"] == "2026-11-26T11:12:51+00:00"
    assert made["created_at"] > made["started_at"]
    listed = service.list_backups()[0]
    assert (listed["started_at"], listed["created_at"]) == (made["started_at"], made["created_at"])
    assert humanize.took(made["started_at"], made["created_at"]) == "took 5 s"


def test_show_names_the_start_and_the_end(config, database, cli):
    (scope_dir(config, Scope.site())).mkdir(parents=True)
    (scope_dir(config, Scope.site()) / "a.txt").write_text("a")
    backup_id = cli("backup").output.strip()
    shown = cli("show", backup_id).output
    assert f"started {backup_id_time(backup_id).isoformat()}" in shown, shown
    assert "finished " in shown


def test_the_panel_row_shows_the_id_and_its_start_time_as_text(web_data):
    app = create_app(web_data.config("pilot"), secret_key="test")
    client = app.test_client()
    signed_in(client, "admin")
    page = client.get("/admin").get_data(as_text=True)
    backup_id = web_data.backups["pilot"]["site"]
    row = re.search(rf'<tr data-backup-id="{re.escape(backup_id)}">(.*?)</tr>', page, re.DOTALL).group(1)
    assert f">{backup_id}<" in row  # not only in a tooltip
    assert humanize.when(backup_id_time(backup_id)) in row
    details = client.get(f"/backups/site/{backup_id}/details").get_data(as_text=True)
    assert f">{backup_id}<" in details and "started " in details and "finished " in details
