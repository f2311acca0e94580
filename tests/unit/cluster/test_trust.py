"""Enrolment, the four-eyes attestation flow and when an attestation counts."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from moorage.cluster.attestation import trust_root_digest
from moorage.cluster.trust import ClusterError, NodeView, SwarmView, Validity
from tests.unit.cluster.fakes import OTHER_PEM, PEM, T0, World, attest, node_doc, signed, world

R = TypeVar("R")
ROOT = trust_root_digest(PEM)


def run(coro: Coroutine[Any, Any, R]) -> R:
    return asyncio.run(coro)


def setup(*node_ids: str, accept_root: bool = True) -> World:
    w = world()
    for n in node_ids or ("n1",):
        w.engine.add_node(node_doc(n))
    if accept_root:
        w.store.accept_root(ROOT, "swarm1", w.clock(), "first seen")
    return w


def views(w: World, node_id: str) -> tuple[NodeView, SwarmView]:
    async def go() -> tuple[NodeView, SwarmView]:
        return await w.trust.node(w.engine, node_id), await w.trust.swarm(w.engine)

    return run(go())


def validity(w: World, node_id: str = "n1") -> Validity:
    node, swarm = views(w, node_id)
    return w.trust.validity(node, swarm)


def enrolled_and_attested(expires: str = "90d") -> tuple[World, str]:
    w = setup()

    async def go() -> str:
        await w.trust.enrol(w.engine, "n1", "ops")
        return await attest(w, "n1", expires=expires)

    return w, run(go())


def refusal(w: World, coro: Coroutine[Any, Any, Any]) -> ClusterError:
    with pytest.raises(ClusterError) as exc:
        run(coro)
    return exc.value


# ----------------------------------------------------------------- enrolment
def test_enrol_records_the_node_and_swarm_and_wakes_the_reconciler() -> None:
    w = setup()
    woken: list[bool] = []
    w.trust.wake = lambda: woken.append(True)
    first = run(w.trust.enrol(w.engine, "n1", "ops"))
    assert first == {"node": "n1", "hostname": "host-n1", "swarm": "swarm1", "enrolled": True, "new": True}
    assert run(w.trust.enrol(w.engine, "n1", "ops"))["new"] is False
    assert w.store.enrolled() == {"n1": "swarm1"} and woken == [True, True]


def test_enrolling_an_unknown_node_is_404() -> None:
    w = setup()
    assert refusal(w, w.trust.enrol(w.engine, "ghost", "ops")).status == 404


def test_views_read_the_engine_documents() -> None:
    w = setup()
    node, swarm = views(w, "n1")
    assert (node.id, node.hostname, node.role, node.availability, node.state) == (
        "n1",
        "host-n1",
        "worker",
        "active",
        "ready",
    )
    assert node.trust_root == ROOT and node.version == 10 and node.labels == {}
    assert (swarm.id, swarm.trust_root, swarm.version) == ("swarm1", ROOT, 1)
    bad = NodeView.from_engine({"ID": "x", "Description": {"TLSInfo": {"TrustRoot": "garbage"}}})
    assert bad.trust_root == "" and bad.role == ""


# ---------------------------------------------------------- the happy path
def test_request_statement_sign_approve_gives_a_valid_attestation() -> None:
    w = setup(accept_root=False)
    run(w.trust.enrol(w.engine, "n1", "ops"))
    req = run(
        w.trust.request(
            w.engine, {"node": "n1", "classes": "pci", "evidence": "QSA-1", "expires": "30d"}, "olga"
        )
    )
    assert req["status"] == "pending" and req["classes"] == ["pci"] and req["duration"] == 30 * 86400
    assert req["requester"] == "olga" and req["id"].startswith("att-")
    stmt = run(w.trust.statement(w.engine, req["id"]))
    assert stmt["claim"]["node"] == {"id": "n1", "swarm": "swarm1", "trustRoot": ROOT}
    assert stmt["claim"]["issuedAt"] == T0 and stmt["claim"]["expiresAt"] == T0 + 30 * 86400
    assert json.loads(base64.b64decode(stmt["payload"]))["predicate"] == stmt["claim"]
    w.clock.advance(60)
    out = run(w.trust.approve(w.engine, req["id"], signed(stmt, w.officers.private["sofia"]), "sofia"))
    assert out["status"] == "approved" and out["approver"] == "sofia" and out["classes"] == ["pci"]
    stored = w.store.request(req["id"])
    assert stored is not None and stored.status == "approved" and stored.signer == out["signer"]
    # the root has not been accepted yet: the attestation doesn't count
    v = validity(w)
    assert v.classes == frozenset() and "never accepted" in v.problems["pci"]
    w.store.accept_root(ROOT, "swarm1", w.clock(), "first seen")
    assert validity(w) == Validity(frozenset({"pci"}), {})
    assert [r["id"] for r in w.trust.list()] == [req["id"]]


def test_several_classes_and_sorted_duplicates() -> None:
    w = setup()
    run(w.trust.enrol(w.engine, "n1", "ops"))
    rid = run(attest(w, "n1", classes=["pci", "gold", "pci"]))
    stored = w.store.request(rid)
    assert stored is not None and stored.classes == ("gold", "pci")
    assert validity(w).classes == {"gold", "pci"}


def test_approving_lifts_pins_on_the_node_for_its_classes() -> None:
    w = setup()
    run(w.trust.enrol(w.engine, "n1", "ops"))
    w.store.pin("n1", "pci", w.clock(), "label removed by the reconciler")
    w.store.pin("n1", "gold", w.clock(), "label removed by the reconciler")
    run(attest(w, "n1"))
    assert w.store.pins() == {"gold": {"n1"}}
    assert w.trust.released == {("n1", "pci")}


# -------------------------------------------------------------- four eyes
def test_the_requester_cannot_approve_their_own_request() -> None:
    w = setup()
    run(w.trust.enrol(w.engine, "n1", "ops"))
    req = run(w.trust.request(w.engine, {"node": "n1", "classes": ["pci"], "evidence": "QSA-1"}, "sofia"))
    stmt = run(w.trust.statement(w.engine, req["id"]))
    err = refusal(w, w.trust.approve(w.engine, req["id"], signed(stmt, w.officers.private["sofia"]), "sofia"))
    assert err.status == 403 and "another security officer" in err.message
    stored = w.store.request(req["id"])
    assert stored is not None and stored.status == "pending"
    # another officer can
    run(w.trust.approve(w.engine, req["id"], signed(stmt, w.officers.private["sid"]), "sid"))
    assert validity(w).classes == {"pci"}


def test_an_officer_signing_with_another_officers_key_is_refused() -> None:
    w = setup()
    run(w.trust.enrol(w.engine, "n1", "ops"))
    req = run(w.trust.request(w.engine, {"node": "n1", "classes": ["pci"], "evidence": "QSA-1"}, "olga"))
    stmt = run(w.trust.statement(w.engine, req["id"]))
    err = refusal(w, w.trust.approve(w.engine, req["id"], signed(stmt, w.officers.private["sofia"]), "sid"))
    assert err.status == 400 and "does not verify" in err.message


def test_a_user_without_a_key_cannot_approve() -> None:
    w = setup()
    run(w.trust.enrol(w.engine, "n1", "ops"))
    req = run(w.trust.request(w.engine, {"node": "n1", "classes": ["pci"], "evidence": "QSA-1"}, "olga"))
    stmt = run(w.trust.statement(w.engine, req["id"]))
    err = refusal(
        w, w.trust.approve(w.engine, req["id"], signed(stmt, w.officers.private["sofia"]), "mallory")
    )
    assert err.status == 403


def test_a_statement_for_another_node_is_refused() -> None:
    w = setup("n1", "n2")
    run(w.trust.enrol(w.engine, "n1", "ops"))
    run(w.trust.enrol(w.engine, "n2", "ops"))
    r1 = run(w.trust.request(w.engine, {"node": "n1", "classes": ["pci"], "evidence": "QSA-1"}, "olga"))
    r2 = run(w.trust.request(w.engine, {"node": "n2", "classes": ["pci"], "evidence": "QSA-1"}, "olga"))
    stmt2 = run(w.trust.statement(w.engine, r2["id"]))
    err = refusal(w, w.trust.approve(w.engine, r1["id"], signed(stmt2, w.officers.private["sofia"]), "sofia"))
    assert err.status == 400 and "does not match" in err.message


def test_a_statement_made_before_the_nodes_root_changed_is_refused() -> None:
    w = setup()
    run(w.trust.enrol(w.engine, "n1", "ops"))
    req = run(w.trust.request(w.engine, {"node": "n1", "classes": ["pci"], "evidence": "QSA-1"}, "olga"))
    stmt = run(w.trust.statement(w.engine, req["id"]))
    w.engine.nodes["n1"]["Description"]["TLSInfo"]["TrustRoot"] = OTHER_PEM
    err = refusal(w, w.trust.approve(w.engine, req["id"], signed(stmt, w.officers.private["sofia"]), "sofia"))
    assert err.status == 400 and "does not match" in err.message


@pytest.mark.parametrize("skew", [301, -301, 3600])
def test_a_stale_statement_is_refused(skew: int) -> None:
    w = setup()
    run(w.trust.enrol(w.engine, "n1", "ops"))
    req = run(w.trust.request(w.engine, {"node": "n1", "classes": ["pci"], "evidence": "QSA-1"}, "olga"))
    stmt = run(w.trust.statement(w.engine, req["id"]))
    w.clock.advance(skew)
    err = refusal(w, w.trust.approve(w.engine, req["id"], signed(stmt, w.officers.private["sofia"]), "sofia"))
    assert err.status == 400 and "stale" in err.message


def test_a_statement_signed_within_the_skew_is_accepted() -> None:
    w = setup()
    run(w.trust.enrol(w.engine, "n1", "ops"))
    req = run(w.trust.request(w.engine, {"node": "n1", "classes": ["pci"], "evidence": "QSA-1"}, "olga"))
    stmt = run(w.trust.statement(w.engine, req["id"]))
    w.clock.advance(300)
    run(w.trust.approve(w.engine, req["id"], signed(stmt, w.officers.private["sofia"]), "sofia"))


def test_a_request_is_approved_once() -> None:
    w = setup()
    run(w.trust.enrol(w.engine, "n1", "ops"))
    req = run(w.trust.request(w.engine, {"node": "n1", "classes": ["pci"], "evidence": "QSA-1"}, "olga"))
    stmt = run(w.trust.statement(w.engine, req["id"]))
    run(w.trust.approve(w.engine, req["id"], signed(stmt, w.officers.private["sofia"]), "sofia"))
    again = refusal(w, w.trust.approve(w.engine, req["id"], signed(stmt, w.officers.private["sid"]), "sid"))
    assert again.status == 409
    assert refusal(w, w.trust.statement(w.engine, req["id"])).status == 409
    assert refusal(w, w.trust.statement(w.engine, "att-nope")).status == 404


@pytest.mark.parametrize("bad", [None, [], {}, {"envelope": "x"}, {"envelope": None}])
def test_an_approval_without_an_envelope_is_400(bad: Any) -> None:
    w = setup()
    run(w.trust.enrol(w.engine, "n1", "ops"))
    req = run(w.trust.request(w.engine, {"node": "n1", "classes": ["pci"], "evidence": "QSA-1"}, "olga"))
    assert refusal(w, w.trust.approve(w.engine, req["id"], bad, "sofia")).status == 400


# -------------------------------------------------------------- validity
def test_an_attestation_stops_counting_when_it_expires() -> None:
    w, rid = enrolled_and_attested(expires="1d")
    w.clock.advance(86400 - 1)
    assert validity(w).classes == {"pci"}
    w.clock.advance(1)
    v = validity(w)
    assert v.classes == frozenset() and "expired" in v.problems["pci"] and rid in v.problems["pci"]


def test_an_attestation_stops_counting_when_revoked() -> None:
    w, rid = enrolled_and_attested()
    out = run(w.trust.revoke(w.engine, rid, "sid"))
    assert out == {"revoked": [rid], "node": "n1", "by": "sid"}
    v = validity(w)
    assert v.classes == frozenset() and "revoked by sid" in v.problems["pci"]


def test_revoking_by_node_and_class() -> None:
    w, rid = enrolled_and_attested()
    assert refusal(w, w.trust.revoke(w.engine, "n1", "sid", ["gold"])).status == 404
    assert run(w.trust.revoke(w.engine, "host-n1", "sid", ["pci"]))["revoked"] == [rid]
    assert refusal(w, w.trust.revoke(w.engine, "n1", "sid")).status == 404


def test_a_manager_is_never_attested() -> None:
    w, _ = enrolled_and_attested()
    w.engine.nodes["n1"]["Spec"]["Role"] = "manager"
    v = validity(w)
    assert v.classes == frozenset() and "role is manager" in v.problems["pci"]


def test_a_node_following_a_root_moorage_did_not_accept_loses_its_attestation() -> None:
    w, _ = enrolled_and_attested()
    w.engine.nodes["n1"]["Description"]["TLSInfo"]["TrustRoot"] = OTHER_PEM
    v = validity(w)
    assert v.classes == frozenset() and "did not accept" in v.problems["pci"]
    w.store.accept_root(trust_root_digest(OTHER_PEM), "swarm1", w.clock(), "CA rotation through Moorage")
    assert validity(w).classes == {"pci"}


def test_a_node_reporting_no_root_loses_its_attestation() -> None:
    w, _ = enrolled_and_attested()
    del w.engine.nodes["n1"]["Description"]["TLSInfo"]
    assert validity(w).classes == frozenset()


def test_an_attestation_whose_root_was_never_accepted_does_not_count() -> None:
    w = setup(accept_root=False)
    run(w.trust.enrol(w.engine, "n1", "ops"))
    run(attest(w, "n1"))
    v = validity(w)
    assert v.classes == frozenset() and "never accepted" in v.problems["pci"]


def test_removing_the_approvers_key_withdraws_the_attestation() -> None:
    w, _ = enrolled_and_attested()
    w.officers.remove("sofia")
    v = validity(w)
    assert v.classes == frozenset() and "does not verify" in v.problems["pci"]


def test_a_key_moved_to_the_requester_does_not_count() -> None:
    """Whoever owns the signing key now must be the approver and not the requester."""
    w, _ = enrolled_and_attested()
    kid, (_, pub) = next((k, v) for k, v in w.officers.keys.items() if v[0] == "sofia")
    w.officers.keys[kid] = ("olga", pub)
    v = validity(w)
    assert v.classes == frozenset() and "not signed by its approving officer" in v.problems["pci"]


def test_an_unenrolled_node_loses_its_attestation() -> None:
    w, _ = enrolled_and_attested()
    assert w.store.unenrol("n1")
    v = validity(w)
    assert v.classes == frozenset() and "not enrolled" in v.problems["pci"]


def test_an_attestation_for_another_swarm_does_not_count() -> None:
    w, _ = enrolled_and_attested()
    w.engine.swarm["ID"] = "swarm2"
    v = validity(w)
    assert v.classes == frozenset() and "swarm swarm1" in v.problems["pci"]


def test_an_attestation_counts_only_for_its_node() -> None:
    w = setup("n1", "n2")
    run(w.trust.enrol(w.engine, "n1", "ops"))
    run(w.trust.enrol(w.engine, "n2", "ops"))
    run(attest(w, "n1"))
    assert validity(w, "n1").classes == {"pci"}
    assert validity(w, "n2") == Validity(frozenset(), {})


def test_a_pending_request_counts_for_nothing_and_a_later_one_outweighs_a_revoked_one() -> None:
    w, rid = enrolled_and_attested()
    run(w.trust.revoke(w.engine, rid, "sid"))
    run(w.trust.request(w.engine, {"node": "n1", "classes": ["pci"], "evidence": "QSA-2"}, "olga"))
    assert validity(w).classes == frozenset()
    run(attest(w, "n1"))
    assert validity(w) == Validity(frozenset({"pci"}), {})


def test_a_tampered_stored_envelope_does_not_count() -> None:
    w, rid = enrolled_and_attested()
    stored = w.store.request(rid)
    assert stored is not None and stored.envelope is not None
    payload = json.loads(base64.b64decode(stored.envelope["payload"]))
    payload["predicate"]["expiresAt"] += 10 * 365 * 86400
    envelope = {**stored.envelope, "payload": base64.b64encode(json.dumps(payload).encode()).decode()}
    w.store._q("UPDATE requests SET envelope=? WHERE id=?", (json.dumps(envelope), rid))
    assert "does not verify" in validity(w).problems["pci"]


# --------------------------------------------------------------- requests
def test_a_request_for_an_unenrolled_node_is_409() -> None:
    w = setup()
    err = refusal(
        w, w.trust.request(w.engine, {"node": "n1", "classes": ["pci"], "evidence": "QSA-1"}, "olga")
    )
    assert err.status == 409 and "not enrolled" in err.message
    assert w.store.requests() == []


def test_a_request_for_an_unknown_node_is_404() -> None:
    w = setup()
    err = refusal(
        w, w.trust.request(w.engine, {"node": "ghost", "classes": ["pci"], "evidence": "x"}, "olga")
    )
    assert err.status == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"classes": []}, "classes"),
        ({"classes": None}, "classes"),
        ({"classes": ["PCI"]}, "classes"),
        ({"classes": ["pci", 7]}, "classes"),
        ({"classes": ["p" * 33]}, "classes"),
        ({"classes": {"pci": True}}, "classes"),
        ({"evidence": ""}, "evidence"),
        ({"evidence": "   "}, "evidence"),
        ({"evidence": None}, "evidence"),
        ({"evidence": "x" * 501}, "evidence"),
        ({"expires": "0d"}, "expires"),
        ({"expires": "367d"}, "expires"),
        ({"expires": "53w"}, "expires"),
        ({"expires": "forever"}, "expires"),
        ({"expires": "12x"}, "expires"),
        ({"expires": "-1d"}, "expires"),
        ({"expires": 90}, "expires"),
    ],
)
def test_bad_requests_are_400(change: dict[str, Any], field: str) -> None:
    w = setup()
    run(w.trust.enrol(w.engine, "n1", "ops"))
    body = {"node": "n1", "classes": ["pci"], "evidence": "QSA-1", "expires": "90d", **change}
    err = refusal(w, w.trust.request(w.engine, body, "olga"))
    assert err.status == 400 and err.message.startswith(field)
    assert w.store.requests() == []


@pytest.mark.parametrize("body", [None, "n1", ["n1"]])
def test_a_request_that_isnt_an_object_is_400(body: Any) -> None:
    w = setup()
    assert refusal(w, w.trust.request(w.engine, body, "olga")).status == 400


@pytest.mark.parametrize(("expires", "seconds"), [("366d", 366 * 86400), ("12h", 43200), (" 2w ", 1209600)])
def test_durations(expires: str, seconds: int) -> None:
    w = setup()
    run(w.trust.enrol(w.engine, "n1", "ops"))
    body = {"node": "n1", "classes": ["pci"], "evidence": "QSA-1", "expires": expires}
    assert run(w.trust.request(w.engine, body, "olga"))["duration"] == seconds


def test_the_default_duration_is_90_days() -> None:
    w = setup()
    run(w.trust.enrol(w.engine, "n1", "ops"))
    body = {"node": "n1", "classes": ["pci"], "evidence": "QSA-1"}
    assert run(w.trust.request(w.engine, body, "olga"))["duration"] == 90 * 86400


def test_the_engine_not_being_a_swarm_manager_is_reported() -> None:
    w = setup()

    async def not_a_manager(method: str, path: str, limit: int = 0, body: Any = None) -> tuple[int, Any]:
        return 503, {"message": "This node is not a swarm manager."}

    w.engine.call_json = not_a_manager  # type: ignore[method-assign]
    err = refusal(w, w.trust.swarm(w.engine))
    assert err.status == 503 and "not a swarm manager" in err.message.lower()
