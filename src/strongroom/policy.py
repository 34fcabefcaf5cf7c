"""Who may do what with backups (docs/web.md, "Who may do what") as one pure function.

- Nobody anonymous may do anything, not even see the list.
- Site backups: the roles ``admin`` and ``root``.
- A project's backups: those roles, and the project's organisers.
- In a production run mode (``prod`` by default; ``Config.production_modes``) nobody
  triggers a backup, restore or delete (the system makes scheduled backups there); those
  allowed may still see the list and the details.

The web face asks ``can`` before every request; the host app says who the user is by
returning a ``User`` (or ``None`` for anonymous).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from strongroom.config import PRODUCTION_MODES
from strongroom.scopes import Scope

VIEW, BACKUP, RESTORE, DELETE = "view", "backup", "restore", "delete"
ACTIONS = (VIEW, BACKUP, RESTORE, DELETE)
CHANGES = (BACKUP, RESTORE, DELETE)
SITE_ROLES = ("admin", "root")


@dataclass(frozen=True)
class User:
    """The signed-in user as the host app knows them: name, role, organised project ids."""

    name: str
    role: str = "user"
    organises: frozenset[str] = field(default_factory=frozenset)

    def organiser_of(self, project_id: str | None) -> bool:
        return project_id is not None and project_id in self.organises


def can(user: User | None, action: str, scope: Scope, mode: str,
        production_modes: tuple[str, ...] = PRODUCTION_MODES) -> bool:
    """Whether ``user`` may do ``action`` (one of ``ACTIONS``) on ``scope`` in run ``mode``,
    of which ``production_modes`` are the production ones (the configuration's)."""
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {ACTIONS}, not {action!r}")
    if user is None:
        return False
    if mode in production_modes and action in CHANGES:
        return False
    if user.role in SITE_ROLES:
        return True
    return not scope.is_site and user.organiser_of(scope.project_id)
