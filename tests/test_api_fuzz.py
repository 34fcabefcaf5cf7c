"""The JSON API holds under schemathesis: a real ``strongroom serve`` on 127.0.0.1, fuzzed
as anonymous, as an admin and as an organiser, with every check and every phase (stateful
sequences included), a fixed seed and a bounded budget (``scripts/fuzz_api.py``).

A failure here prints schemathesis' report, with a ``curl`` line that reproduces it. The
long run is ``.venv/bin/python scripts/fuzz_api.py`` (docs/web.md, "Fuzzing the API").
"""

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("schemathesis", reason="schemathesis is in the test extras: pip install -e '.[test]'")

SCRIPT = Path(__file__).parent.parent / "scripts" / "fuzz_api.py"
EXAMPLES = 50  # per operation and phase: about a minute on two cores for the three roles


def test_the_api_passes_every_schemathesis_check_as_anonymous_admin_and_organiser(tmp_path):
    run = subprocess.run([sys.executable, str(SCRIPT), "--examples", str(EXAMPLES), "--seed", "13"],
                         capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
    assert run.stdout.count("== fuzzing the API as") == 3 and "fuzzing found nothing" in run.stdout
