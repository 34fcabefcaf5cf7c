"""The plan of a demo site: every record and every file (path, size, mtime, content or
the key of its random bytes), computed from the numbers and the seed without writing
anything; the same arguments give the same plan."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import PurePosixPath

from strongroom.demo.content import (
    SIZES,
    SizeProfile,
    about,
    edition_files,
    edition_record,
    png,
    project_record,
    site_files,
)
from strongroom.demo.seeded import mtime_ns, object_id
from strongroom.demo.users import natural_key, plan_users
from strongroom.errors import BadInput

COLLECTIONS = ("user", "project", "projectUser", "edition", "editionUser")
EDITION_ROLES = ("editor", "reader")  # Pure3D's roles in an edition (``editionUser``)


@dataclass(frozen=True)
class DemoSite:
    """What a demo site holds: ids as hex strings, in order, and the size of its files."""

    project_ids: tuple[str, ...]
    edition_ids: dict[str, tuple[str, ...]]  # project id -> its edition ids
    users: dict[str, str]  # user name -> role
    organisers: dict[str, tuple[str, ...]]  # project id -> user names
    file_count: int
    total_bytes: int


@dataclass(frozen=True)
class PlannedFile:
    """A file relative to the working dir: ``content``, then random bytes up to ``size``
    when ``noise`` (the key of those bytes) is set."""

    path: PurePosixPath
    size: int
    mtime_ns: int
    content: bytes = b""
    noise: str | None = None


@dataclass(frozen=True)
class DemoPlan:
    site: DemoSite
    records: dict[str, tuple[dict, ...]]  # collection -> documents
    files: tuple[PlannedFile, ...]
    seed: int


def plan_demo_site(
    *, projects: int = 3, editions: int = 2, size: str = "small", seed: int = 0, edition_users: bool = False
) -> DemoPlan:
    """Every record and file of a demo site; pure, and the same for the same arguments.
    With ``edition_users``, Pure3D's couplings of users to editions too (``editionUser``:
    per edition, the project's organiser as editor and its collaborator as reader)."""
    if size not in SIZES:
        raise BadInput(f"demo size must be one of {', '.join(SIZES)}, not {size!r}")
    if projects < 1 or editions < 1:
        raise BadInput("a demo site needs at least one project with at least one edition")
    profile, rng = SIZES[size], random.Random(f"{seed}:plan")
    users = plan_users(seed, projects)
    organisers = sorted((n for n in users if n.startswith("org")), key=natural_key)
    records: dict[str, list[dict]] = {
        "user": list(users.values()),
        "project": [],
        "projectUser": [],
        "edition": [],
        **({"editionUser": []} if edition_users else {}),
    }
    files: list[tuple[str, bytes, int, str | None]] = list(site_files(seed, projects))
    project_ids, edition_ids, organised = [], {}, {}
    for p in range(projects):
        organiser = organisers[p % len(organisers)]
        pid, editions_of = _plan_project(seed, p, editions, profile, rng, organiser, records, files)
        project_ids.append(pid)
        edition_ids[pid] = editions_of
        organised[pid] = (organiser,)
    planned = tuple(
        PlannedFile(PurePosixPath(path), len(content) + extra, mtime_ns(i), content, noise)
        for i, (path, content, extra, noise) in enumerate(files)
    )
    site = DemoSite(
        project_ids=tuple(project_ids),
        edition_ids={pid: tuple(ids) for pid, ids in edition_ids.items()},
        users={doc["user"]: doc["role"] for doc in users.values()},
        organisers=organised,
        file_count=len(planned),
        total_bytes=sum(f.size for f in planned),
    )
    return DemoPlan(site, {name: tuple(docs) for name, docs in records.items()}, planned, seed)


def _plan_project(seed: int, p: int, editions: int, profile: SizeProfile, rng: random.Random,
                  organiser: str, records: dict[str, list[dict]], files: list) -> tuple[str, list[str]]:
    """Add project ``p``'s records and files (its editions' too) to ``records`` and
    ``files``, drawing from ``rng`` in a fixed order; return its id and its editions' ids."""
    project = project_record(seed, p, rng)
    pid = str(project["_id"])
    records["project"].append(project)
    members = (organiser, f"user{p % 2 + 1}")
    for n, (name, role) in enumerate(zip(members, ("organiser", "collaborator"), strict=True)):
        records["projectUser"].append(
            {"_id": object_id(seed, "projectUser", p * 2 + n), "projectId": project["_id"], "user": name, "role": role}
        )
    folder = f"project/{pid}"
    files.append((f"{folder}/about.md", about(project), 0, None))
    files.append((f"{folder}/icon.png", png(random.Random(f"{seed}:icon:{p}")), 0, None))
    edition_ids = []
    for e in range(editions):
        edition = edition_record(seed, project, p, e, profile.annotations + e % 2, rng)
        edition_ids.append(str(edition["_id"]))
        records["edition"].append(edition)
        if "editionUser" in records:
            records["editionUser"].extend(
                {"_id": object_id(seed, "editionUser", (p * editions + e) * 2 + n), "editionId": edition["_id"],
                 "user": name, "role": role}
                for n, (name, role) in enumerate(zip(members, EDITION_ROLES, strict=True)))
        files.extend(edition_files(f"{folder}/edition/{edition['_id']}", edition, profile, rng))
    return pid, edition_ids
