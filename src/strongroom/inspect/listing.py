"""What ``list`` shows of a scope's backups, read with the store alone.

``summaries`` is the one listing (the service's ``list_backups``, so the CLI, the panel
and the API): each complete backup ``store.open_each`` accepts (of this scope and run
mode, reached through no link, and authenticated or signed by a key this site cannot
check, which it says), newest first, as ``manifest.summary`` plus its last check
(``checks_record``) and what its signature proves.

``without_service`` gives the CLI that listing without loading the service and the
database drivers behind it (a tenth of a second of start-up, more from a cold disk):
for the site, and for a project that has backups, nothing but the backup folders is
needed. For a project with none it returns None, and the service decides (the project
may not exist, which only the database can tell).
"""

from __future__ import annotations

from strongroom.config import Config
from strongroom.repo.checks_record import last_check
from strongroom.repo.manifest import summary
from strongroom.repo.signing import signer
from strongroom.repo.store import BackupStore
from strongroom.scopes import Scope


def summaries(store: BackupStore, scope: Scope) -> list[dict]:
    """The scope's complete backups, newest first: ``summary`` plus ``last_check``, and
    ``signature`` (``open_each``'s trust: ``valid``, ``unsigned``, ``other-key``, ``no-key``)
    with ``signed_by``, the fingerprint of the key its signature names."""
    return [{**summary(manifest), "last_check": last_check(path), "signature": trust, "signed_by": signer(manifest)}
            for path, manifest, trust in store.open_each(scope)]


def without_service(config: Config, project_id: str | None) -> list[dict] | None:
    """``summaries`` of the site, or of project ``project_id`` (validated) if it has backups;
    None when only the database can say what to answer."""
    scope = Scope.of(project_id)
    store = BackupStore(config)
    if not scope.is_site and not store.has_backups(scope):
        return None
    return summaries(store, scope)
