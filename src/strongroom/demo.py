"""A deterministic demo site on the original app's data model: for tests, web demo, benchmarks.

The site is a 3D-edition publishing site in the manner of pure3d: users, projects, the
users' roles in projects and editions in the database; per project a folder with its
editions' scene, model, texture and annotations in the working dir, plus site-level
files outside the project folders.

It is made in two steps. ``plan_demo_site`` is pure: from the numbers and the seed it
computes every record, every file (path, size, mtime, content or the key of its random
bytes) and the ``DemoSite`` summary. ``write_demo_site`` writes a plan. ``create_demo_site``
refuses to touch a site that holds anything, then plans and writes.

Guarantees:

- Same arguments and seed, same site: byte-identical files with identical mtimes and
  identical records, ObjectIds included (they are hashes of the seed, the kind and the
  number); timestamps are a fixed base date plus offsets.
- It never overwrites: a non-empty working dir or a document in ``user``, ``project``,
  ``projectUser`` or ``edition`` makes it refuse before it changes anything. A failure
  half-way leaves a partial site; remove the data dir and start again.
- Binaries are incompressible and unique (no two chunks alike, so neither compression nor
  chunk-level deduplication can shrink them). A file of up to one chunk is
  ``random.Random(key).randbytes``; bigger files are made of chunks, each a rotation of
  one seeded random block through a seeded byte permutation (bytes.translate makes ~650 MB/s,
  three times randbytes).

Sizes (``SIZES``), for the defaults:

- ``small`` (3 projects, 2 editions): 44 files, 118 kB, in a few hundredths of a second.
- ``large`` (40 projects, 5 editions): 4,565 files, about 2.1 GB (1.96 GiB): per edition
  a ``model.glb`` of 1–12 MiB and a ``texture.jpg`` of 1–6 MiB, a scene and 19 or 20
  annotation JSON files; per project an ``about.md`` and an ``icon.png``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import chain
from pathlib import Path, PurePosixPath

from bson import ObjectId

from .config import Config
from .errors import BadInput

Progress = Callable[[str, int, "int | None"], None]

COLLECTIONS = ("user", "project", "projectUser", "edition")
BASE_DATE = datetime(2024, 3, 1, 9, 0, 0, tzinfo=UTC)
CHUNK = 1 << 20
KIB, MIB = 1 << 10, 1 << 20


@dataclass(frozen=True)
class SizeProfile:
    model_bytes: tuple[int, int]  # inclusive range of model.glb sizes
    texture_bytes: tuple[int, int]
    annotations: int  # per edition: this many, one more in every other edition


SIZES = {
    "small": SizeProfile((4 * KIB, 16 * KIB), (2 * KIB, 8 * KIB), annotations=2),
    "large": SizeProfile((1 * MIB, 12 * MIB), (1 * MIB, 6 * MIB), annotations=19),
}


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


def create_demo_site(
    config: Config,
    database,
    *,
    projects: int = 3,
    editions: int = 2,
    size: str = "small",
    seed: int = 0,
    progress: Progress | None = None,
) -> DemoSite:
    """Write a demo site into ``config``'s working dir and ``database``; refuse if not empty."""
    plan = plan_demo_site(projects=projects, editions=editions, size=size, seed=seed)
    refuse_if_occupied(config, database)
    write_demo_site(config, database, plan, progress=progress)
    return plan.site


def refuse_if_occupied(config: Config, database) -> None:
    working_dir = config.working_dir
    if working_dir.exists() and (not working_dir.is_dir() or any(working_dir.iterdir())):
        raise BadInput(
            f"the working dir {working_dir} is not empty; "
            "a demo site is only made where there is nothing to overwrite"
        )
    for name in COLLECTIONS:
        if database[name].find_one({}) is not None:
            raise BadInput(
                f"the collection {name!r} already holds documents; "
                "a demo site is only made in an empty database"
            )


