"""End to end in a real headless Chromium against ``strongroom serve`` on 127.0.0.1.

An organiser signs in, makes a project backup, an edition's file is changed, the
restore preview shows it, the restore runs with its progress bar and outcome, and the
file is back; a plain user sees no panel. Screenshots of the panel and of the preview
go to the test's output folder; the panel's also to ``docs/screenshot-panel.png`` when
that is missing or ``STRONGROOM_UPDATE_SCREENSHOTS`` is set. Without Chromium (Debian's
``chromium``, installed by ``./run``'s set-up) or Playwright, the tests are skipped.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from strongroom.config import Config
from strongroom.scopes import Scope, scope_dir

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
DOCS_SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "screenshot-panel.png"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")


def cli(data_dir: Path, *args) -> list:
    return [sys.executable, "-m", "strongroom.cli", "--data-dir", str(data_dir), *args]


@pytest.fixture
def server(tmp_path):
    data_dir = tmp_path / "data"
    made = subprocess.run(cli(data_dir, "demo", "init"), capture_output=True, text=True, check=True)
    project_a = re.findall(r"project ([0-9a-f]{24})", made.stdout)[0]
    process = subprocess.Popen(cli(data_dir, "serve", "--port", "0"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, stdin=subprocess.DEVNULL)
    try:
        line = process.stdout.readline()
        url = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        assert url, f"the server did not start: {line}{process.stderr.read() if process.poll() is not None else ''}"
        yield url.group(1), Config(data_dir=data_dir), project_a
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def page(tmp_path):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 900})
        finally:
            browser.close()


def sign_in(page, base: str, user: str) -> None:
    page.goto(base + "signin")
    page.click(f"button[data-user={user}]")
    sync_api.expect(page.locator("#signed-in")).to_contain_text(f"Signed in as {user}")


def test_an_organiser_backs_up_restores_inspects_and_deletes_and_a_plain_user_sees_no_panel(server, page, tmp_path):
    base, config, project_a = server
    shots = tmp_path / "screenshots"
    shots.mkdir()
    expect = sync_api.expect

    sign_in(page, base, "org1")
    page.click(f"a[href='/projects/{project_a}']")
    page.fill("input[name=note]", "before the new scene")
    page.click("#sr-make-backup")
    expect(page.locator(".sr-flash")).to_contain_text(" made (", timeout=30_000)
    backup_id = re.search(r"Backup (\S+) of project “[^”]+” made", page.locator(".sr-flash").inner_text()).group(1)

    page.goto(base + f"projects/{project_a}")
    panel = page.locator("#sr-panel")
    expect(panel.locator(f"tr[data-backup-id='{backup_id}']")).to_contain_text("before the new scene")
    panel.screenshot(path=str(shots / "panel.png"))
    if not DOCS_SCREENSHOT.exists() or os.environ.get("STRONGROOM_UPDATE_SCREENSHOTS"):
        DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shots / "panel.png", DOCS_SCREENSHOT)

    scene = min(scope_dir(config, Scope.project(project_a)).rglob("scene.json"))
    original = scene.read_bytes()
    scene.write_text('{"changed": true}')

    panel.locator(f"tr[data-backup-id='{backup_id}'] a.sr-restore").click()
    expect(page.locator("#sr-preview-files tr.sr-changed")).to_contain_text("1")
    expect(page.locator("#sr-preview-files")).to_contain_text("scene.json")
    page.screenshot(path=str(shots / "restore-preview.png"), full_page=True)
    assert scene.read_text() == '{"changed": true}'

    page.click("#sr-confirm-restore")
    expect(page.locator("#sr-progress")).to_be_visible()
    expect(page.locator(".sr-flash")).to_contain_text(re.compile(f"Backup {backup_id} of project “[^”]+” restored \\("),
                                                      timeout=30_000)
    expect(page.locator("#sr-progress")).to_have_attribute("value", "100")
    page.screenshot(path=str(shots / "restore-outcome.png"), full_page=True)
    assert scene.read_bytes() == original
    expect(page.locator("#sr-panel tbody tr").first).to_contain_text("pre-restore")

    page.goto(base + f"projects/{project_a}")
    page.locator(f"#sr-panel tr[data-backup-id='{backup_id}'] a", has_text="Details").click()
    expect(page.locator("h2")).to_contain_text(f"Backup {backup_id}")
    expect(page.locator("body")).to_contain_text("edition")  # its records, per collection
    expect(page.locator("body")).to_contain_text("files in")

    page.goto(base + f"projects/{project_a}")
    pre_restore = page.locator("#sr-panel tbody tr").first.get_attribute("data-backup-id")
    page.locator(f"#sr-panel tr[data-backup-id='{pre_restore}'] a.sr-delete").click()
    expect(page.locator("h2")).to_contain_text(f"Delete backup {pre_restore}")
    page.click("#sr-confirm-delete")
    expect(page.locator(".sr-flash")).to_contain_text(re.compile(f"Backup {pre_restore} of project “[^”]+” deleted"),
                                                      timeout=30_000)
    page.goto(base + f"projects/{project_a}")
    expect(page.locator(f"#sr-panel tr[data-backup-id='{pre_restore}']")).to_have_count(0)
    expect(page.locator(f"#sr-panel tr[data-backup-id='{backup_id}']")).to_have_count(1)
    assert not (config.backups_dir / "project" / project_a / pre_restore).exists()

    page.click("header button[type=submit]")  # sign out
    sign_in(page, base, "user1")
    page.goto(base + f"projects/{project_a}")
    expect(page.locator("#project-title")).to_be_visible()
    expect(page.locator("#sr-panel")).to_have_count(0)
    page.goto(base + "admin")
    expect(page.locator("#sr-panel")).to_have_count(0)
