"""Roles are classes of endpoints: what each grants, and who sees every team."""

from __future__ import annotations

import pytest

from moorage.identity.principal import GLOBAL_ROLES, ROLES, Principal


def who(*roles: str) -> Principal:
    return Principal("u", ("payments",), roles, "peercred")


@pytest.mark.parametrize(
    ("role", "allowed", "refused"),
    [
        ("viewer", ["container.read", "image.read", "system.read"],
         ["container.write", "exec", "build", "exception.request", "secret.read"]),
        ("developer", ["container.write", "exec", "build", "exception.request"],
         ["secret.read", "node.write", "prune", "exception.approve", "attestation.approve"]),
        ("operator", ["secret.write", "prune", "node.enrol", "attestation.request"],
         ["exception.approve", "attestation.approve", "swarm.security", "node.write"]),
        ("security-officer", ["exception.approve", "attestation.approve", "swarm.security", "cert.revoke"],
         ["container.write", "exec", "build", "secret.write", "prune"]),
        ("admin", ["container.write", "exception.approve", "anything.at.all"], []),
    ],
)  # fmt: skip
def test_each_role_grants_its_classes_and_no_others(
    role: str, allowed: list[str], refused: list[str]
) -> None:
    p = who(role)
    assert all(p.may(c) for c in allowed), [c for c in allowed if not p.may(c)]
    assert not any(p.may(c) for c in refused), [c for c in refused if p.may(c)]


def test_roles_add_up_and_an_unknown_role_grants_nothing() -> None:
    assert who("developer", "security-officer").may("exception.approve")
    assert who("developer", "security-officer").may("build")
    assert not who("superuser").may("system.read")
    assert not who().may("system.read")


def test_only_global_roles_see_every_team() -> None:
    assert {"security-officer", "admin"} == GLOBAL_ROLES
    for role in ROLES:
        assert who(role).sees_all == (role in GLOBAL_ROLES)
    assert who("developer").team == "payments"


def test_every_role_can_read_its_own_session() -> None:
    assert all(who(role).may("session") for role in ROLES)
