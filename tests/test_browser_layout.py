"""The panel fits the screen: at 1280 px each backup is one line (no "pre-/restore", no
"UTC" alone, Delete beside Restore); at 420 px nothing overflows and every row's actions
are on the screen; 20 backups a page, and pre-restore backups can be hidden. Measured
from the bounding boxes in a real headless Chromium; the screenshots go to docs/ when
``STRONGROOM_UPDATE_SCREENSHOTS`` is set or they are missing."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from strongroom.config import Config
from strongroom.db.engines import open_database
from strongroom.service import Strongroom

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
DOCS = Path(__file__).resolve().parent.parent / "docs"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")


@pytest.fixture(scope="module")
def busy_site(tmp_path_factory):
    """A demo site whose first project has 25 backups, 5 of them pre-restore, with notes."""
    data_dir = tmp_path_factory.mktemp("layout") / "data"
    cli = [sys.executable, "-m", "strongroom.cli", "--data-dir", str(data_dir)]
    made = subprocess.run([*cli, "demo", "init"], capture_output=True, text=True, check=True)
    project = re.findall(r"project ([0-9a-f]{24})", made.stdout)[0]
    config = Config(data_dir=data_dir)
    service = Strongroom(config, database=open_database(config))
    for n in range(25):
        reason = "pre-restore" if n % 5 == 4 else "manual"
        note = f"before restoring 2026-11-26T04-27-{n:02d}" if reason == "pre-restore" else f"nightly check {n}"
        service.make_backup(project, note=note, reason=reason, by="org1")
    process = subprocess.Popen([*cli, "serve", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, stdin=subprocess.DEVNULL)
    try:
        url = re.search(r"(http://127\.0\.0\.1:\d+/)", process.stdout.readline()).group(1)
        yield url, project
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def signed_in_page(browser, base: str, width: int):
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(base + "signin")
    page.click("button[data-user=org1]")
    sync_api.expect(page.locator("#signed-in")).to_contain_text("Signed in as org1")
    return page


def lines_of(page, selector: str) -> list[int]:
    """How many lines the text of each element matching ``selector`` takes."""
    return page.eval_on_selector_all(selector, """els => els.map(el => {
        const range = document.createRange(); range.selectNodeContents(el);
        return new Set(Array.from(range.getClientRects()).map(r => Math.round(r.top))).size; })""")


def overflow(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def save(page, locator, name: str, tmp_path) -> None:
    shot = tmp_path / name
    (locator or page).screenshot(path=str(shot))
    if not (DOCS / name).exists() or os.environ.get("STRONGROOM_UPDATE_SCREENSHOTS"):
        shutil.copyfile(shot, DOCS / name)


def test_at_1280_px_each_backup_is_one_line_with_its_actions_side_by_side(browser, busy_site, tmp_path):
    base, project = busy_site
    page = signed_in_page(browser, base, 1280)
    page.goto(base + f"projects/{project}")
    rows = page.locator("#sr-backups tbody tr")
    assert rows.count() == 20  # a page
    shown = page.locator("#sr-panel .sr-table-box").first.bounding_box()  # what is not scrolled out of sight
    assert overflow(page) <= 0
    assert set(lines_of(page, "#sr-backups td.sr-reason")) == {1}  # "pre-restore" whole
    assert set(lines_of(page, "#sr-backups td.sr-when time")) == {1}  # "UTC" with its time
    assert set(lines_of(page, "#sr-backups td.sr-by")) == {1}  # a user name whole
    for n in range(rows.count()):
        boxes = [rows.nth(n).locator(f"td.sr-actions a{kind}").bounding_box()
                 for kind in (":text('Details')", ".sr-restore", ".sr-delete")]
        assert len({round(box["y"]) for box in boxes}) == 1, boxes  # Delete on the same line
        assert all(box["x"] + box["width"] <= min(1280, shown["x"] + shown["width"]) for box in boxes), (boxes, shown)
    save(page, page.locator("#sr-panel"), "screenshot-list-1280.png", tmp_path)


def test_at_420_px_nothing_overflows_and_every_action_is_on_the_screen(browser, busy_site, tmp_path):
    base, project = busy_site
    page = signed_in_page(browser, base, 420)
    page.goto(base + f"projects/{project}")
    assert overflow(page) <= 0
    panel = page.locator("#sr-panel").bounding_box()
    assert panel["x"] >= 0 and panel["x"] + panel["width"] <= 420
    rows = page.locator("#sr-backups tbody tr")
    for n in range(rows.count()):
        for kind in (".sr-restore", ".sr-delete"):
            link = rows.nth(n).locator(f"td.sr-actions a{kind}")
            box = link.bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= 420, (n, kind, box)
    page.evaluate("document.getElementById('sr-panel').scrollIntoView()")
    save(page, None, "screenshot-list-420.png", tmp_path)  # the screen as a phone shows it
    for path in ("", "admin", "signin"):  # the demo's other pages fit too
        page.goto(base + path)
        assert overflow(page) <= 0, path


def test_the_list_pages_by_20_and_can_hide_the_pre_restore_backups(browser, busy_site):
    base, project = busy_site
    page = signed_in_page(browser, base, 1280)
    page.goto(base + f"projects/{project}")
    sync_api.expect(page.locator("#sr-pages")).to_contain_text("Page 1 of 2")
    first_page = set(page.locator("#sr-backups tbody tr").evaluate_all("rs => rs.map(r => r.dataset.backupId)"))
    page.click("#sr-older")
    sync_api.expect(page.locator("#sr-pages")).to_contain_text("Page 2 of 2")
    second_page = set(page.locator("#sr-backups tbody tr").evaluate_all("rs => rs.map(r => r.dataset.backupId)"))
    assert len(second_page) == 5 and not first_page & second_page
    page.check("#sr-hide-pre-restore")
    page.click("#sr-filter button")
    sync_api.expect(page.locator("#sr-filter")).to_contain_text("20 backups (5 pre-restore hidden)")
    assert "pre-restore" not in " ".join(page.locator("#sr-backups td.sr-reason").all_inner_texts())
    assert page.locator("#sr-backups tbody tr").count() == 20 and page.locator("#sr-pages").count() == 0
