"""Run modes are configuration: any safe name (``custom`` by default, as the original has),
the list of modes and which of them are production (no user-triggered change in the web
face) set by the environment or the CLI, each name checked by the one validator."""

import pytest
from flask import Flask

from strongroom.config import Config
from strongroom.db.engines import open_database
from strongroom.demo import create_demo_site
from strongroom.errors import BadInput, InvalidName
from strongroom.ids import validate_mode_name
from strongroom.policy import User, can
from strongroom.scopes import Scope
from strongroom.web import make_blueprint


def test_custom_is_a_run_mode_of_its_own(tmp_path, cli_process, config):
    custom = Config(data_dir=config.data_dir, mode="custom")
    create_demo_site(custom, open_database(custom), projects=1, editions=1, seed=1)

    made = cli_process("--mode", "custom", "backup")
    listed = cli_process("--mode", "custom", "list")

    assert made.returncode == 0, made.stderr
    assert listed.stdout.split()[0] == made.stdout.strip()
    assert (custom.backups_dir / "site" / made.stdout.strip()).is_dir()
    assert custom.backups_dir == config.backups_root / "custom"
    assert cli_process("list").stdout.strip() == "No backups of the whole site."  # pilot's are its own


def test_the_list_of_modes_comes_from_the_environment_or_the_cli(config, cli_process):
    staging = Config(data_dir=config.data_dir, mode="staging", modes=("pilot", "staging"))
    create_demo_site(staging, open_database(staging), projects=1, editions=1, seed=1)
    env = {"STRONGROOM_MODES": "pilot, staging"}

    assert cli_process("--mode", "staging", "backup", env=env).returncode == 0
    assert cli_process("--modes", "pilot,staging", "--mode", "staging", "list").stdout.strip()
    refused = cli_process("--mode", "custom", "list", env=env)
    assert refused.returncode == 2
    assert refused.stderr.startswith("strongroom: error: run mode must be one of pilot, staging, not 'custom'")
    assert len(refused.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("name", ["../x", ".hidden", "Prod", "", "a/b", "x" * 33, "pilot\n", "é"])
def test_a_mode_name_that_could_take_a_path_apart_is_refused_by_the_one_validator(config, cli_process, name):
    with pytest.raises(InvalidName):
        validate_mode_name(name)
    with pytest.raises(InvalidName):
        Config(data_dir=config.data_dir, mode="pilot", modes=("pilot", name))
    if name and name.strip() == name:  # the CLI's list drops blanks around the commas
        config.data_dir.mkdir(parents=True)
        result = cli_process("list", env={"STRONGROOM_MODES": f"pilot,{name}"})
        assert result.returncode == 2 and "not a run mode name" in result.stderr


def test_a_production_mode_must_be_a_run_mode(config):
    with pytest.raises(BadInput, match="production mode 'live' is not one of the run modes"):
        Config(data_dir=config.data_dir, production_modes=("prod", "live"))


@pytest.mark.parametrize("production, allowed", [(None, True), ("prod,custom", False), ("", True)])
def test_which_modes_are_production_is_configuration_and_the_web_face_follows_it(
        config, production, allowed, monkeypatch):
    if production is not None:
        monkeypatch.setenv("STRONGROOM_PRODUCTION_MODES", production)
    custom = Config.from_env(config.data_dir, "custom")
    create_demo_site(custom, open_database(custom), projects=1, editions=1, seed=1)
    app = Flask("host")
    app.secret_key = "test"
    app.register_blueprint(make_blueprint(custom, lambda: User("admin", "admin")))
    client = app.test_client()
    token = client.get("/api/v1/session").get_json()["csrf_token"]

    started = client.post("/api/v1/site/backups", json={}, headers={"X-CSRF-Token": token})
    page = client.get("/backups/site").get_data(as_text=True)

    assert custom.production is not allowed
    assert (started.status_code == 202) is allowed, started.get_json()
    assert ("In custom the system makes the backups" in page) is not allowed
    assert client.get("/api/v1/site/backups").status_code == 200  # seeing them stays allowed
    assert can(User("admin", "admin"), "restore", Scope.site(), "custom", custom.production_modes) is allowed


def test_prod_keeps_its_rule_by_default():
    assert not can(User("root", "root"), "backup", Scope.site(), "prod")
    assert can(User("root", "root"), "view", Scope.site(), "prod")
    assert can(User("root", "root"), "backup", Scope.site(), "custom")
