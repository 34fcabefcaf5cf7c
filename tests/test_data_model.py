"""The data model: which records make a project, and Pure3D's preset (``--model pure3d``).

Pure3D couples users to editions in ``editionUser`` (``editionId`` is the edition's id).
With the ``pure3d`` model those couplings are the project's, through its editions: a
backup holds the couplings of exactly its editions, and a restore, its preview, the diff
against live and a project restored out of a site backup replace them by one rule (what
the live editions' ids and the backup's select), on both engines. With the original
model they are left alone, as user data is.
"""

import dataclasses
import io
import json

import pytest
from bson import ObjectId

from conftest import records_fingerprint, tree_fingerprint
from faults import raised_with
from strongroom.config import MODELS, Config, DataModel, Link, load_model
from strongroom.db import docfilter
from strongroom.db.engines import open_database
from strongroom.demo import create_demo_site
from strongroom.errors import BadInput, RestoreFailed
from strongroom.scopes import Scope, scope_dir
from strongroom.service import Strongroom

EDITIONS = 5  # two couplings each: ten per project


@pytest.fixture
def pure3d(engine_config):
    """A Pure3D-shaped site on either engine: 3 projects of 5 editions, 10 couplings each."""
    config = dataclasses.replace(engine_config, model="pure3d")
    database = open_database(config)
    site = create_demo_site(config, database, projects=3, editions=EDITIONS, seed=9)
    return config, database, site, Strongroom(config, database=database)


def couplings(database, project_id: str) -> list[dict]:
    """The project's ``editionUser`` records, sorted by ``_id``."""
    editions = [e["_id"] for e in database.edition.find({"projectId": ObjectId(project_id)})]
    return sorted(database.editionUser.find({"editionId": {"$in": editions}}), key=lambda d: str(d["_id"]))


def all_couplings(database) -> list[dict]:
    return sorted(database.editionUser.find({}), key=lambda d: str(d["_id"]))


