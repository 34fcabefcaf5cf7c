"""Every page of the panel at 420 and 1280 px in a real headless Chromium (issue 21).

The demo app is served from this process (a thread), with its jobs in threads, so that a
restore can be held "running" at a chosen point by ``web_support.paused_job`` (a fault
hook, never a sleep). Each page is shot at both widths into the test's folder and must:

- be no wider than its viewport (``scrollWidth <= innerWidth``),
- keep every table's labels: a header row that shows, or (card mode) a ``data-label`` on
  every cell, naming its column, shown before the cell,
- stand numbers and their headers on the same side (right-aligned numeric columns),
- at 1280 px, show every column whole (no table scrolled or clipped in its box).
"""

from __future__ import annotations

import os
import re
import threading

import pytest
from werkzeug.serving import make_server

from conftest import wait_until
from strongroom.config import Config
from strongroom.db.engines import open_database
from strongroom.demo import create_demo_site
from strongroom.humanize import MAX_NOTE
from strongroom.scopes import Scope, scope_dir
from strongroom.service import Strongroom
from strongroom.web import create_app
from strongroom.web.jobs import ENV_JOBS
from test_browser import ARGS, CHROMIUM, sync_api
from web_support import paused_job

pytestmark = [pytest.mark.browser]
WIDTHS = (420, 1280)
# The longest note every face takes (``humanize.validate_note``): markup, right-to-left
# words (their order beside the numbers is the bdi's to keep).
NOTE = ("before the move <b>bold</b> & \u05e9\u05dc\u05d5\u05dd 12" + " long" * 100)[:MAX_NOTE]
# A note stored before that rule, or by another program (the library's inner call, as
# such a backup was made): bidi override, a terminal escape and invisible characters
# (zero-width space, byte-order mark), shown as escapes.
OLD_NOTE = "stored before the rule \u202eevil\u202c \x1b[31m red \u200b\ufeff" + " long" * 40

# Each table: does its header row show? Its cells' labels, and their column's header text.
TABLES = """() => Array.from(document.querySelectorAll("table")).map(table => {
  const head = table.querySelector("thead");
  const headers = head ? Array.from(head.querySelectorAll("th")).map(th => th.textContent.trim()) : [];
  const headShown = !!head && getComputedStyle(head).display !== "none" && head.getBoundingClientRect().height > 0;
  const cells = [];
  for (const row of table.querySelectorAll("tbody tr")) {
    let column = 0;
    for (const td of row.children) {
      const before = getComputedStyle(td, "::before").content;
      cells.push({label: td.dataset.label || null, header: headers[column] || null, text: td.textContent.trim(),
                  actions: td.classList.contains("sr-actions"), shown: td.getBoundingClientRect().height > 0,
                  before: before, align: getComputedStyle(td).textAlign, num: td.classList.contains("sr-num")});
      column += td.colSpan || 1;
    }
  }
  const heads = head ? Array.from(head.querySelectorAll("th")).map(th => ({
      text: th.textContent.trim(), align: getComputedStyle(th).textAlign})) : [];
  const box = table.parentElement;
  return {id: table.id || table.className, headShown, cells, heads,
          clipped: box.scrollWidth - box.clientWidth, right: table.getBoundingClientRect().right};
})"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The demo site served from a thread: project A with a few backups (the longest note
    taken, with markup and right-to-left words; one stored before the rule, with controls
    and a bidi override), a site backup; jobs run in threads of this process."""
    data_dir = tmp_path_factory.mktemp("pages") / "data"
    config = Config(data_dir=data_dir)
    database = open_database(config)
    made = create_demo_site(config, database, projects=40, editions=5, seed=1)  # the large site's shape
    project = made.project_ids[0]
    service = Strongroom(config, database=database)
    first = service.make_backup(project, note=NOTE, by="org1")["id"]
    before_rule = service._make_backup(Scope.project(project), "manual", OLD_NOTE, "org1")["id"]
    scene = min(scope_dir(config, Scope.project(project)).rglob("scene.json"))
    scene.write_text('{"changed": true}')
    (scene.parent / "extra.bin").write_bytes(os.urandom(50_000))
    service.make_backup(project, note="after the new scene", by="org1")
    site_backup = service.make_backup(note="the whole site", by="admin")["id"]
    scene.write_text('{"changed": "again"}')
    old = os.environ.get(ENV_JOBS)
    os.environ[ENV_JOBS] = "thread"
    try:
        app = create_app(config, database, secret_key="pages")
    finally:
        os.environ.pop(ENV_JOBS) if old is None else os.environ.__setitem__(ENV_JOBS, old)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="pages-server")
    thread.start()
    try:
        yield {"base": f"http://127.0.0.1:{server.server_port}/", "project": project, "first": first, "before_rule": before_rule,
               "site_backup": site_backup, "app": app, "service": service, "config": config}
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def signed_in(browser, base: str, user: str):
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(base + "signin")
    page.click(f"button[data-user={user}]")
    sync_api.expect(page.locator("#signed-in")).to_contain_text(f"Signed in as {user}")
    return page