def demo_users(database) -> list[dict]:
    """Every user with their role and the ids of the projects they organise, root first.

    ``[{"user": "org1", "role": "user", "organises": ["65f…", …]}, …]``, for a sign-in picker.
    """
    organises: dict[str, list[str]] = {}
    for link in database["projectUser"].find({"role": "organiser"}):
        organises.setdefault(link["user"], []).append(str(link["projectId"]))
    rank = {"root": 0, "admin": 1}
    users = [
        {
            "user": doc["user"],
            "role": doc["role"],
            "organises": sorted(organises.get(doc["user"], [])),
        }
        for doc in database["user"].find({})
    ]
    return sorted(users, key=lambda u: (rank.get(u["role"], 2), _natural_key(u["user"])))


# -- plan ---------------------------------------------------------------------------


def plan_demo_site(
    *, projects: int = 3, editions: int = 2, size: str = "small", seed: int = 0
) -> DemoPlan:
    """Every record and file of a demo site; pure, and the same for the same arguments."""
    if size not in SIZES:
        raise BadInput(f"demo size must be one of {', '.join(SIZES)}, not {size!r}")
    if projects < 1 or editions < 1:
        raise BadInput("a demo site needs at least one project with at least one edition")
    profile, rng = SIZES[size], random.Random(f"{seed}:plan")
    users = _plan_users(seed, projects)
    organisers = sorted((n for n in users if n.startswith("org")), key=_natural_key)
    records: dict[str, list[dict]] = {
        "user": list(users.values()),
        "project": [],
        "projectUser": [],
        "edition": [],
    }
    files: list[tuple[str, bytes, int, str | None]] = list(_site_files(seed, projects))
    project_ids, edition_ids, organised = [], {}, {}
    for p in range(projects):
        project = _project_record(seed, p, rng)
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
                    "_id": _object_id(seed, "projectUser", p * 2 + n),
                    "projectId": project["_id"],
                    "user": name,
                    "role": role,
                }
            )
        folder = f"project/{pid}"
        files.append((f"{folder}/about.md", _about(project), 0, None))
        files.append((f"{folder}/icon.png", _png(random.Random(f"{seed}:icon:{p}")), 0, None))
        edition_ids[pid] = []
        for e in range(editions):
            n_annotations = profile.annotations + e % 2
            edition = _edition_record(seed, project, p, e, n_annotations, rng)
            edition_ids[pid].append(str(edition["_id"]))
            records["edition"].append(edition)
            files.extend(
                _edition_files(f"{folder}/edition/{edition['_id']}", edition, profile, rng)
            )
    planned = tuple(
        PlannedFile(PurePosixPath(path), len(content) + extra, _mtime_ns(i), content, noise)
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


def _object_id(seed: int, kind: str, n: int) -> ObjectId:
    return ObjectId(hashlib.sha256(f"{seed}:{kind}:{n}".encode()).digest()[:12])


def _mtime_ns(index: int) -> int:
    return int((BASE_DATE + timedelta(days=30, seconds=61 * index)).timestamp()) * 10**9


def _plan_users(seed: int, projects: int) -> dict[str, dict]:
    organisers = max(2, min(projects, 5))
    names = [("root", "root"), ("admin", "admin")]
    names += [(f"org{i + 1}", "user") for i in range(organisers)]
    names += [("user1", "user"), ("user2", "user")]
    return {
        name: {
            "_id": _object_id(seed, "user", n),
            "user": name,
            "nickname": NICKNAMES[n % len(NICKNAMES)],
            "role": role,
            "isSpecial": role != "user",
            "dateCreated": BASE_DATE + timedelta(minutes=n),
        }
        for n, (name, role) in enumerate(names)
    }


def _project_record(seed: int, p: int, rng: random.Random) -> dict:
    subject = rng.choice(SUBJECTS)
    return {
        "_id": _object_id(seed, "project", p),
        "title": f"{subject} {p + 1}",
        "description": f"Three-dimensional editions of the {subject.lower()}.",
        "visible": p % 3 != 2,
        "isPristine": p == 0,
        "dateCreated": BASE_DATE + timedelta(days=p, hours=1),
        "keywords": rng.sample(KEYWORDS, 3),
        "stats": {"views": rng.randrange(10_000), "rating": round(rng.uniform(1, 5), 2)},
    }


def _edition_record(seed: int, project: dict, p: int, e: int, annotations: int, rng) -> dict:
    published = e % 2 == 0
    created = project["dateCreated"] + timedelta(hours=e + 1)
    return {
        "_id": _object_id(seed, "edition", p * 1000 + e),
        "projectId": project["_id"],
        "title": f"{project['title']}, edition {e + 1}",
        "dateCreated": created,
        "isPublished": published,
        "isPristine": e == 0,
        "settings": {
            "viewer": {"name": "voyager", "version": "v0.30.0"},
            "meta": {
                "language": ["en", "nl"],
                "creator": rng.choice(NICKNAMES),
                "annotations": annotations,
            },
            "published": {
                "date": created + timedelta(days=7) if published else None,
                "number": e // 2 + 1,
            },
            "camera": {
                "fov": rng.choice([35.0, 45.0, 52.5]),
                "position": [round(rng.uniform(-5, 5), 3) for _ in range(3)],
            },
        },
    }


def _site_files(seed: int, projects: int) -> Iterator[tuple[str, bytes, int, str | None]]:
    site = {
        "name": "Strongroom demo",
        "seed": seed,
        "projects": projects,
        "languages": ["en", "nl"],
    }
    yield "site.json", _json(site), 0, None
    for name in ("about", "intro", "privacy"):
        yield (
            f"texts/{name}.md",
            f"# {name.title()}\n\nThis is the demo site's {name} text.\n".encode(),
            0,
            None,
        )
    yield "images/banner.png", _png(random.Random(f"{seed}:banner")), 0, None


def _edition_files(
    folder: str, edition: dict, profile: SizeProfile, rng
) -> Iterator[tuple[str, bytes, int, str | None]]:
    model_size, texture_size = (
        rng.randint(*profile.model_bytes),
        rng.randint(*profile.texture_bytes),
    )
    n = edition["settings"]["meta"]["annotations"]
    yield f"{folder}/scene.json", _json(_scene(edition, model_size, texture_size, n)), 0, None
    glb = b"glTF" + struct.pack("<II", 2, model_size)
    yield f"{folder}/model.glb", glb, model_size - len(glb), f"{folder}/model.glb"
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
    yield f"{folder}/texture.jpg", jpeg, texture_size - len(jpeg), f"{folder}/texture.jpg"
    for a in range(n):
        note = {
            "id": f"a{a + 1:02d}",
            "title": {"EN": f"Detail {a + 1}"},
            "position": [round(rng.uniform(-1, 1), 4) for _ in range(3)],
            "marker": a + 1,
            "visible": a % 4 != 3,
            "lead": f"A remark on detail {a + 1} of {edition['title']}.",
        }
        yield f"{folder}/annotations/annotation-{a + 1:02d}.json", _json(note), 0, None


def _scene(edition: dict, model_size: int, texture_size: int, annotations: int) -> dict:
    return {
        "asset": {
            "type": "application/si-dpo-3d.document+json",
            "version": "1.0",
            "generator": "Voyager",
        },
        "scene": 0,
        "scenes": [{"units": "cm", "nodes": [0, 1, 2], "meta": 0}],
        "nodes": [
            {"name": "Camera", "camera": 0},
            {"name": "Light", "light": 0},
            {"name": "Model", "model": 0},
        ],
        "cameras": [{"type": "perspective", "perspective": edition["settings"]["camera"]}],
        "lights": [{"type": "directional", "color": [1, 1, 1], "intensity": 1}],
        "models": [
            {
                "units": "cm",
                "derivatives": [
                    {
                        "usage": "Web3D",
                        "quality": "High",
                        "assets": [
                            {"uri": "model.glb", "type": "Model", "byteSize": model_size},
                            {"uri": "texture.jpg", "type": "Image", "byteSize": texture_size},
                        ],
                    }
                ],
                "annotations": [
                    {"id": f"a{a + 1:02d}", "uri": f"annotations/annotation-{a + 1:02d}.json"}
                    for a in range(annotations)
                ],
            }
        ],
        "metas": [{"collection": {"titles": {"EN": edition["title"]}}}],
    }


def _about(project: dict) -> bytes:
    keywords = ", ".join(project["keywords"])
    return f"# {project['title']}\n\n{project['description']}\n\nKeywords: {keywords}.\n".encode()


def _json(value: dict) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True) + "\n").encode()