def delete_edition(database, config: Config, project_id: str, edition_id: ObjectId) -> None:
    """As Pure3D's ``deleteItem``: its couplings, its folder, then its record."""
    database.editionUser.delete_many({"editionId": edition_id})
    folder = scope_dir(config, Scope.project(project_id)) / "edition" / str(edition_id)
    for path in sorted(folder.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    folder.rmdir()
    database.edition.delete_one({"_id": edition_id})


def add_edition(database, project_id: str) -> ObjectId:
    """As Pure3D's ``createEdition``: the record, then its editor's coupling (and a reader's)."""
    edition = database.edition.insert_one({"projectId": ObjectId(project_id), "title": "added later"}).inserted_id
    database.editionUser.insert_many([{"editionId": edition, "user": "org1", "role": "editor"},
                                      {"editionId": edition, "user": "user1", "role": "reader"}])
    return edition


def remove_two(database, project_id: str) -> list[dict]:
    """Remove two of the project's couplings (of editions still there); return them."""
    gone = couplings(database, project_id)[:2]
    database.editionUser.delete_many({"_id": {"$in": [c["_id"] for c in gone]}})
    return gone


# -- backup ------------------------------------------------------------------------------


def test_a_project_backup_holds_the_couplings_of_exactly_its_editions(pure3d):
    _config, database, site, service = pure3d
    project = site.project_ids[0]

    made = service.make_backup(project)

    path, manifest = service.store.open(Scope.project(project), made["id"])
    assert list(manifest["collections"]) == ["project", "edition", "editionUser"]
    assert manifest["collections"]["editionUser"]["count"] == 2 * EDITIONS == len(couplings(database, project))
    dumped = docfilter.dump_ids(path / "db" / "bson")("editionUser", {})
    assert sorted(map(str, dumped)) == sorted(str(c["_id"]) for c in couplings(database, project))


def test_a_coupling_that_stores_the_edition_id_in_hex_is_the_projects_too(pure3d):
    _config, database, site, service = pure3d
    project = site.project_ids[0]
    edition = database.edition.find_one({"projectId": ObjectId(project)})["_id"]
    database.editionUser.insert_one({"editionId": str(edition), "user": "user2", "role": "reader"})

    made = service.make_backup(project)

    assert made["records"]["editionUser"] == 2 * EDITIONS + 1


# -- restore -----------------------------------------------------------------------------


def test_couplings_removed_since_the_backup_come_back_and_another_projects_stay_as_they_are(pure3d):
    _config, database, site, service = pure3d
    project, other = site.project_ids[0], site.project_ids[1]
    made = service.make_backup(project)
    at_backup = couplings(database, project)
    remove_two(database, project)
    remove_two(database, other)
    others = couplings(database, other)
    assert (len(at_backup), len(couplings(database, project))) == (10, 8)

    result = service.restore_backup(made["id"], project)

    assert couplings(database, project) == at_backup and len(at_backup) == 10
    assert couplings(database, other) == others and len(others) == 8
    assert result["records"]["editionUser"] == 10


def test_an_edition_deleted_since_the_backup_comes_back_with_its_couplings(pure3d):
    config, database, site, service = pure3d
    project = site.project_ids[0]
    made = service.make_backup(project)
    at_backup = records_fingerprint(database, {"project": {}, "edition": {}, "editionUser": {}})
    edition = ObjectId(site.edition_ids[project][1])
    delete_edition(database, config, project, edition)

    service.restore_backup(made["id"], project)

    assert database.editionUser.count_documents({"editionId": edition}) == 2
    assert database.edition.find_one({"_id": edition}) is not None
    assert records_fingerprint(database, {"project": {}, "edition": {}, "editionUser": {}}) == at_backup


def test_an_edition_added_since_the_backup_goes_with_its_couplings_which_the_pre_restore_backup_keeps(pure3d):
    _config, database, site, service = pure3d
    project = site.project_ids[0]
    made = service.make_backup(project)
    at_backup = couplings(database, project)
    added = add_edition(database, project)
    before_restore = couplings(database, project)

    result = service.restore_backup(made["id"], project)

    assert database.editionUser.count_documents({"editionId": added}) == 0
    assert couplings(database, project) == at_backup
    assert service.show_backup(result["pre_restore"], project)["records"]["editionUser"] == 2 * EDITIONS + 2
    service.restore_backup(result["pre_restore"], project)
    assert couplings(database, project) == before_restore


def test_couplings_an_edition_left_behind_are_replaced_and_kept_in_the_pre_restore_backup(pure3d):
    """An edition removed without its couplings (by hand, say): the restore replaces what
    the backup's editions select, live orphans included, so the backup made before it
    must hold them, and does."""
    _config, database, site, service = pure3d
    project = site.project_ids[0]
    made = service.make_backup(project)
    edition = ObjectId(site.edition_ids[project][2])
    database.edition.delete_one({"_id": edition})
    database.editionUser.update_many({"editionId": edition}, {"$set": {"role": "left behind"}})
    left_behind = sorted(database.editionUser.find({"editionId": edition}), key=lambda d: str(d["_id"]))

    result = service.restore_backup(made["id"], project)

    assert {c["role"] for c in database.editionUser.find({"editionId": edition})} == {"editor", "reader"}
    assert service.show_backup(result["pre_restore"], project)["records"]["editionUser"] == 2 * EDITIONS
    service.restore_backup(result["pre_restore"], project)
    assert sorted(database.editionUser.find({"editionId": edition}), key=lambda d: str(d["_id"])) == left_behind


def test_a_restore_onto_the_backups_own_couplings_changes_nothing_and_one_coupling_less_is_a_difference(pure3d):
    _config, database, site, service = pure3d
    project = site.project_ids[0]
    made = service.make_backup(project)

    assert service.restore_backup(made["id"], project)["unchanged"] is True

    remove_two(database, project)
    assert service.restore_backup(made["id"], project)["unchanged"] is False
    assert len(couplings(database, project)) == 10


def test_a_restore_that_fails_after_the_editions_are_replaced_puts_every_coupling_back(pure3d):
    _config, database, site, service = pure3d
    project = site.project_ids[0]
    made = service.make_backup(project)
    remove_two(database, project)
    add_edition(database, project)
    before = all_couplings(database), records_fingerprint(database, {"edition": {}})
    failed = []

    def hook(kind, detail):
        if kind == "insert" and detail.startswith("editionUser") and not failed:
            failed.append(detail)
            raise OSError("the disk went away")

    error = raised_with(hook, lambda: service.restore_backup(made["id"], project))

    assert isinstance(error, RestoreFailed) and failed
    assert (all_couplings(database), records_fingerprint(database, {"edition": {}})) == before


def test_an_edition_moved_to_another_project_since_the_backup_fails_the_restore_and_changes_nothing(pure3d):
    """As with the original model, the backup's edition cannot be inserted beside the moved
    one; the rollback puts the couplings back too, the other project's included, although
    the pre-restore backup holds couplings of an edition it does not (the moved one's)."""
    _config, database, site, service = pure3d
    project, other = site.project_ids[0], site.project_ids[1]
    made = service.make_backup(project)
    moved = ObjectId(site.edition_ids[project][0])
    database.edition.update_one({"_id": moved}, {"$set": {"projectId": ObjectId(other)}})
    before = all_couplings(database), records_fingerprint(database, {"edition": {}})

    with pytest.raises(RestoreFailed, match="put back as it was"):
        service.restore_backup(made["id"], project)

    assert (all_couplings(database), records_fingerprint(database, {"edition": {}})) == before
    assert len(couplings(database, other)) == 2 * EDITIONS + 2


# -- preview and diff --------------------------------------------------------------------


def test_the_preview_counts_the_couplings_a_restore_would_change_and_changes_nothing(pure3d):
    config, database, site, service = pure3d
    project = site.project_ids[0]
    made = service.make_backup(project)
    remove_two(database, project)
    add_edition(database, project)
    database.editionUser.update_one({"_id": couplings(database, project)[0]["_id"]}, {"$set": {"role": "editor"}})
    before = all_couplings(database), tree_fingerprint(config.working_dir)

    preview = service.preview_restore(made["id"], project)

    assert preview["records"]["editionUser"] == {"added": 2, "removed": 2, "changed": 1, "unchanged": 7}
    assert (all_couplings(database), tree_fingerprint(config.working_dir)) == before


def test_the_diff_against_live_sees_the_couplings_removed_added_and_changed(pure3d):
    config, database, site, service = pure3d
    project = site.project_ids[0]
    made = service.make_backup(project)
    delete_edition(database, config, project, ObjectId(site.edition_ids[project][4]))
    remove_two(database, project)
    add_edition(database, project)

    diff = service.diff_backups(made["id"], "live", project)

    assert diff["records"]["editionUser"] == {"added": 2, "removed": 4, "changed": 0, "unchanged": 6}
    assert diff["records"]["edition"]["removed"] == 1 and diff["records"]["edition"]["added"] == 1


# -- one project out of a site backup ------------------------------------------------------


def test_one_project_out_of_a_site_backup_brings_its_couplings_and_no_others(pure3d):
    config, database, site, service = pure3d
    project, other = site.project_ids[0], site.project_ids[1]
    made = service.make_backup()
    at_backup = couplings(database, project)
    delete_edition(database, config, project, ObjectId(site.edition_ids[project][0]))
    remove_two(database, project)
    added = add_edition(database, project)
    remove_two(database, other)
    others = couplings(database, other)

    preview = service.preview_parts(made["id"], project_id=project)
    result = service.restore_parts(made["id"], project_id=project)

    assert preview["records"]["editionUser"] == {"added": 4, "removed": 2, "changed": 0, "unchanged": 6}
    assert couplings(database, project) == at_backup and len(at_backup) == 10
    assert database.editionUser.count_documents({"editionId": added}) == 0
    assert couplings(database, other) == others and len(others) == 8
    assert result["records"]["editionUser"] == 10


# -- the original model ---------------------------------------------------------------------


def test_with_the_original_model_a_project_restore_leaves_the_couplings_alone(engine_config):
    database = open_database(engine_config)
    site = create_demo_site(engine_config, database, projects=2, editions=2, seed=4)
    service = Strongroom(engine_config, database=database)
    project = site.project_ids[0]
    edition = ObjectId(site.edition_ids[project][0])
    database.editionUser.insert_one({"editionId": edition, "user": "org1", "role": "editor"})
    made = service.make_backup(project)
    database.editionUser.insert_one({"editionId": edition, "user": "user1", "role": "reader"})

    service.restore_backup(made["id"], project)

    assert "editionUser" not in made["records"]
    assert database.editionUser.count_documents({"editionId": edition}) == 2


# -- choosing the model ------------------------------------------------------------------------


def test_the_presets_are_the_original_model_by_default_and_pure3ds_with_its_couplings():
    assert Config(data_dir="d").model == MODELS["original"] == DataModel()
    assert MODELS["original"].collections == ("project", "edition")
    assert MODELS["pure3d"].collections == ("project", "edition", "editionUser")
    assert Link("editionUser", "editionId", "edition") in MODELS["pure3d"].linked
    assert "projectUser" in MODELS["pure3d"].user_collections


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_a_model_file_names_the_collections_and_their_links(tmp_path, suffix):
    path = tmp_path / f"model{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps({"linked": [{"collection": "edition", "field": "projectId"},
                                               {"collection": "note", "field": "noteOf", "via": "edition"}]}))
    else:
        path.write_text('linked = [{collection = "edition", field = "projectId"},\n'
                        '          {collection = "note", field = "noteOf", via = "edition"}]\n')

    model = load_model(path)

    assert model.collections == ("project", "edition", "note")
    assert model.linked[1] == Link("note", "noteOf", "edition") and model.name == str(path)


