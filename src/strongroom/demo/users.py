"""The demo site's users: planned from the seed, and listed for a sign-in picker."""

from __future__ import annotations

import re
from datetime import timedelta

from strongroom.demo.seeded import BASE_DATE, object_id

NICKNAMES = ["Ada", "Bram", "Cato", "Daan", "Eva", "Fenna", "Gijs", "Hanna", "Ivo", "Jet"]


def plan_users(seed: int, projects: int) -> dict[str, dict]:
    organisers = max(2, min(projects, 5))
    names = [("root", "root"), ("admin", "admin")]
    names += [(f"org{i + 1}", "user") for i in range(organisers)]
    names += [("user1", "user"), ("user2", "user")]
    return {
        name: {
            "_id": object_id(seed, "user", n),
            "user": name,
            "nickname": NICKNAMES[n % len(NICKNAMES)],
            "role": role,
            "isSpecial": role != "user",
            "dateCreated": BASE_DATE + timedelta(minutes=n),
        }
        for n, (name, role) in enumerate(names)
    }


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
    return sorted(users, key=lambda u: (rank.get(u["role"], 2), natural_key(u["user"])))


def natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]