def problems_of(page, width: int) -> list[str]:
    """What is wrong with the page as shown at ``width``: empty when it reads well."""
    found = []
    wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    if wide > 0:
        found.append(f"{wide} px wider than the viewport")
    for table in page.evaluate(TABLES):
        name = table["id"]
        for cell in table["cells"]:
            if cell["actions"] or not cell["shown"]:
                continue
            if not table["headShown"] and not (cell["label"] and cell["before"].startswith('"' + cell["label"])):
                found.append(f"{name}: a cell without its label in card mode: {cell['text'][:40]!r}")
            if cell["label"] and cell["header"] and cell["label"] != cell["header"]:
                found.append(f"{name}: cell labelled {cell['label']!r} under {cell['header']!r}")
        if table["headShown"]:
            if table["clipped"] > 0 and width >= 1280:
                found.append(f"{name}: {table['clipped']} px of its columns hidden in its box")
            numeric = {c["header"] for c in table["cells"] if c["num"] and c["shown"] and c["text"]}
            for head in table["heads"]:
                if head["text"] in numeric and head["align"] not in ("right", "end"):
                    found.append(f"{name}: header {head['text']!r} stands {head['align']}, its numbers right")
    return found


def check_page(page, name: str, folder) -> None:
    """Shoot the page at each width and assert it reads well there."""
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        page.screenshot(path=str(folder / f"{name}-{width}.png"), full_page=True)
        assert problems_of(page, width) == [], (name, width)
    page.set_viewport_size({"width": 1280, "height": 900})


def test_every_page_fits_420_and_1280_px_and_every_table_keeps_its_labels(site, browser, tmp_path):
    base, project, first = site["base"], site["project"], site["first"]
    shots = tmp_path / "screenshots"
    shots.mkdir()
    admin = signed_in(browser, base, "admin")
    expect = sync_api.expect

    admin.goto(base + f"projects/{project}")
    expect(admin.locator("#sr-backups")).to_be_visible()
    check_page(admin, "panel", shots)
    admin.goto(base + "admin")
    expect(admin.locator("#sr-status")).to_be_attached()
    check_page(admin, "status", shots)
    admin.goto(base + f"backups/projects/{project}/{first}/details")
    check_page(admin, "details", shots)
    admin.goto(base + f"backups/projects/{project}/{first}/details?path=edition")
    expect(admin.locator("#sr-files tr.sr-folder").first).to_be_visible()
    check_page(admin, "browse", shots)
    admin.goto(base + f"backups/projects/{project}/{first}/preview")
    expect(admin.locator("#sr-preview-files tr.sr-changed")).to_contain_text("scene.json")
    check_page(admin, "preview", shots)
    admin.goto(base + f"backups/projects/{project}/{first}/changes")
    check_page(admin, "changes", shots)
    admin.goto(base + f"backups/projects/{project}/{first}/details")
    admin.fill("#sr-part-path", "edition")
    admin.click("#sr-preview-part")
    expect(admin.locator("#sr-preview-part")).to_be_visible()
    check_page(admin, "restore-part", shots)
    assert len(list(shots.glob("*.png"))) == 2 * 7


def test_during_a_site_restore_pages_know_who_is_signed_in_and_the_job_page_follows_it(site, browser, tmp_path):
    """A site restore held at its first drop (its journal written): another signed-in
    user meets the maintenance page with their name in the header (from the session, not
    the users being reloaded), the job's page shows it running to the one who started it,
    then done; each page shot at both widths and read as above."""
    base, project = site["base"], site["project"]
    shots = tmp_path / "screenshots"
    shots.mkdir()
    expect = sync_api.expect
    admin, other = signed_in(browser, base, "admin"), signed_in(browser, base, "org1")
    admin.goto(base + f"backups/site/{site['site_backup']}/preview")
    database = site["service"].database  # a record changed: records that already are the backup's are not loaded
    database.project.update_one({"_id": database.project.find_one({})["_id"]}, {"$set": {"title": "changed"}})
    with paused_job(lambda kind, detail: kind == "drop") as (reached, release):
        admin.click("#sr-confirm-restore")
        wait_until(reached.is_set, what="the restore's first drop")
        answer = other.goto(base + f"projects/{project}")
        assert answer.status == 503
        expect(other.locator("h2")).to_have_text("Maintenance")
        expect(other.locator("header")).not_to_contain_text("Sign in")
        expect(other.locator("#signed-in")).to_contain_text("Signed in as org1")
        check_page(other, "maintenance", shots)
        admin.reload()  # the job's page, drawn while the site is being replaced
        expect(admin.locator("#sr-job")).to_have_attribute("data-state", "running")
        expect(admin.locator("#signed-in")).to_contain_text("Signed in as admin")
        check_page(admin, "job-running", shots)
        release.set()
    expect(admin.locator("#sr-job")).to_have_attribute("data-state", "done", timeout=60_000)
    check_page(admin, "job-done", shots)
    assert len(list(shots.glob("*.png"))) == 2 * 3


