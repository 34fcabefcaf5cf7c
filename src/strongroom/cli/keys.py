"""``strongroom key``: the site key's status, a copy for safekeeping, a key put back, and
the backups of a lost key adopted (``check.keys``; docs/keys.md)."""

from __future__ import annotations

import click

from strongroom.cli.clierrors import fail
from strongroom.cli.common import confirm, json_option, print_json, yes_option
from strongroom.humanize import count, plural, when
from strongroom.humanize import escape as _text


@click.group()
def key():
    """The site key that signs every backup: status, export, import, adopt.

    \b
    Example:
        strongroom key status
        strongroom key export --to /root/strongroom-site.key
        strongroom key import /root/strongroom-site.key
        strongroom key adopt --from 3f1c9a0b7e2d4c55
    """


@key.command("status")
@json_option
@click.pass_obj
def key_status(obj, as_json):
    """Show the site key in use (its fingerprint), its exports, and which keys sign the backups."""
    found = obj.service.key_report()
    if as_json:
        print_json(found)
        return
    if found["id"]:
        click.echo(f"site key   {found['id']} at {_text(found['path'])}")
    elif found["state"] == "refused":
        click.echo(f"site key   REFUSED: {_text(found['problem'])}")
    elif found["state"] == "missing":
        click.echo(f"site key   MISSING: {_text(found['problem'] or 'there is none at ' + found['path'])}")
    else:
        click.echo(f"site key   none at {_text(found['path'])}")
    exports = found["exports"]
    click.echo("exported   " + ("; ".join(f"{when(e['at'])} to {_text(str(e['to']))}" for e in exports) if exports
                                else "NEVER: keep a copy elsewhere (`strongroom key export --to FILE`)"))
    for signer, signed in sorted(found["signers"].items()):
        mark = " (the site key)" if signer == found["id"] else "" if signer == "unsigned" else " (NOT the site key)"
        click.echo(f"signs      {plural(signed, 'backup')}: {signer}{mark}")


@key.command("export")
@click.option("--to", "to", required=True, metavar="FILE", type=click.Path(dir_okay=False),
              help="A new file for the copy (mode 0600), away from the backups.")
@json_option
@click.pass_obj
def key_export(obj, to, as_json):
    """Copy the site key into a new file, to keep it safe away from the backups.

    Without the key no backup can be checked, so none can be restored: keep the copy
    where the loss of this disk cannot reach it. `status` warns until one is made.
    """
    done = obj.service.export_key(to)
    if as_json:
        print_json(done)
    else:
        click.echo(f"Exported site key {done['key']} to {_text(done['to'])}; keep it safe, as you would a password.")


@key.command("import")
@click.argument("source", type=click.Path(dir_okay=False))
@json_option
@click.pass_obj
def key_import(obj, source, as_json):
    """Put a saved site key back in place (when the key is missing, or refused: then moved aside).

    The key must be the one the backups here were signed with.
    """
    done = obj.service.import_key(source)
    if as_json:
        print_json(done)
        return
    aside = f" (what was there is kept as {_text(done['moved_aside'])})" if done["moved_aside"] else ""
    click.echo(f"Site key {done['key']} is in place{aside}; it signs {plural(done['signs'], 'backup')}.")


@key.command("adopt")
@click.option("--from", "from_key", required=True, metavar="KEY",
              help="The fingerprint of the lost key whose backups to adopt (as `key status` shows it).")
@yes_option
@json_option
@click.pass_obj
def key_adopt(obj, from_key, yes, as_json):
    """Trust the content of the backups signed by a lost key: verify each in full, and sign
    those that pass with the site key (made now if there is none).

    Their content is checked for consistency, not for who made it: anyone who could write
    the backups folder could have put a backup there naming that key. Adopt only backups
    you recognise in the list shown; the audit log and each manifest record the act.
    """
    chosen = obj.service.adoption_candidates(from_key)
    if chosen and not as_json:
        click.echo(f"Backups signed by key {_text(from_key)}:")
        for b in chosen:
            scope = "site" if b["scope"] == "site" else f"project {b['project']}"
            note = f"  {_text(b['note'])}" if b["note"] else ""
            click.echo(f"  {scope:<32} {b['id']:<22} {b['reason']:<11} by {_text(str(b['created_by']))}{note}")
    if chosen:  # none: the service says why
        what = "this backup and sign it" if len(chosen) == 1 else f"these {count(len(chosen))} backups and sign them"
        confirm(yes, f"Trust the content of {what} with this site's key?")
    done = obj.service.adopt_key(from_key)
    if as_json:
        print_json(done)
    else:
        click.echo(f"Adopted {plural(len(done['adopted']), 'backup')} under site key {done['key']}.")
        for refused in done["refused"]:
            click.echo(f"NOT adopted {refused['id']}: {_text('; '.join(refused['problems']))}", err=True)
    if done["refused"]:
        fail(None, f"{plural(len(done['refused']), 'backup')} failed {'its' if len(done['refused']) == 1 else 'their'} "
                   f"check and {'was' if len(done['refused']) == 1 else 'were'} not adopted", 5)
