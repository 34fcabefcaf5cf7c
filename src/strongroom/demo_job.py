"""The README's main job: the demo site on the embedded database, backed up and listed.

``./run demo`` runs this: it makes the demo site in ``./data`` (or ``$STRONGROOM_DATA_DIR``)
if there is none, makes a site backup and a project backup, and lists both, so that a
newcomer sees the product work from a fresh clone.
"""

from __future__ import annotations

import sys

from .cli import main as cli


def run(argv: list[str]) -> None:
    steps = [
        (["demo", "init"], "Creating the demo site", True),
        (["backup", "--note", "demo: site backup"], "Making a site backup", False),
    ]
    for args, title, may_exist in steps:
        _step(title, args, may_exist)
    project_id = _first_project()
    _step("Making a backup of one project", ["backup", "--project", project_id, "--note", "demo"], False)
    _step("Site backups, newest first", ["list"], False)
    _step(f"Backups of project {project_id}", ["list", "--project", project_id], False)
    print("\nTry: ./run strongroom --help   (restore, delete, verify, show …)")


def _step(title: str, args: list[str], may_exist: bool) -> None:
    print(f"\n== {title}: strongroom {' '.join(args)}", flush=True)
    try:
        cli.main(args, standalone_mode=False)
    except SystemExit as exc:
        if exc.code and not (may_exist and exc.code == 2):
            sys.exit(exc.code)
        if exc.code:
            print("(the demo site is already there)")


def _first_project() -> str:
    from .config import Config
    from .engines import open_database

    config = Config.from_env()
    record = open_database(config)[config.model.project_collection].find_one({}, sort=[("_id", 1)])
    return str(record["_id"])


if __name__ == "__main__":
    run(sys.argv[1:])