def _png(rng: random.Random, side: int = 16) -> bytes:
    """A valid ``side``×``side`` RGB PNG of seeded pixels (stored uncompressed, so byte-stable)."""
    rows = b"".join(b"\x00" + rng.randbytes(side * 3) for _ in range(side))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 0))
        + chunk(b"IEND", b"")
    )


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


NICKNAMES = ["Ada", "Bram", "Cato", "Daan", "Eva", "Fenna", "Gijs", "Hanna", "Ivo", "Jet"]
SUBJECTS = [
    "Roman Villa",
    "Gothic Portal",
    "Bronze Age Axe",
    "Tide Mill",
    "Lighthouse",
    "Ship Model",
]
KEYWORDS = [
    "archaeology",
    "architecture",
    "photogrammetry",
    "museum",
    "heritage",
    "scan",
    "reconstruction",
]


# -- write --------------------------------------------------------------------------


def write_demo_site(
    config: Config, database, plan: DemoPlan, *, progress: Progress | None = None
) -> None:
    """Write ``plan``'s files under the working dir, then insert its records."""
    report = progress or (lambda step, done, total: None)
    root, total, done = config.working_dir, plan.site.total_bytes, 0
    block = random.Random(f"{plan.seed}:block").randbytes(CHUNK)
    report("files", 0, total)
    for planned in plan.files:
        pieces = [planned.content]
        if planned.noise is not None:
            pieces = chain(
                pieces, _noise(planned.noise, planned.size - len(planned.content), block)
            )
        _write_file(root.joinpath(*planned.path.parts), pieces, planned.mtime_ns)
        done += planned.size
        report("files", done, total)
    _set_directory_mtimes(root, _mtime_ns(len(plan.files)))
    for n, (name, documents) in enumerate(plan.records.items()):
        report("records", n, len(plan.records))
        database[name].insert_many([dict(doc) for doc in documents])
    report("records", len(plan.records), len(plan.records))


def _write_file(path: Path, pieces: Iterable[bytes | memoryview], mtime_ns: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "xb") as out:
        out.writelines(pieces)
    os.utime(path, ns=(mtime_ns, mtime_ns))


def _noise(key: str, size: int, block: bytes | None) -> Iterator[bytes | memoryview]:
    """``size`` incompressible bytes determined by ``key``, in pieces of at most ``CHUNK``."""
    rng = random.Random(key)
    if size <= CHUNK:
        yield rng.randbytes(size)
        return
    permutation = rng.sample(range(256), 256)
    while size > 0:
        shift, mask = rng.randrange(256), rng.randrange(256)
        table = bytes(permutation[(x + shift) & 255] ^ mask for x in range(256))
        view = memoryview(block.translate(table))
        offset, n = rng.randrange(CHUNK), min(CHUNK, size)
        head = view[offset : offset + n]
        yield head
        if len(head) < n:
            yield view[: n - len(head)]
        size -= n


def _set_directory_mtimes(root: Path, mtime_ns: int) -> None:
    for folder, _, _ in sorted(os.walk(root), key=lambda entry: -len(Path(entry[0]).parts)):
        os.utime(folder, ns=(mtime_ns, mtime_ns))