@pytest.mark.parametrize("content, words", [
    ({"linked": [{"collection": "editionUser", "field": "editionId", "via": "edition"}]}, "not the project"),
    ({"linked": [{"collection": "projectUser", "field": "projectId"}]}, "user data"),
    ({"linked": [{"collection": "edition"}]}, "collection, field"),
    ({"linked": [["edition", "projectId"], ["edition", "other"]]}, "twice"),
    ({"collections": ["edition"]}, "a data model holds"),
])
def test_a_model_that_cannot_work_is_refused_in_one_line(tmp_path, content, words):
    path = tmp_path / "model.json"
    path.write_text(json.dumps(content))

    with pytest.raises(BadInput, match=words):
        load_model(path)


def test_an_unknown_preset_is_refused_naming_the_presets():
    with pytest.raises(BadInput, match="original, pure3d"):
        load_model("pure4d")


def test_the_cli_takes_the_model_by_option_or_environment(config, monkeypatch):
    from click.testing import CliRunner

    from strongroom.cli import main

    site = create_demo_site(dataclasses.replace(config, model="pure3d"), open_database(config), editions=2, seed=2)
    project = site.project_ids[0]
    runner = CliRunner()
    base = ["--data-dir", str(config.data_dir)]

    by_option = runner.invoke(main, [*base, "--model", "pure3d", "backup", "--project", project, "--json"])
    monkeypatch.setenv("STRONGROOM_MODEL", "pure3d")
    by_environment = runner.invoke(main, [*base, "backup", "--project", project, "--json"])
    monkeypatch.delenv("STRONGROOM_MODEL")
    original = runner.invoke(main, [*base, "backup", "--project", project, "--json"])

    assert json.loads(by_option.output)["records"]["editionUser"] == 4
    assert json.loads(by_environment.output)["records"]["editionUser"] == 4
    assert "editionUser" not in json.loads(original.output)["records"]


