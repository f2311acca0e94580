"""Role checks and the swarm-update split, without a gateway."""

from __future__ import annotations

import pytest

from moorage.admission import identify, rbac
from moorage.admission.errors import Hidden, PolicyRefusal
from moorage.admission.records import Outcome, make_record
from moorage.engine_api.endpoints import Operation
from moorage.identity import Principal, UserDirectory

DEV = Principal("alice", ("payments",), ("developer",), "peercred", "unix:uid=1000")
OFFICER = Principal("sam", (), ("security-officer",), "peercred", "unix:uid=1001")
ADMIN = Principal("root", (), ("admin",), "peercred", "unix:uid=0")


def test_an_unknown_endpoint_is_refused_for_every_role() -> None:
    with pytest.raises(PolicyRefusal, match="not an Engine API endpoint"):
        rbac.authorise(ADMIN, Operation("unknown", "unknown", route="/new"), "GET")


def test_a_lookup_the_role_may_not_make_looks_like_a_missing_object() -> None:
    op = Operation("node.inspect", "node.read", "node", "n1")
    if DEV.may(op.action_class):
        pytest.skip("developers may read nodes in this role table")
    with pytest.raises(Hidden) as err:
        rbac.authorise(DEV, op, "GET")
    assert err.value.status == 404 and err.value.decision == "deny"


def test_a_change_the_role_may_not_make_says_which_role_would() -> None:
    with pytest.raises(PolicyRefusal, match="Ask an administrator"):
        rbac.authorise(DEV, Operation("swarm.init", "swarm.write"), "POST")


def test_swarm_updates_are_split_between_officers_and_admins() -> None:
    rbac.judge_swarm_update(OFFICER, {"ca", "tokens"})
    with pytest.raises(PolicyRefusal, match="administrator's"):
        rbac.judge_swarm_update(OFFICER, {"ca", "settings"})
    with pytest.raises(PolicyRefusal, match="security officers"):
        rbac.judge_swarm_update(DEV, {"autolock"})
    rbac.judge_swarm_update(ADMIN, {"ca", "settings"})


def test_a_unix_peer_is_a_user_an_admin_uid_or_refused() -> None:
    users = UserDirectory()
    assert isinstance(identify.by_uid(users, (0,), 0, 1), Principal)
    why = identify.by_uid(users, (0,), 4242, 1)
    assert isinstance(why, str) and "uid 4242 is not a Moorage user" in why


def test_a_tls_client_without_a_certificate_is_told_to_log_in() -> None:
    why = identify.by_certificate(UserDirectory(), None, 0.0, {})
    assert why == "no client certificate: run moorage login (or use one from moorage cert issue)"


def test_a_record_says_who_asked_and_what_happened() -> None:
    outcome = Outcome(decision="deny", reason="moorage: no", status=403, request_id="r1")
    op = Operation("container.create", "container.write")
    record = make_record(5.0, "POST", "/containers/create", op, DEV, DEV, outcome, 0.0, None)
    assert (record.user, record.decision, record.status, record.time) == ("alice", "deny", 403, 5.0)
    anonymous = make_record(5.0, "GET", "/x", op, None, "uid 7 is not a Moorage user", outcome, 0.0, None)
    assert anonymous.user == "?" and anonymous.source == "uid 7 is not a Moorage user"


def test_a_swarm_update_is_read_against_the_current_settings_without_an_engine() -> None:
    from moorage.admission.errors import Unavailable
    from moorage.admission.ownership import ReadSwarm
    from moorage.admission.rbac import read_swarm_update

    current = {"Spec": {"Name": "default", "CAConfig": {"NodeCertExpiry": 7776000000000000},
                        "EncryptionConfig": {"AutoLockManagers": False}}}  # fmt: skip
    body = {"Name": "default", "CAConfig": {"NodeCertExpiry": 7776000000000000},
            "EncryptionConfig": {"AutoLockManagers": True}}  # fmt: skip
    check = read_swarm_update(body, {})
    assert next(check) == ReadSwarm()
    with pytest.raises(StopIteration) as done:
        check.send((200, current))
    update = done.value.value
    assert "autolock" in update.aspects and not update.rotates_ca
    check = read_swarm_update(body, {})
    next(check)
    with pytest.raises(Unavailable):
        check.send((500, {"message": "engine trouble"}))
