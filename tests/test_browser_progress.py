"""The web bar of a long restore, watched in a real headless Chromium (issue 11, item 1).

A project gets 64 files of 256 KB, is backed up, loses them, and is restored through the
panel. The server runs with ``STRONGROOM_TEST_COPY_DELAY`` (each copy waits 0.1 s, a
test hook of ``rebuild``; the restore itself is real), so the copies last a few seconds
like those of a large site. The page is sampled while the job runs: the bar and its
words must rise, never go back, and end green in "done".
"""

import os
import re
import subprocess
import time

import pytest

from strongroom.config import Config
from strongroom.restore.rebuild import TEST_COPY_DELAY
from strongroom.scopes import Scope, scope_dir
from test_browser import cli, page, sign_in, sync_api  # noqa: F401 - fixtures and helpers

pytestmark = [pytest.mark.browser]
FILES, SIZE = 64, 256 << 10

SAMPLE = """() => {
  const box = document.getElementById("sr-job");
  if (!box) return null;
  return {value: document.getElementById("sr-progress").value, step: document.getElementById("sr-step").textContent,
          state: box.getAttribute("data-state"), outcome: box.getAttribute("data-outcome"),
          words: document.getElementById("sr-state").textContent, eta: document.getElementById("sr-eta").textContent};
}"""


@pytest.fixture
def slow_server(tmp_path):
    data_dir = tmp_path / "data"
    made = subprocess.run(cli(data_dir, "demo", "init"), capture_output=True, text=True, check=True)
    project_a = re.findall(r"project ([0-9a-f]{24})", made.stdout)[0]
    env = {**os.environ, TEST_COPY_DELAY: "0.1"}
    process = subprocess.Popen(cli(data_dir, "serve", "--port", "0"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, stdin=subprocess.DEVNULL, env=env)
    try:
        url = re.search(r"(http://127\.0\.0\.1:\d+/)", process.stdout.readline())
        assert url, "the server did not start"
        yield url.group(1), Config(data_dir=data_dir), project_a
    finally:
        process.terminate()
        process.wait(10)


def _samples(page, seconds: float = 60) -> list[dict]:
    """The bar as the page shows it, every 0.15 s, until the job page shows an outcome."""
    samples, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            shown = page.evaluate(SAMPLE)
        except sync_api.Error:  # the page reloads when the job ends
            shown = None
        if shown:
            samples.append(shown)
            if shown["outcome"]:
                return samples
        time.sleep(0.15)
    raise AssertionError(f"no outcome within {seconds} s: {samples[-3:]}")


def test_the_bar_of_a_long_restore_rises_in_words_and_ends_done(slow_server, page, tmp_path):
    base, config, project_a = slow_server
    big = scope_dir(config, Scope.project(project_a)) / "big"
    big.mkdir()
    for n in range(FILES):
        (big / f"take-{n:02}.bin").write_bytes(os.urandom(SIZE))
    expect = sync_api.expect

    sign_in(page, base, "org1")
    page.goto(base + f"projects/{project_a}")
    page.click("#sr-make-backup")
    expect(page.locator(".sr-flash")).to_contain_text(" made (", timeout=30_000)
    backup_id = re.search(r"Backup (\S+) of .* made", page.locator(".sr-flash").inner_text()).group(1)
    for path in big.iterdir():
        path.unlink()

    page.goto(base + f"projects/{project_a}")
    page.locator(f"#sr-panel tr[data-backup-id='{backup_id}'] a.sr-restore").click()
    page.click("#sr-confirm-restore")
    samples = _samples(page)
    page.screenshot(path=str(tmp_path / "restore-done.png"), full_page=True)

    running = [s for s in samples if not s["outcome"]]
    values = [s["value"] for s in running]
    assert len(running) >= 5, samples
    assert values == sorted(values), f"the bar went back: {values}"
    assert len(set(values)) >= 3 and max(values) < 100, values
    assert "Copying files" in {s["step"] for s in running}, {s["step"] for s in running}
    assert any(s["eta"].endswith(" left") for s in running)
    end = samples[-1]
    assert (end["outcome"], end["words"], end["value"]) == ("done", "done", 100)
    expect(page.locator(".sr-flash")).to_contain_text(re.compile(f"Backup {backup_id} of .* restored \\("))
    color = page.evaluate("() => getComputedStyle(document.getElementById('sr-progress')).accentColor")
    assert color == "rgb(21, 128, 61)"  # green, not the running blue
    assert len(list(big.iterdir())) == FILES