def test_the_panel_and_the_status_page_chart_the_backups_over_time(site, browser):
    base, project = site["base"], site["project"]
    page = signed_in(browser, base, "admin")
    for path, scope in ((f"projects/{project}", project), ("admin", None)):
        page.goto(base + path)
        backups = site["service"].list_backups(scope)
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            days = page.locator("#sr-chart-days")
            sync_api.expect(days).to_be_visible()
            box = days.bounding_box()
            assert box["width"] > 150 and box["height"] > 40 and box["x"] + box["width"] <= width
            bars = page.locator("#sr-chart-added rect")
            assert bars.count() == len(backups)  # one bar per backup, oldest first
            titles = bars.evaluate_all("rs => rs.map(r => r.querySelector('title').textContent)")
            assert titles[-1].startswith(backups[0]["id"] + ":")
            day_count = sum(int(re.search(r": (\d+) backups?", t).group(1)) for t in
                            page.locator("#sr-chart-days rect title").all_text_contents())
            assert day_count == len(backups)
        sizes = page.locator("#sr-backups td.sr-size").evaluate_all("cs => cs.map(c => +c.dataset.bytes)")
        assert sizes == [b["bytes"] for b in backups[:len(sizes)]] and all(sizes)  # the size each one keeps


def test_notes_are_shown_escaped_isolated_and_bounded(site, browser):
    base, project, first = site["base"], site["project"], site["first"]
    page = signed_in(browser, base, "admin")
    old = site["before_rule"]
    for path, words, shown, hidden in (
            (f"projects/{project}", "before the move", ("<b>bold</b> &",), ()),
            (f"backups/projects/{project}/{first}/details", "before the move", ("<b>bold</b> &",), ()),
            (f"projects/{project}", "stored before the rule", ("\\u202e", "\\x1b", "\\u200b\\ufeff"),
             ("\u202e", "\x1b", "\u200b", "\ufeff")),
            (f"backups/projects/{project}/{old}/details", "stored before the rule", ("\\u202e", "\\u200b"),
             ("\u202e", "\u200b"))):
        page.goto(base + path)
        note = page.locator(".sr-user-text", has_text=words).first
        text = note.inner_text()
        assert all(s in text for s in shown) and not any(h in text for h in hidden), (path, text)
        assert note.locator("b").count() == 0  # markup shown as text
        assert note.evaluate("n => getComputedStyle(n).unicodeBidi") == "isolate"
        height = note.bounding_box()["height"]
        line = note.evaluate("n => parseFloat(getComputedStyle(n).lineHeight) || 20")
        assert height <= 5 * line, (path, height, line)


def test_paths_name_the_edition_beside_its_folder(site, browser):
    base, project, first = site["base"], site["project"], site["first"]
    database = site["service"].database
    titles = {str(e["_id"]): e["title"] for e in database["edition"].find({"projectId": {"$exists": True}})}
    page = signed_in(browser, base, "admin")
    page.goto(base + f"backups/projects/{project}/{first}/details?path=edition")
    for row in page.locator("#sr-files tr.sr-folder").all():
        edition = row.get_attribute("data-path").split("/")[1]
        sync_api.expect(row.locator(".sr-folder-title")).to_have_text(f"(“{titles[edition]}”)")
    page.goto(base + f"backups/projects/{project}/{first}/preview")
    changed = page.locator("#sr-preview-files tr.sr-changed")
    edition = re.search(r"edition/([0-9a-f]{24})/", changed.inner_text()).group(1)
    sync_api.expect(changed.locator(".sr-folder-title").first).to_have_text(f"(“{titles[edition]}”)")


def test_a_preview_does_not_open_with_nothing_has_changed(site, browser):
    base, project, first = site["base"], site["project"], site["first"]
    page = signed_in(browser, base, "admin")
    page.goto(base + f"backups/projects/{project}/{first}/preview")
    words = page.locator("#sr-preview-words").inner_text()
    assert "Nothing has changed" not in page.locator("body").inner_text()
    assert "when you confirm" in words
