"""Strongroom as users install it: from the sdist, as a wheel, into a fresh venv.

The build is what ``pip install`` of the project does: ``python -m build`` (an isolated
environment with setuptools from the package index) makes the sdist, then the wheel from
that sdist, on a copy of the project's files, once per test session. Both must carry every
template, static file and the OpenAPI document. The wheel is then installed (not editable)
into a venv of its own, whose only view of the project's dependencies is a ``.pth`` line
naming this environment's site-packages (whose own ``.pth`` files, the editable install's
among them, are not read from there): ``strongroom`` is imported from the venv, never from
``src/``, and every page of the demo app and the panel is rendered there (``wheel_pages.py``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "strongroom"
TOP_LEVEL_FILES = ("pyproject.toml", "README.md", "MANIFEST.in", "LICENSE")
BUILD_TIMEOUT = 300  # seconds; a build takes about 10


@dataclass
class Built:
    sdist: Path
    wheel: Path


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Built:
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in TOP_LEVEL_FILES:
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, source / name)
    dist = work / "dist"
    done = subprocess.run([sys.executable, "-m", "build", "--outdir", str(dist), str(source)],
                          capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (sdist,), (wheel,) = sorted(dist.glob("*.tar.gz")), sorted(dist.glob("*.whl"))
    return Built(sdist, wheel)


def package_data() -> set[str]:
    """The package's files that are not Python, as paths below ``src/``."""
    web = PACKAGE / "web"
    found = {web / "openapi.json"}
    for folder in (web / "templates", web / "static"):
        found |= {path for path in folder.rglob("*") if path.is_file()}
    return {path.relative_to(ROOT / "src").as_posix() for path in found}


def test_the_package_has_templates_in_folders_static_files_and_the_openapi_document():
    data = package_data()  # what the two tests below look for, so that they look for something
    assert {"strongroom/web/templates/strongroom/panel_page.html", "strongroom/web/templates/demo/base.html",
            "strongroom/web/static/strongroom.css", "strongroom/web/openapi.json"} <= data


def test_the_sdist_carries_every_template_static_file_and_the_openapi_document(built):
    with tarfile.open(built.sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {f"src/{path}" for path in package_data()} - names == set()


def test_the_wheel_carries_every_template_static_file_and_the_openapi_document(built):
    with zipfile.ZipFile(built.wheel) as archive:
        names = set(archive.namelist())
    assert package_data() - names == set()


@pytest.fixture(scope="session")
def venv(built, tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed, the dependencies seen through one ``.pth`` line."""
    home = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(home)], check=True, timeout=120)
    python = home / "bin" / "python"
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                                "--no-index", "--quiet", str(built.wheel)],
                               capture_output=True, text=True, timeout=BUILD_TIMEOUT, env=_clean_environment(), check=False)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    site_packages = Path(subprocess.run([str(python), "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        capture_output=True, text=True, check=True).stdout.strip())
    ours = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}
    (site_packages / "dependencies.pth").write_text("".join(f"{path}\n" for path in sorted(ours)))
    return home


def _clean_environment() -> dict:
    return {name: value for name, value in os.environ.items() if not name.startswith(("PYTHON", "PIP_"))}


def _in_venv(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv / "bin" / "python"), "-I", *args], capture_output=True, text=True,
                          cwd=cwd, env=_clean_environment(), timeout=BUILD_TIMEOUT, check=False)


def test_the_venv_imports_strongroom_from_the_installed_wheel_not_from_the_source_tree(venv, tmp_path):
    done = _in_venv(venv, "-c", "import strongroom.web, sys; print(strongroom.__file__)", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    where = Path(done.stdout.strip()).resolve()
    assert where.is_relative_to(venv.resolve()) and not where.is_relative_to(ROOT.resolve())


def test_the_installed_command_runs(venv, tmp_path):
    done = subprocess.run([str(venv / "bin" / "strongroom"), "--version"], capture_output=True, text=True,
                          cwd=tmp_path, env=_clean_environment(), timeout=120, check=False)
    assert done.returncode == 0 and "0.1.0" in done.stdout, done.stderr


def test_the_installed_wheel_renders_every_page_of_the_demo_app_and_the_panel(venv, tmp_path):
    script = tmp_path / "wheel_pages.py"  # a copy: the script's folder is not on the path with -I anyway
    shutil.copy2(Path(__file__).with_name("wheel_pages.py"), script)
    done = _in_venv(venv, str(script), str(tmp_path / "data"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-5000:]
    result = json.loads(done.stdout)
    assert Path(result["strongroom"]).resolve().is_relative_to(venv.resolve())
    wrong = {name: page for name, page in result["pages"].items()
             if page["status"] != page["expected"] or not page["has_text"]}
    assert wrong == {}
    assert len(result["pages"]) >= 20
