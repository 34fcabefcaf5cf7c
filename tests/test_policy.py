"""Invariant 7, cell by cell: every user kind × action × scope × run mode."""

import pytest

from strongroom.policy import ACTIONS, User, can
from strongroom.scopes import Scope

A, B = "a" * 24, "b" * 24
USERS = {
    "anonymous": None,
    "plain user": User("user1"),
    "organiser of A": User("org1", organises=frozenset({A})),
    "organiser of B": User("org2", organises=frozenset({B})),
    "admin": User("admin", "admin"),
    "root": User("root", "root"),
}
SCOPES = {"site": Scope.site(), "project A": Scope.project(A)}
ALLOWED = {  # who may act on which scope, in pilot and test
    "site": {"admin", "root"},
    "project A": {"admin", "root", "organiser of A"},
}


def expected(user: str, action: str, scope: str, mode: str) -> bool:
    if user not in ALLOWED[scope]:
        return False
    return action == "view" or mode != "prod"


@pytest.mark.parametrize("mode", ["pilot", "test", "prod"])
@pytest.mark.parametrize("scope", list(SCOPES))
@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("user", list(USERS))
def test_can_follows_invariant_7(user, action, scope, mode):
    assert can(USERS[user], action, SCOPES[scope], mode) is expected(user, action, scope, mode)


def test_an_unknown_action_is_a_programming_error():
    with pytest.raises(ValueError):
        can(USERS["root"], "format-disk", Scope.site(), "pilot")


def test_organising_one_project_says_nothing_about_another():
    assert not can(USERS["organiser of B"], "restore", Scope.project(A), "pilot")
    assert can(USERS["organiser of B"], "restore", Scope.project(B), "pilot")
