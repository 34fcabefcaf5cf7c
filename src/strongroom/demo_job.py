"""The README's main job: the demo site on the embedded database, backed up and listed.

``./run demo`` runs this: it makes the demo site in ``./data`` (or ``$STRONGROOM_DATA_DIR``)
if there is none, makes a site backup and a project backup, and lists both, so that a
newcomer sees the product work from a fresh clone. It ends by serving the demo web app
(``strongroom serve``) and printing its address; ``--no-serve`` stops before that, and
``--port N`` / ``--host H`` choose where it listens.
"""

from __future__ import annotations

import sys

from .cli import main as cli


def run(argv: list[str]) -> None:
    serve = "--no-serve" not in argv
    serve_args = _serve_args(argv)
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
    if serve:
        print("\n== The web face: sign in through the user picker (root, admin, org1, user1 …); "
              "the backups panels are on the admin page and on each project page", flush=True)
        _step("Serving the demo app", ["serve", *serve_args], False)


def _serve_args(argv: list[str]) -> list[str]:
    """``--host H`` and ``--port N`` from the demo's arguments, passed on to ``serve``."""
    found = []
    for option in ("--host", "--port"):
        if option in argv and argv.index(option) + 1 < len(argv):
            found += [option, argv[argv.index(option) + 1]]
    return found


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
