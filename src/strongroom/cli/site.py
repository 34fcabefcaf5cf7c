"""The commands around the demo site: serve the web app, make the demo site."""

from __future__ import annotations

import click

from strongroom.humanize import plural
from strongroom.humanize import size as _size


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--server", type=click.Choice(["dev", "waitress"]), default="dev", show_default=True,
              help="dev: Flask's development server; waitress: a production-grade WSGI server.")
@click.pass_obj
def serve(obj, host, port, server):
    """Run the demo web app (projects, admin page, backups panels, /api/v1) on the data dir.

    Sign in through the user picker (not in prod); sign-ins end at sign-out or when the
    server stops. The `strongroom` log's INFO lines (one per backup and restore) go to
    standard error. STRONGROOM_SECRET_KEY sets the key that signs the session cookie.

    \b
    Example:
        strongroom demo init && strongroom serve --port 8000
        strongroom --mode prod serve --server waitress --host 0.0.0.0
    """
    from strongroom.cli.clierrors import Terminated, log_to_terminal
    from strongroom.web import create_app
    from strongroom.web.serving import run_server

    log_to_terminal()  # the one INFO line per backup and restore, as docs/cli.md promises
    app = create_app(obj.config, database=obj.service.database)
    try:
        run_server(app, host, port, server, announce=lambda url: click.echo(f"Serving the demo app on {url} "
                                                                            "(Ctrl-C to stop)", err=False))
    except (KeyboardInterrupt, Terminated) as exc:  # how a server is meant to stop: no error
        how = "Ctrl-C" if isinstance(exc, KeyboardInterrupt) else str(exc).removeprefix("terminated by ")
        click.echo(f"Stopped serving ({how}).", err=True)


@click.group()
def demo():
    """The demo site: users, projects, editions and files in the embedded database."""


@demo.command("init")
@click.option("--projects", default=3, show_default=True, type=click.IntRange(1, 1000))
@click.option("--editions", default=2, show_default=True, type=click.IntRange(0, 1000), help="Editions per project.")
@click.option("--size", type=click.Choice(["small", "large"]), default="small", show_default=True,
              help="small: KB-sized files, for tests; large: files of 1 to 12 MB, about 65 MB with the default "
                   "numbers, about 2 GB with --projects 40 --editions 5 (what ./run bench makes).")
@click.option("--seed", default=0, show_default=True, type=int, help="Same seed, same site.")
@click.pass_obj
def demo_init(obj, projects, editions, size, seed):
    """Create a deterministic demo site; refuses to overwrite existing data."""
    from strongroom.demo import create_demo_site

    site = create_demo_site(obj.config, obj.service.database, projects=projects, editions=editions,
                            size=size, seed=seed, progress=obj.progress)
    obj.progress.done()
    click.echo(f"Demo site made in {obj.config.data_dir}: {plural(len(site.project_ids), 'project')}, "
               f"{plural(site.file_count, 'file')} ({_size(site.total_bytes)}).")
    for project_id in site.project_ids:
        click.echo(f"  project {project_id}")