# -- archives and imports ---------------------------------------------------------------------


def test_a_project_archive_with_its_couplings_lands_on_another_site(tmp_path):
    here, there = (Config(data_dir=tmp_path / name, model="pure3d") for name in ("here", "there"))
    database = open_database(here)
    project = create_demo_site(here, database, projects=2, editions=EDITIONS, seed=5).project_ids[0]
    service, elsewhere = Strongroom(here, database=database), Strongroom(there, database=open_database(there))
    archive = io.BytesIO()
    service.export_backup(service.make_backup(project)["id"], archive, project)

    archive.seek(0)
    landed = elsewhere.import_archive(archive, project)

    assert landed["records"]["editionUser"] == 10
    elsewhere.restore_backup(landed["id"], project)
    assert couplings(elsewhere.database, project) == couplings(database, project)


def test_a_project_archive_landed_under_another_id_keeps_its_couplings_to_its_editions(tmp_path):
    here, there = (Config(data_dir=tmp_path / name, model="pure3d") for name in ("here", "there"))
    database = open_database(here)
    project = create_demo_site(here, database, projects=2, editions=EDITIONS, seed=5).project_ids[0]
    service, elsewhere = Strongroom(here, database=database), Strongroom(there, database=open_database(there))
    archive = io.BytesIO()
    service.export_backup(service.make_backup(project)["id"], archive, project)
    new_id = "0123456789abcdef01234567"

    archive.seek(0)
    landed = elsewhere.import_archive(archive, as_project=new_id)
    elsewhere.restore_backup(landed["id"], new_id)

    assert elsewhere.database.edition.count_documents({"projectId": ObjectId(new_id)}) == EDITIONS
    assert couplings(elsewhere.database, new_id) == couplings(database, project)


def test_an_original_project_backup_imported_with_the_pure3d_model_leaves_the_couplings_alone(tmp_path):
    """The original module never backs couplings up: the import leaves editionUser out,
    saying so, rather than writing it empty (which a restore would take as none)."""
    from test_importing import write_original_backup

    config = Config(data_dir=tmp_path / "data", model="pure3d")
    database = open_database(config)
    site = create_demo_site(config, database, projects=2, editions=EDITIONS, seed=6)
    service = Strongroom(config, database=database)
    project = site.project_ids[0]
    live = scope_dir(config, Scope.project(project))
    original = {"project": {"_id": ObjectId(project)}, "edition": {"projectId": ObjectId(project)}}
    source = write_original_backup(tmp_path / f"orig/backups/pilot/project/{project}/2024-03-01T10-00-00",
                                   database, original, live, per_record=True)
    remove_two(database, project)
    now = couplings(database, project)

    made = service.import_backup(source, project)
    service.restore_backup(made["id"], project)

    assert "editionUser" not in made["records"]
    assert any("left out editionUser" in warning for warning in service.show_backup(made["id"], project)["warnings"])
    assert couplings(database, project) == now and len(now) == 8

