"""``--ping-url``: the scheduled commands report their start and outcome to monitoring.

``PingingGroup`` wraps the whole command (the ``strongroom`` group's ``invoke``): for the
commands a schedule runs (``PINGED``) it sends the start ping before the command, then
the success ping if it exits 0, or the fail ping with the exit status and the one-line
error (``clierrors.fail`` leaves it in the context's ``meta``). Asking for ``--help`` pings
nothing. A ping that fails warns once on standard error and changes nothing else
(``ping``).
"""

from __future__ import annotations

import click

from strongroom.cli.clierrors import FAILURE, Group
from strongroom.cli.ping import Pinger, check_url
from strongroom.errors import BadInput

PINGED = ("backup", "prune", "verify", "push")
ENV_PING_URL = "STRONGROOM_PING_URL"
HELP = ("--help", "-h")


def _checked_url(ctx, param, value):
    if value is None or value == "":
        return None
    try:
        return check_url(value)
    except BadInput as exc:
        raise click.BadParameter(str(exc)) from exc


ping_url_option = click.option(
    "--ping-url", envvar=ENV_PING_URL, metavar="URL", callback=_checked_url,
    help=f"Report the start and outcome of backup, prune, verify and push to a healthchecks-style URL: "
         f"URL/start, URL, URL/fail (env {ENV_PING_URL}).")


class PingingGroup(Group):
    def invoke(self, ctx):
        pinger, what = _pinger(ctx)
        if pinger is None:
            return super().invoke(ctx)
        pinger.start(f"{what}: started")
        try:
            result = super().invoke(ctx)
        except SystemExit as exc:
            _report(pinger, what, ctx, exc.code)
            raise
        except click.exceptions.Exit as exc:
            _report(pinger, what, ctx, exc.exit_code)
            raise
        except click.ClickException as exc:
            ctx.meta.setdefault(FAILURE, exc.format_message())
            _report(pinger, what, ctx, exc.exit_code)
            raise
        except click.Abort:
            _report(pinger, what, ctx, 1)
            raise
        _report(pinger, what, ctx, 0)
        return result


def _pinger(ctx: click.Context) -> tuple[Pinger | None, str]:
    """The run's pinger, or None: no URL, a command not pinged, or a call for help."""
    url = ctx.params.get("ping_url")
    words = [*subcommand_words(ctx), *ctx.args]
    if not url or not words or words[0] not in PINGED or any(word in HELP for word in words):
        return None, ""
    warn = lambda message: click.echo(f"strongroom: warning: {message}", err=True)
    return Pinger(url, warn), f"strongroom {words[0]}"


def subcommand_words(ctx: click.Context) -> list[str]:
    """The subcommand's name as the group's context holds it before invoking it (its
    ``_protected_args`` since click 8.2, ``protected_args`` before)."""
    found = getattr(ctx, "_protected_args", None)
    return list(found if found is not None else getattr(ctx, "protected_args", []))


def _report(pinger: Pinger, what: str, ctx: click.Context, code) -> None:
    code = 0 if code is None else code
    if code == 0:
        pinger.success(f"{what}: ok")
    else:
        pinger.fail(f"{what}: exit {code}: {ctx.meta.get(FAILURE) or 'failed'}")
