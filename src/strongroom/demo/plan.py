"""The plan of a demo site: every record and every file (path, size, mtime, content or
the key of its random bytes), computed from the numbers and the seed without writing
anything; the same arguments give the same plan."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import PurePosixPath

from ..errors import BadInput
from .content import (
    SIZES,
    about,
    edition_files,
    edition_record,
    png,
    project_record,
    site_files,
)
from .seeded import mtime_ns, object_id
from .users import natural_key, plan_users

COLLECTIONS = ("user", "project", "projectUser", "edition")


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
    *, projects: int = 3, editions: int = 2, size: str = "small", seed: int = 0
) -> DemoPlan:
    """Every record and file of a demo site; pure, and the same for the same arguments."""
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
    }
    files: list[tuple[str, bytes, int, str | None]] = list(site_files(seed, projects))
    project_ids, edition_ids, organised = [], {}, {}
    for p in range(projects):
        project = project_record(seed, p, rng)
        pid = str(project["_id"])
        project_ids.append(pid)
        records["project"].append(project)
        organiser, collaborator = organisers[p % len(organisers)], f"user{p % 2 + 1}"
        organised[pid] = (organiser,)
        for n, (name, role) in enumerate(
            ((organiser, "organiser"), (collaborator, "collaborator"))
        ):
            records["projectUser"].append(
                {
                    "_id": object_id(seed, "projectUser", p * 2 + n),
                    "projectId": project["_id"],
                    "user": name,
                    "role": role,
                }
            )
        folder = f"project/{pid}"
        files.append((f"{folder}/about.md", about(project), 0, None))
        files.append((f"{folder}/icon.png", png(random.Random(f"{seed}:icon:{p}")), 0, None))
        edition_ids[pid] = []
        for e in range(editions):
            n_annotations = profile.annotations + e % 2
            edition = edition_record(seed, project, p, e, n_annotations, rng)
            edition_ids[pid].append(str(edition["_id"]))
            records["edition"].append(edition)
            files.extend(
                edition_files(f"{folder}/edition/{edition['_id']}", edition, profile, rng)
            )
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
