"""``./run`` and ``./run demo``: help is help, and an argument they do not know is refused
before anything is made."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def demo_job(tmp_path, *args):
    env = {**os.environ, "STRONGROOM_DATA_DIR": str(tmp_path / "data")}
    return subprocess.run([sys.executable, "-m", "strongroom.cli.demo_job", *args], capture_output=True, text=True,
                          cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, timeout=60, check=False)


@pytest.mark.parametrize("ask", ["--help", "-h"])
def test_the_demo_job_prints_its_help_and_makes_nothing(tmp_path, ask):
    result = demo_job(tmp_path, ask)
    assert result.returncode == 0 and "usage: ./run demo" in result.stdout and "--no-serve" in result.stdout
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("args", [["--bogus"], ["serve"], ["--port", "eighty"]])
def test_the_demo_job_refuses_what_it_does_not_know_and_makes_nothing(tmp_path, args):
    result = demo_job(tmp_path, *args)
    assert result.returncode == 2 and "error:" in result.stderr
    assert not (tmp_path / "data").exists()


def test_run_demo_help_goes_through_the_run_script(tmp_path):
    if not (ROOT / ".venv" / "bin" / "python").exists():
        pytest.skip("./run's environment is not set up here")
    result = subprocess.run([str(ROOT / "run"), "demo", "--help"], capture_output=True, text=True,
                            stdin=subprocess.DEVNULL, timeout=120, check=False)
    assert result.returncode == 0 and "usage: ./run demo" in result.stdout


def test_run_refuses_an_unknown_command():
    result = subprocess.run([str(ROOT / "run"), "dmeo"], capture_output=True, text=True,
                            stdin=subprocess.DEVNULL, timeout=60, check=False)
    assert result.returncode == 2 and "unknown command 'dmeo'" in result.stderr


def test_run_strongroom_reads_relative_paths_from_the_caller_s_folder(tmp_path):
    """``./run strongroom`` sets up in the project's folder, then runs where it was called:
    ``STRONGROOM_DATA_DIR=site`` is the caller's ``site`` (it was the project's)."""
    if not (ROOT / ".venv" / "bin" / "python").exists():
        pytest.skip("./run's environment is not set up here")
    (tmp_path / "site" / "working" / "pilot").mkdir(parents=True)
    env = {**os.environ, "STRONGROOM_DATA_DIR": "site", "STRONGROOM_MODE": "pilot"}
    result = subprocess.run([str(ROOT / "run"), "strongroom", "status", "--json"], capture_output=True, text=True,
                            cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, timeout=120, check=False)
    assert str(tmp_path / "site") in result.stdout, (result.stdout, result.stderr)
    assert not (ROOT / "site").exists()
