"""A deterministic demo site on the original app's data model: for tests, web demo, benchmarks.

The site is a 3D-edition publishing site in the manner of pure3d: users, projects, the
users' roles in projects and editions in the database (and with the ``pure3d`` data model
the users' roles in editions, ``editionUser``); per project a folder with its
editions' scene, model, texture and annotations in the working dir, plus site-level
files outside the project folders.

It is made in two steps. ``plan_demo_site`` (``plan``, with ``content``, ``users`` and
``seeded``) is pure: from the numbers and the seed it computes every record, every file
(path, size, mtime, content or the key of its random bytes) and the ``DemoSite``
summary. ``write_demo_site`` (``writing``) writes a plan. ``create_demo_site`` refuses
to touch a site that holds anything, then plans and writes.

Guarantees:

- Same arguments and seed, same site: byte-identical files with identical mtimes and
  identical records, ObjectIds included (they are hashes of the seed, the kind and the
  number); timestamps are a fixed base date plus offsets.
- It never overwrites: a non-empty working dir or a document in ``user``, ``project``,
  ``projectUser``, ``edition`` or ``editionUser`` makes it refuse before it changes anything. A failure
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

from strongroom.config import Config
from strongroom.demo.plan import COLLECTIONS, DemoPlan, DemoSite, plan_demo_site
from strongroom.demo.users import demo_users
from strongroom.demo.writing import Progress, write_demo_site
from strongroom.errors import BadInput

__all__ = ["COLLECTIONS", "DemoPlan", "DemoSite", "create_demo_site", "demo_users", "plan_demo_site",
           "refuse_if_occupied", "write_demo_site"]


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
    """Write a demo site into ``config``'s working dir and ``database``; refuse if not empty.
    A data model that makes ``editionUser`` a project's (``--model pure3d``) gets those
    records too."""
    plan = plan_demo_site(projects=projects, editions=editions, size=size, seed=seed,
                          edition_users="editionUser" in config.model.collections)
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
