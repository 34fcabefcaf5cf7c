"""What ``strongroom serve`` prints: its address, then the ``strongroom`` log's INFO line
for each backup and restore the web face runs, as docs/cli.md promises."""

import http.cookiejar
import json
import re
import subprocess
import sys
import time
import urllib.request


def test_serve_prints_the_strongroom_info_line_of_a_backup_made_through_the_web(tmp_path):
    data_dir = tmp_path / "data"
    base = [sys.executable, "-m", "strongroom.cli", "--data-dir", str(data_dir)]
    subprocess.run([*base, "demo", "init"], capture_output=True, check=True, timeout=120)
    process = subprocess.Popen([*base, "serve", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, stdin=subprocess.DEVNULL)
    try:
        url = re.search(r"(http://127\.0\.0\.1:\d+/)", process.stdout.readline()).group(1)
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

        def session_token() -> str:
            return json.load(opener.open(url + "api/v1/session"))["csrf_token"]

        signin = urllib.parse.urlencode({"csrf_token": session_token(), "user": "admin"}).encode()
        opener.open(urllib.request.Request(url + "signin", data=signin))
        started = opener.open(urllib.request.Request(
            url + "api/v1/site/backups", data=b"{}", method="POST",
            headers={"Content-Type": "application/json", "X-CSRF-Token": session_token()}))
        job_url = url + "api/v1/jobs/" + json.load(started)["job"]["id"]
        deadline = time.monotonic() + 60
        while json.load(opener.open(job_url))["job"]["state"] == "running" and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        process.terminate()
        _, err = process.communicate(timeout=10)
    lines = [line for line in err.splitlines() if " strongroom INFO backup " in line]
    assert len(lines) == 1, err
    assert re.search(r"backup \S+ of the site: \d+ files, \d+ bytes read", lines[0])


def test_serve_stopped_by_sigterm_says_it_stopped_and_exits_0_not_as_an_error(tmp_path):
    data_dir = tmp_path / "data"
    base = [sys.executable, "-m", "strongroom.cli", "--data-dir", str(data_dir)]
    subprocess.run([*base, "demo", "init"], capture_output=True, check=True, timeout=120)
    process = subprocess.Popen([*base, "serve", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, stdin=subprocess.DEVNULL)
    try:
        assert "Serving the demo app on" in process.stdout.readline()  # it is up, its handlers in place
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "error" not in err and err.strip().splitlines()[-1] == "Stopped serving (SIGTERM).", err
