from datetime import UTC, datetime

import pytest

from strongroom.errors import InvalidName
from strongroom.ids import (
    backup_id_sort_key,
    new_backup_id,
    validate_backup_id,
    validate_project_id,
    validate_relative_path,
)

BAD_NAMES = ["", "../x", "..%2f", "%2e%2e%2f", "..%252f", "/etc", "x\n", "a\0b", "x" * 300, "..",
             "2026-11-26T04-27-43/../x", "2026-11-26T04-27-43\n", "2026-13-26T04-27-43", "2026-11-26T04-27-43.0",
             "2026-11-26 04:27:43", None, 12, {"$ne": None},
             # no such time (a leap day of a common year, second 60, hour 24), other scripts' digits
             "2026-02-29T04-27-43", "2026-11-26T04-27-60", "2026-11-26T24-27-43", "0000-11-26T04-27-43",
             "\u0662\u0660\u0662\u0666-11-26T04-27-43", "2026-11-26T04-27-43.\u0661"]


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_anything_but_a_backup_id_is_refused(bad):
    with pytest.raises(InvalidName):
        validate_backup_id(bad)


@pytest.mark.parametrize("good", ["2026-11-26T04-27-43", "2026-11-26T04-27-43.1", "2026-11-26T04-27-43.12",
                                  "2024-02-29T23-59-59"])
def test_backup_ids_of_the_documented_form_are_accepted(good):
    assert validate_backup_id(good) == good


@pytest.mark.parametrize("bad", BAD_NAMES + ["6548A1B2C3D4E5F601234567", "6548a1b2c3d4e5f60123456", "g" * 24])
def test_anything_but_an_object_id_in_hex_is_refused_as_a_project_id(bad):
    with pytest.raises(InvalidName):
        validate_project_id(bad)


def test_new_ids_are_utc_seconds_with_a_suffix_that_keeps_them_unique():
    now = datetime(2026, 11, 26, 4, 27, 43, 900000, tzinfo=UTC)
    assert new_backup_id([], now) == "2026-11-26T04-27-43"
    assert new_backup_id(["2026-11-26T04-27-43"], now) == "2026-11-26T04-27-43.1"
    assert new_backup_id(["2026-11-26T04-27-43", "2026-11-26T04-27-43.1"], now) == "2026-11-26T04-27-43.2"


def test_ids_sort_by_time_then_suffix():
    ids = ["2026-11-26T04-27-43.10", "2026-11-26T04-27-43", "2026-11-26T04-27-43.2", "2026-01-01T00-00-00"]
    assert sorted(ids, key=backup_id_sort_key) == [
        "2026-01-01T00-00-00", "2026-11-26T04-27-43", "2026-11-26T04-27-43.2", "2026-11-26T04-27-43.10"]


@pytest.mark.parametrize("bad", ["", "/etc/passwd", "../x", "a/../../x", "a//b", "./a", "a/.", "a/", "..", "a\0b",
                                 "a/\ud800", None, 3])
def test_paths_from_a_manifest_or_archive_must_stay_inside_the_scope(bad):
    with pytest.raises(InvalidName):
        validate_relative_path(bad)


def test_ordinary_relative_paths_are_accepted():
    assert str(validate_relative_path("project/abc/edition/x/scene.json")) == "project/abc/edition/x/scene.json"


@pytest.mark.parametrize("name", [
    "back\\slash.txt", "new\nline", "tab\there", "-rf", "--help", "...", "..a", ".hidden", " ", "a\x7f",
    "not-utf8-\udcff\udcfe", "x" * 255, "/".join(["d" * 200] * 6), "/".join("d" * 400), "\u00e9t\u00e9 \u2603",
])
def test_any_name_a_file_system_allows_is_a_valid_relative_path(name):
    assert str(validate_relative_path(name)) == name


def test_a_path_is_refused_exactly_when_one_of_its_parts_is_empty_dot_or_dot_dot():
    # the check finds the parts by substring; every path of up to five characters over
    # this alphabet gets the verdict that splitting it into its parts gives
    import itertools

    for length in range(1, 6):
        for letters in itertools.product("a./", repeat=length):
            path = "".join(letters)
            parts = path.split("/")
            bad = path.startswith("/") or any(part in ("", ".", "..") for part in parts)
            try:
                validate_relative_path(path)
                refused = False
            except InvalidName:
                refused = True
            assert refused == bad, path
