"""The demo site: its data model, its files, its determinism and its refusal to overwrite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bson import ObjectId

from strongroom.config import Config
from strongroom.db.engines import open_database
from strongroom.demo import COLLECTIONS, create_demo_site, demo_users, plan_demo_site
from strongroom.errors import BadInput


@pytest.fixture
def config(tmp_path) -> Config:
    return Config(data_dir=tmp_path / "data")


@pytest.fixture
def database(config):
    return open_database(config)


def file_tree(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(path.relative_to(root)): (
            path.read_bytes() if path.is_file() else b"",
            path.stat().st_mtime_ns,
        )
        for path in sorted(root.rglob("*"))
    }


def records(database) -> dict[str, list[dict]]:
    return {
        name: sorted(database[name].find({}), key=lambda d: str(d["_id"])) for name in COLLECTIONS
    }


def test_the_small_demo_has_users_projects_organisers_and_editions_linked_by_project_id(
    config, database
):
    site = create_demo_site(config, database)

    users = {doc["user"]: doc["role"] for doc in database["user"].find({})}
    assert users == site.users
    assert [n for n, r in users.items() if r == "root"] == ["root"]
    assert [n for n, r in users.items() if r == "admin"] == ["admin"]
    assert {"org1", "org2", "user1", "user2"} <= {n for n, r in users.items() if r == "user"}

    projects = {str(doc["_id"]): doc for doc in database["project"].find({})}
    assert set(projects) == set(site.project_ids) and len(site.project_ids) == 3
    for n, pid in enumerate(site.project_ids):
        links = list(
            database["projectUser"].find({"projectId": ObjectId(pid), "role": "organiser"})
        )
        assert [link["user"] for link in links] == [f"org{n + 1}"] == list(site.organisers[pid])
        editions = list(database["edition"].find({"projectId": ObjectId(pid)}))
        assert sorted(str(e["_id"]) for e in editions) == sorted(site.edition_ids[pid])
        assert len(editions) == 2
        assert isinstance(editions[0]["settings"]["meta"]["language"], list)

        folder = config.working_dir / "project" / pid
        assert (folder / "about.md").is_file() and (folder / "icon.png").is_file()
        for eid in site.edition_ids[pid]:
            edition_dir = folder / "edition" / eid
            for name in ("scene.json", "model.glb", "texture.jpg"):
                assert (edition_dir / name).is_file()
            assert (
                json.loads((edition_dir / "scene.json").read_text())["asset"]["generator"]
                == "Voyager"
            )
            assert list((edition_dir / "annotations").glob("*.json"))
    assert (config.working_dir / "site.json").is_file()
    assert (config.working_dir / "texts" / "about.md").is_file()

    files = [p for p in config.working_dir.rglob("*") if p.is_file()]
    assert len(files) == site.file_count
    assert sum(p.stat().st_size for p in files) == site.total_bytes < 2_000_000


def test_demo_users_lists_each_user_with_role_and_the_projects_they_organise(config, database):
    site = create_demo_site(config, database)

    users = demo_users(database)

    assert [u["user"] for u in users][:3] == ["root", "admin", "org1"]
    by_name = {u["user"]: u for u in users}
    assert by_name["org1"]["organises"] == [site.project_ids[0]]
    assert by_name["org2"]["organises"] == [site.project_ids[1]]
    assert by_name["root"] == {"user": "root", "role": "root", "organises": []}


def test_two_sites_made_with_the_same_seed_are_identical_and_another_seed_differs(tmp_path):
    def make(name: str, seed: int):
        config = Config(data_dir=tmp_path / name)
        database = open_database(config)
        site = create_demo_site(config, database, seed=seed)
        return site, file_tree(config.working_dir), records(database)

    first, second, other = make("a", 0), make("b", 0), make("c", 1)

    assert first == second
    assert other[0].project_ids != first[0].project_ids
    assert other[1] != first[1]
    assert other[2] != first[2]


def test_binaries_are_incompressible(config, database):
    import zlib

    create_demo_site(config, database)

    model = next(config.working_dir.rglob("model.glb")).read_bytes()
    assert len(zlib.compress(model, 9)) > len(model)


def test_large_noise_has_no_repeated_chunk_and_does_not_compress():
    import random
    import zlib

    from strongroom.demo.writing import CHUNK, _noise

    block = random.Random("t").randbytes(CHUNK)
    data = b"".join(bytes(piece) for piece in _noise("key", 3 * CHUNK + 5, block))
    assert len(data) == 3 * CHUNK + 5
    assert data == b"".join(bytes(piece) for piece in _noise("key", 3 * CHUNK + 5, block))
    chunks = {data[i : i + 4096] for i in range(0, len(data) - 4096, 4096)}
    assert len(chunks) == len(range(0, len(data) - 4096, 4096))
    assert len(zlib.compress(data, 6)) > len(data)


def test_it_refuses_a_non_empty_working_dir_and_changes_nothing(config, database):
    config.working_dir.mkdir(parents=True)
    (config.working_dir / "keep.txt").write_text("mine")
    before = file_tree(config.working_dir)

    with pytest.raises(BadInput, match="not empty"):
        create_demo_site(config, database)

    assert file_tree(config.working_dir) == before
    assert all(database[name].find_one({}) is None for name in COLLECTIONS)


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_it_refuses_existing_records_and_changes_nothing(config, database, collection):
    database[collection].insert_many([{"_id": "mine", "note": "keep"}])

    with pytest.raises(BadInput, match=collection):
        create_demo_site(config, database)

    assert not config.working_dir.exists()
    assert list(database[collection].find({})) == [{"_id": "mine", "note": "keep"}]
    assert all(database[n].find_one({}) is None for n in COLLECTIONS if n != collection)


def test_an_empty_working_dir_is_accepted(config, database):
    config.working_dir.mkdir(parents=True)

    site = create_demo_site(config, database)

    assert site.file_count > 0


def test_progress_reports_files_by_bytes_and_then_records(config, database):
    calls = []

    site = create_demo_site(config, database, progress=lambda *call: calls.append(call))

    assert calls[0] == ("files", 0, site.total_bytes)
    assert ("files", site.total_bytes, site.total_bytes) in calls
    assert calls[-1] == ("records", 4, 4)


def test_the_large_plan_with_the_default_numbers_is_about_2_gb_in_about_4600_files():
    plan = plan_demo_site(projects=40, editions=5, size="large")

    assert 4_400 <= plan.site.file_count <= 4_800
    assert 1.9e9 <= plan.site.total_bytes <= 2.3e9
    binaries = [f for f in plan.files if f.noise is not None]
    assert sum(f.size for f in binaries) > 0.99 * plan.site.total_bytes
    assert all(1 << 20 <= f.size <= 12 << 20 for f in binaries)
    assert len(plan.records["edition"]) == 200


def test_the_plan_is_pure_and_the_same_for_the_same_arguments():
    assert plan_demo_site(seed=7) == plan_demo_site(seed=7)
    assert plan_demo_site(seed=7) != plan_demo_site(seed=8)


@pytest.mark.parametrize("arguments", [{"size": "huge"}, {"projects": 0}, {"editions": 0}])
def test_bad_numbers_or_sizes_are_refused(arguments):
    with pytest.raises(BadInput):
        plan_demo_site(**arguments)


def test_the_demo_job_runs_through_the_cli_on_either_engine(engine_config, tmp_path):
    """``./run demo``'s steps (``strongroom [--db mongodb://…] demo init``, a site backup, a
    project backup, both listed), then verify and a restore, each a process of its own."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "STRONGROOM_DATA_DIR": str(engine_config.data_dir)}
    env.pop("STRONGROOM_DB", None)
    database = ["--db", engine_config.db_uri] if engine_config.db_uri else []
    if engine_config.db_uri:
        env["STRONGROOM_DB"] = engine_config.db_uri

    def run(*argv: str) -> str:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL,
                              timeout=300, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    strongroom = [sys.executable, "-m", "strongroom.cli", "--data-dir", str(engine_config.data_dir), *database]
    run(*strongroom, "demo", "init")
    shown = run(sys.executable, "-m", "strongroom.cli.demo_job", "--no-serve")
    assert "The demo site is already there" in shown
    assert shown.count("demo: site backup") >= 1 and "Backups of project" in shown

    listed = json.loads(run(*strongroom, "list", "--json"))
    site_backup = listed[0]["id"] if isinstance(listed, list) else listed["backups"][0]["id"]
    before = records(open_database(engine_config))
    run(*strongroom, "verify", site_backup)
    open_database(engine_config)["edition"].delete_many({})
    run(*strongroom, "restore", site_backup, "--yes")
    assert records(open_database(engine_config)) == before
