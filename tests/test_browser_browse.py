"""Browse, download, compare and check in a real headless Chromium against ``strongroom serve``.

An organiser makes a project backup, changes a file, opens the backup's details, walks
into a folder, downloads one file (the backed-up content, not the changed one) and the
folder as a tar.gz, sees the change on "what changed", and checks the backup: the list
then says when it was checked and that it was whole. Screenshots of the browse view, the
changes view and the checked list at 1280 and 420 px go to the test's output folder, and
to ``docs/`` when they are missing there or ``STRONGROOM_UPDATE_SCREENSHOTS`` is set.
"""

import os
import re
import shutil
import tarfile
from pathlib import Path

import pytest

from strongroom.scopes import Scope, scope_dir
from test_browser import CHROMIUM, server, sign_in  # noqa: F401 - the fixture and helpers are shared

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
DOCS = Path(__file__).resolve().parent.parent / "docs"
WIDTHS = (1280, 420)


@pytest.fixture
def browser():
    from test_browser import ARGS

    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


def shoot(page, shots: Path, name: str, width: int, fits: str | None = None) -> None:
    """A full-page screenshot at ``width``; into docs/ too when missing or asked for. The
    element ``fits`` must not stick out sideways: it fits the screen at any width."""
    page.set_viewport_size({"width": width, "height": 900})
    target = shots / f"screenshot-{name}-{width}.png"
    page.screenshot(path=str(target), full_page=True)
    docs = DOCS / target.name
    if not docs.exists() or os.environ.get("STRONGROOM_UPDATE_SCREENSHOTS"):
        shutil.copyfile(target, docs)
    if fits:
        overflow = page.evaluate(f"document.querySelector('{fits}').getBoundingClientRect().right - window.innerWidth")
        assert overflow <= 0, f"{fits} at {width} px is {overflow} px too wide"


def backed_up_then_changed(page, base, config, project_a):
    """As org1, make a backup of the project from its panel, then change about.md in the
    live folder: (backup id, live folder, about.md's content in the backup)."""
    sign_in(page, base, "org1")
    page.goto(base + f"projects/{project_a}")
    page.click("#sr-make-backup")
    sync_api.expect(page.locator(".sr-flash")).to_contain_text(" made (", timeout=30_000)
    backup_id = re.search(r"Backup (\S+) of .* made", page.locator(".sr-flash").inner_text()).group(1)
    live = scope_dir(config, Scope.project(project_a))
    original = (live / "about.md").read_bytes()
    (live / "about.md").write_text("changed after the backup")
    return backup_id, live, original


def test_an_organiser_browses_downloads_compares_and_checks_a_backup(server, browser, tmp_path):
    base, config, project_a = server
    shots = tmp_path / "screenshots"
    shots.mkdir()
    expect = sync_api.expect
    page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)

    backup_id, _live, original = backed_up_then_changed(page, base, config, project_a)

    page.goto(base + f"projects/{project_a}")
    page.locator(f"#sr-panel tr[data-backup-id='{backup_id}'] a", has_text="Details").click()
    expect(page.locator("#sr-files tr[data-path='about.md']")).to_be_visible()
    for width in WIDTHS:
        shoot(page, shots, "browse", width, fits="#sr-files")
    page.set_viewport_size({"width": 1280, "height": 900})

    with page.expect_download() as download:
        page.locator("#sr-files tr[data-path='about.md'] a", has_text="Download").click()
    assert Path(download.value.path()).read_bytes() == original

    page.locator("#sr-files tr.sr-folder a").first.click()
    expect(page.locator(".sr-crumbs strong")).to_be_visible()
    folder = page.locator(".sr-crumbs strong").inner_text()
    with page.expect_download() as download:
        page.click("#sr-download-folder")
    with tarfile.open(download.value.path()) as archive:
        names = archive.getnames()
    assert names[0] == folder and len(names) > 1

    page.goto(base + f"projects/{project_a}")
    page.locator(f"#sr-panel tr[data-backup-id='{backup_id}'] a.sr-changes-link").click()
    expect(page.locator("#sr-diff-files tr[data-kind='changed']")).to_contain_text("about.md")
    for width in WIDTHS:
        shoot(page, shots, "changes", width, fits="#sr-diff-records")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.goto(base + f"projects/{project_a}")
    row = page.locator(f"#sr-panel tr[data-backup-id='{backup_id}']")
    expect(row.locator(".sr-last-check")).to_contain_text("never checked")
    row.locator("button.sr-check-button").click()
    expect(page.locator(".sr-flash")).to_contain_text(f"Backup {backup_id} checked: every file", timeout=30_000)
    page.goto(base + f"projects/{project_a}")
    expect(page.locator(f"#sr-panel tr[data-backup-id='{backup_id}'] .sr-last-check")).to_have_attribute(
        "data-checked", "ok")
    for width in WIDTHS:
        shoot(page, shots, "checked", width)


def test_an_organiser_restores_one_file_from_the_browse_view_and_nothing_else_changes(server, browser, tmp_path):
    base, config, project_a = server
    shots = tmp_path / "screenshots"
    shots.mkdir()
    expect = sync_api.expect
    page = browser.new_page(viewport={"width": 1280, "height": 900})

    backup_id, live, original = backed_up_then_changed(page, base, config, project_a)
    (live / "later.md").write_text("written after the backup: not part of the restore")

    page.goto(base + f"projects/{project_a}")
    page.locator(f"#sr-panel tr[data-backup-id='{backup_id}'] a", has_text="Details").click()
    page.locator("#sr-files tr[data-path='about.md'] .sr-restore-this button").click()
    expect(page.locator("#sr-preview-files tr.sr-changed")).to_contain_text("about.md")
    expect(page.locator("#sr-preview-files tr.sr-removed")).not_to_contain_text("later.md")
    for width in WIDTHS:
        shoot(page, shots, "restore-part", width, fits="#sr-preview-files")
    page.set_viewport_size({"width": 1280, "height": 900})
    assert (live / "about.md").read_text() == "changed after the backup"  # a preview changes nothing

    page.click("#sr-confirm-restore-part")
    expect(page.locator(".sr-flash")).to_contain_text(f"Restored about.md from backup {backup_id}", timeout=30_000)
    assert (live / "about.md").read_bytes() == original
    assert (live / "later.md").read_text() == "written after the backup: not part of the restore"
