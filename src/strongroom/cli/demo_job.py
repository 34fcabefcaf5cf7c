"""The README's main job: the demo site on the embedded database, backed up and listed.

``./run demo`` runs this: it makes the demo site in ``./data`` (or ``$STRONGROOM_DATA_DIR``)
if there is none, makes a site backup and a project backup, and lists both, so that a
newcomer sees the product work from a fresh clone. It ends by serving the demo web app
(``strongroom serve``) and printing its address; ``--no-serve`` stops before that, and
``--port N`` / ``--host H`` choose where it listens.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from strongroom.cli import main as cli


def run(argv: list[str]) -> None:
    options = _parse(argv)  # --help prints the help and exits; an unknown argument exits 2
    working = _working_dir()
    if working.is_dir() and any(working.iterdir()):
        print(f"\n== The demo site is already there ({working}): kept as it is", flush=True)
    else:
        _step("Creating the demo site", ["demo", "init"])
    _step("Making a site backup", ["backup", "--note", "demo: site backup"])
    project_id = _first_project()
    _step("Making a backup of one project", ["backup", "--project", project_id, "--note", "demo"])
    _step("Site backups, newest first", ["list"])
    _step(f"Backups of {_name(project_id)}", ["list", "--project", project_id])
    print("\nTry: ./run strongroom --help   (restore, delete, verify, show …)")
    if options.serve:
        print("\n== The web face: sign in through the user picker (root, admin, org1, user1 …); "
              "the backups panels are on the admin page and on each project page", flush=True)
        _step("Serving the demo app", ["serve", "--host", options.host, "--port", str(options.port)])


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="./run demo",
        description="Make the demo site in ./data (or $STRONGROOM_DATA_DIR) if there is none, back up the "
                    "site and one project, list both, then serve the demo web app and print its address.")
    parser.add_argument("--no-serve", dest="serve", action="store_false", help="stop before serving the web app")
    parser.add_argument("--host", default="127.0.0.1", help="address the web app listens on (default %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port the web app listens on (default %(default)s)")
    return parser.parse_args(argv)


def _step(title: str, args: list[str]) -> None:
    print(f"\n== {title}: strongroom {' '.join(args)}", flush=True)
    try:
        cli.main(args, standalone_mode=False)
    except SystemExit as exc:
        if exc.code:
            sys.exit(exc.code)


def _working_dir() -> Path:
    from strongroom.config import Config

    return Config.from_env().working_dir


def _name(project_id: str) -> str:
    """The project as people know it, by its title (``scopes.scope_name``)."""
    from strongroom.config import Config
    from strongroom.service import Strongroom

    return Strongroom(Config.from_env()).scope_name(project_id)


def _first_project() -> str:
    from strongroom.config import Config
    from strongroom.db.engines import open_database

    config = Config.from_env()
    record = open_database(config)[config.model.project_collection].find_one({}, sort=[("_id", 1)])
    return str(record["_id"])


if __name__ == "__main__":
    run(sys.argv[1:])
