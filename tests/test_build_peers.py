"""scripts/build-peers, run several times at once (two worktrees, two test runs), builds each
peer once: the others wait for its lock and find the binary. A stand-in ``go`` records each
build, so this runs in seconds and needs no Go toolchain."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "build-peers"

FAKE_GO = """#!{python}
import pathlib, sys, time
args = sys.argv[1:]
if args[:2] == ["mod", "download"]:
    print('{{\\n\\t"Dir": "{module}",\\n}}')
elif args[0] == "build":
    with open("{log}", "a") as log:
        log.write(args[-1] + "\\n")
    time.sleep(1)  # long enough that the other runs arrive while this one builds
    out = pathlib.Path(args[args.index("-o") + 1])
    out.write_text("#!/bin/sh\\necho v1\\n")
    out.chmod(0o755)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="flock and bash")
def test_runs_at_once_build_each_peer_once_and_all_find_it(tmp_path):
    module = tmp_path / "module"
    (module / "build" / "version").mkdir(parents=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "builds"
    go = bin_dir / "go"
    go.write_text(FAKE_GO.format(python=sys.executable, module=module, log=log))
    go.chmod(0o755)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}

    runs = [subprocess.Popen([str(SCRIPT)], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             text=True) for _ in range(3)]
    outputs = [run.communicate(timeout=120)[0] for run in runs]

    assert sorted(log.read_text().split()) == ["./cmd/ferretdb", "./weed"]
    peers = tmp_path / "cache" / "strongroom" / "peers"
    for output in outputs:
        assert f"STRONGROOM_FERRETDB={peers}/ferretdb-" in output
        assert f"STRONGROOM_SEAWEEDFS={peers}/seaweedfs-" in output
        assert "UNAVAILABLE" not in output.replace("MONGO_TOOLS_UNAVAILABLE", "")
    assert not list(peers.glob("*/UNAVAILABLE"))
