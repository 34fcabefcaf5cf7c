"""The demo site's content: project and edition records, and the files that go with
them (site texts, a scene, a model, a texture and annotations per edition), as pure
functions of a seeded random source.
"""

from __future__ import annotations

import json
import random
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from strongroom.demo.seeded import BASE_DATE, object_id
from strongroom.demo.users import NICKNAMES

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


def project_record(seed: int, p: int, rng: random.Random) -> dict:
    subject = rng.choice(SUBJECTS)
    return {
        "_id": object_id(seed, "project", p),
        "title": f"{subject} {p + 1}",
        "description": f"Three-dimensional editions of the {subject.lower()}.",
        "visible": p % 3 != 2,
        "isPristine": p == 0,
        "dateCreated": BASE_DATE + timedelta(days=p, hours=1),
        "keywords": rng.sample(KEYWORDS, 3),
        "stats": {"views": rng.randrange(10_000), "rating": round(rng.uniform(1, 5), 2)},
    }


def edition_record(seed: int, project: dict, p: int, e: int, annotations: int, rng) -> dict:
    published = e % 2 == 0
    created = project["dateCreated"] + timedelta(hours=e + 1)
    return {
        "_id": object_id(seed, "edition", p * 1000 + e),
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


def site_files(seed: int, projects: int) -> Iterator[tuple[str, bytes, int, str | None]]:
    site = {
        "name": "Strongroom demo",
        "seed": seed,
        "projects": projects,
        "languages": ["en", "nl"],
    }
    yield "site.json", as_json(site), 0, None
    for name in ("about", "intro", "privacy"):
        yield (
            f"texts/{name}.md",
            f"# {name.title()}\n\nThis is the demo site's {name} text.\n".encode(),
            0,
            None,
        )
    yield "images/banner.png", png(random.Random(f"{seed}:banner")), 0, None


def edition_files(
    folder: str, edition: dict, profile: SizeProfile, rng
) -> Iterator[tuple[str, bytes, int, str | None]]:
    model_size, texture_size = (
        rng.randint(*profile.model_bytes),
        rng.randint(*profile.texture_bytes),
    )
    n = edition["settings"]["meta"]["annotations"]
    yield f"{folder}/scene.json", as_json(scene(edition, model_size, texture_size, n)), 0, None
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
        yield f"{folder}/annotations/annotation-{a + 1:02d}.json", as_json(note), 0, None


def scene(edition: dict, model_size: int, texture_size: int, annotations: int) -> dict:
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


def about(project: dict) -> bytes:
    keywords = ", ".join(project["keywords"])
    return f"# {project['title']}\n\n{project['description']}\n\nKeywords: {keywords}.\n".encode()


def as_json(value: dict) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True) + "\n").encode()


def png(rng: random.Random, side: int = 16) -> bytes:
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
