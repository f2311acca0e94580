"""Exceptions: requested by a team, approved by a second person who is a security
officer, expiring on the store's clock (injected here, never slept on)."""

from __future__ import annotations

from pathlib import Path

import pytest

from moorage.admission.exceptions import ExceptionsError, ExceptionStore


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def ask(store: ExceptionStore, who: str = "alice", **extra: str) -> str:
    body = {"rule": "runtime.privileged", "team": "payments", "reason": "a driver needs it", "expires": "2d"}
    body.update(extra)
    return str(store.request(who, ("payments",), False, body)["id"])


@pytest.fixture
def store(tmp_path: Path) -> ExceptionStore:
    return ExceptionStore.in_folder(tmp_path, clock=Clock())


def test_the_requester_can_never_approve_their_own_exception(tmp_path: Path) -> None:
    store = ExceptionStore.in_folder(tmp_path, clock=Clock())
    item = ask(store, who="sid")  # a developer who is also a security officer
    with pytest.raises(ExceptionsError) as refused:
        store.approve(item, "sid", ("security-officer", "developer"))
    assert refused.value.status == 403 and "another security officer" in str(refused.value)
    assert store.active() == ()
    approved = store.approve(item, "sofia", ("security-officer",))
    assert approved["status"] == "approved" and approved["approver"] == "sofia"


@pytest.mark.parametrize("roles", [("developer",), ("operator",), ("viewer",), ("admin",)])
def test_only_a_security_officer_approves(store: ExceptionStore, roles: tuple[str, ...]) -> None:
    item = ask(store)
    with pytest.raises(ExceptionsError) as refused:
        store.approve(item, "olga", roles)
    assert refused.value.status == 403
    assert store.active() == ()


def test_a_grant_expires_on_the_clock_and_cannot_be_approved_twice(tmp_path: Path) -> None:
    clock = Clock()
    store = ExceptionStore.in_folder(tmp_path, clock=clock)
    item = ask(store)
    store.approve(item, "sofia", ("security-officer",))
    (grant,) = store.active()
    assert grant.expires == clock.now + 2 * 86400  # from the approval, not the request
    with pytest.raises(ExceptionsError) as again:
        store.approve(item, "sid", ("security-officer",))
    assert again.value.status == 409
    clock.now += 2 * 86400 + 1
    assert store.get(item)["status"] == "expired"


def test_a_team_member_asks_only_for_their_own_team(store: ExceptionStore) -> None:
    with pytest.raises(ExceptionsError) as refused:
        store.request("alice", ("payments",), False,
                      {"rule": "runtime.privileged", "team": "search", "reason": "not mine at all"})  # fmt: skip
    assert refused.value.status == 403
    with pytest.raises(ExceptionsError):
        store.request("alice", ("payments",), False, {"rule": "runtime.privileged", "team": "payments"})


def test_a_revoked_grant_stops_counting(store: ExceptionStore) -> None:
    item = ask(store)
    store.approve(item, "sofia", ("security-officer",))
    with pytest.raises(ExceptionsError):
        store.revoke(item, "alice", ("developer",))
    store.revoke(item, "sofia", ("security-officer",))
    assert store.active() == () and store.get(item)["status"] == "revoked"
