"""The reconciler against a fake Swarm manager: projection, drift, pins, drains."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from moorage.cluster.attestation import trust_root_digest
from moorage.cluster.reconciler import Reconciler
from tests.unit.cluster.fakes import OTHER_PEM, PEM, World, attest, node_doc, service_doc, world

ROOT = trust_root_digest(PEM)
ENROLLED = {"io.moorage.enrolled": "true"}
ATTESTED = {**ENROLLED, "io.moorage.attested.pci": "true"}
PCI = "node.labels.io.moorage.attested.pci==true"


@dataclass
class Records:
    rows: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)

    async def __call__(self, kind: str, obj: str, reason: str, summary: dict[str, Any]) -> None:
        self.rows.append((kind, obj, reason, summary))

    def of(self, obj: str) -> list[tuple[str, str]]:
        return [(k, r) for k, o, r, _ in self.rows if o == obj]

    def kinds(self) -> list[str]:
        return [k for k, _, _, _ in self.rows]


@dataclass
class Setup:
    w: World
    rec: Reconciler
    records: Records

    def sweep(self) -> list[str]:
        self.records.rows.clear()
        return asyncio.run(self.rec.sweep())


def cluster(attested: tuple[str, ...] = ("n1",), expires: str = "90d") -> Setup:
    """n1 attested for pci (unless told otherwise), n2 enrolled only, one pci service
    and one plain one; nothing swept yet."""
    w = world()
    w.engine.add_node(node_doc("n1", labels={"rack": "r1"}))
    w.engine.add_node(node_doc("n2"))
    w.engine.add_service(service_doc("svc-pci", "payments", "node.labels.io.moorage.enrolled==true", PCI))
    w.engine.add_service(service_doc("svc-web", "web", "node.labels.io.moorage.enrolled==true"))

    async def go() -> None:
        for n in ("n1", "n2"):
            await w.trust.enrol(w.engine, n, "ops")
        for n in attested:
            await attest(w, n, expires=expires)

    asyncio.run(go())
    records = Records()
    return Setup(w, Reconciler(w.trust, w.engine, record=records, interval=60.0), records)


def swept(attested: tuple[str, ...] = ("n1",), expires: str = "90d") -> Setup:
    s = cluster(attested, expires)
    s.sweep()
    return s


def test_the_first_sweep_accepts_the_root_and_projects_the_labels() -> None:
    s = cluster()
    changed = s.sweep()
    assert s.w.store.roots() == {ROOT: "first seen"}
    assert ("cluster.trust-root", "the swarm's trust root, first seen by Moorage") in s.records.of("swarm1")
    assert s.w.engine.labels("n1") == {"rack": "r1", **ATTESTED}
    assert s.w.engine.labels("n2") == ENROLLED
    ((kind1, reason1),) = s.records.of("n1")
    assert kind1 == "cluster.project" and "projected io.moorage.attested.pci=true" in reason1
    assert s.records.of("n2") == [("cluster.project", "projected io.moorage.enrolled=true")]
    assert len(changed) == 3
    assert s.w.store.pins() == {}
    # nothing else changed: no service update
    assert not any(p.startswith("/services") for p, _ in s.w.engine.posts)


def test_a_sweep_with_nothing_to_do_changes_nothing() -> None:
    s = swept()
    posts = len(s.w.engine.posts)
    assert s.sweep() == [] and s.records.rows == []
    assert len(s.w.engine.posts) == posts


def test_a_hand_made_attestation_label_is_removed_and_the_node_pinned() -> None:
    s = swept()
    s.w.engine.set_labels("n2", ATTESTED)
    s.sweep()
    assert s.w.engine.labels("n2") == ENROLLED
    ((kind, reason),) = s.records.of("n2")
    assert kind == "cluster.drift" and "outside Moorage" in reason
    assert "removed io.moorage.attested.pci=true" in reason
    assert s.w.store.pins() == {"pci": {"n2"}}
    assert s.w.engine.constraints("svc-pci") == ["node.labels.io.moorage.enrolled==true", PCI, "node.id!=n2"]
    assert s.w.engine.constraints("svc-web") == ["node.labels.io.moorage.enrolled==true"]
    ((pin_kind, pin_reason),) = s.records.of("svc-pci")
    assert pin_kind == "cluster.pin" and "+ node.id!=n2" in pin_reason
    # the pin sticks and is not added twice
    assert s.sweep() == []
    assert s.w.engine.constraints("svc-pci").count("node.id!=n2") == 1


def test_a_hand_made_label_on_a_node_never_swept_is_drift_too() -> None:
    s = cluster()
    s.w.engine.set_labels("n2", ATTESTED)
    s.sweep()
    assert s.w.engine.labels("n2") == ENROLLED
    ((kind, reason),) = s.records.of("n2")
    assert kind == "cluster.drift" and "outside Moorage" in reason
    assert s.w.store.pins() == {"pci": {"n2"}}


def test_a_look_alike_label_is_removed_but_pins_nothing() -> None:
    s = swept()
    s.w.engine.set_labels("n2", {**ENROLLED, "IO.MOORAGE.attested.pci": "true"})
    s.sweep()
    assert s.w.engine.labels("n2") == ENROLLED
    assert s.records.of("n2")[0][0] == "cluster.drift"
    assert s.w.store.pins() == {}


def test_a_removed_attestation_label_is_restored() -> None:
    s = swept()
    s.w.engine.set_labels("n1", {"rack": "r1", **ENROLLED})
    s.sweep()
    assert s.w.engine.labels("n1") == {"rack": "r1", **ATTESTED}
    ((kind, reason),) = s.records.of("n1")
    assert kind == "cluster.drift" and "restored io.moorage.attested.pci=true" in reason
    assert s.w.store.pins() == {}


def test_an_expired_attestation_loses_its_label() -> None:
    s = swept(expires="1d")
    s.w.clock.advance(86400)
    s.sweep()
    assert s.w.engine.labels("n1") == {"rack": "r1", **ENROLLED}
    ((kind, reason),) = s.records.of("n1")
    assert kind == "cluster.project" and "outside" not in reason
    assert "removed io.moorage.attested.pci" in reason and "expired" in reason
    assert s.w.store.pins() == {"pci": {"n1"}}
    assert "node.id!=n1" in s.w.engine.constraints("svc-pci")


def test_a_revoked_attestation_loses_its_label() -> None:
    s = swept()
    rid = s.w.store.requests()[0].id
    asyncio.run(s.w.trust.revoke(s.w.engine, rid, "sid"))
    s.sweep()
    assert s.w.engine.labels("n1") == {"rack": "r1", **ENROLLED}
    ((_, reason),) = s.records.of("n1")
    assert "revoked by sid" in reason


def test_a_new_approval_lifts_the_pin_from_services() -> None:
    s = swept()
    s.w.engine.set_labels("n2", ATTESTED)
    s.sweep()
    assert "node.id!=n2" in s.w.engine.constraints("svc-pci")
    asyncio.run(attest(s.w, "n2"))
    assert s.w.store.pins() == {}
    s.sweep()
    assert s.w.engine.labels("n2") == ATTESTED
    assert s.w.engine.constraints("svc-pci") == ["node.labels.io.moorage.enrolled==true", PCI]
    assert s.w.trust.released == set()
    assert any(k == "cluster.pin" and "- node.id!=n2" in r for k, r in s.records.of("svc-pci"))


def test_a_paused_node_running_a_class_service_without_attestation_is_drained() -> None:
    s = swept()
    s.w.engine.nodes["n2"]["Spec"]["Availability"] = "pause"
    s.w.engine.tasks = [
        {"ID": "t1", "ServiceID": "svc-pci", "NodeID": "n2", "DesiredState": "running"},
        {"ID": "t2", "ServiceID": "svc-web", "NodeID": "n2", "DesiredState": "running"},
    ]
    s.sweep()
    assert s.w.engine.nodes["n2"]["Spec"]["Availability"] == "drain"
    assert s.w.engine.labels("n2") == ENROLLED
    ((kind, reason),) = s.records.of("n2")
    assert kind == "cluster.drain" and "payments" in reason and "web" not in reason


def test_a_paused_node_whose_labels_are_corrected_in_the_same_sweep_is_drained() -> None:
    """The drain reads the node again: its version moved when the labels were set."""
    s = swept()
    s.w.engine.set_labels("n2", ATTESTED)
    s.w.engine.nodes["n2"]["Spec"]["Availability"] = "pause"
    s.w.engine.tasks = [{"ID": "t1", "ServiceID": "svc-pci", "NodeID": "n2", "DesiredState": "running"}]
    s.sweep()
    doc = s.w.engine.nodes["n2"]
    assert doc["Spec"]["Availability"] == "drain" and doc["Spec"]["Labels"] == ENROLLED
    assert [k for k, _ in s.records.of("n2")] == ["cluster.drift", "cluster.drain"]


def test_paused_nodes_that_may_run_their_tasks_are_left_alone() -> None:
    s = swept()
    for n in ("n1", "n2"):
        s.w.engine.nodes[n]["Spec"]["Availability"] = "pause"
    s.w.engine.tasks = [
        {"ID": "t1", "ServiceID": "svc-pci", "NodeID": "n1", "DesiredState": "running"},
        {"ID": "t2", "ServiceID": "svc-web", "NodeID": "n2", "DesiredState": "running"},
        {"ID": "t3", "ServiceID": "svc-pci", "NodeID": "n2", "DesiredState": "shutdown"},
    ]
    assert s.sweep() == []
    assert [s.w.engine.nodes[n]["Spec"]["Availability"] for n in ("n1", "n2")] == ["pause", "pause"]


def test_an_active_node_is_never_drained() -> None:
    s = swept()
    s.w.engine.tasks = [{"ID": "t1", "ServiceID": "svc-pci", "NodeID": "n2", "DesiredState": "running"}]
    s.sweep()
    assert s.w.engine.nodes["n2"]["Spec"]["Availability"] == "active"


def test_a_root_changed_outside_moorage_is_drift_and_withdraws_attestations() -> None:
    s = swept()
    s.w.engine.swarm["TLSInfo"]["TrustRoot"] = OTHER_PEM
    s.w.engine.nodes["n1"]["Description"]["TLSInfo"]["TrustRoot"] = OTHER_PEM
    s.sweep()
    assert s.w.store.roots() == {ROOT: "first seen"}
    kind, reason = s.records.of("swarm1")[0]
    assert kind == "cluster.drift" and "outside Moorage" in reason
    assert s.w.engine.labels("n1") == {"rack": "r1", **ENROLLED}
    # said once
    s.sweep()
    assert s.records.of("swarm1") == []


def test_a_rotation_through_moorage_is_accepted() -> None:
    s = swept()
    s.w.trust.rotation_expected = (s.w.clock(), "sofia")
    s.w.clock.advance(60)
    s.w.engine.swarm["TLSInfo"]["TrustRoot"] = OTHER_PEM
    s.sweep()
    assert s.w.store.roots() == {
        ROOT: "first seen",
        trust_root_digest(OTHER_PEM): "CA rotation through Moorage by sofia",
    }


def test_the_first_sweep_of_an_empty_store_enrols_moorages_own_manager() -> None:
    w = world()
    w.engine.add_node(node_doc("m1", role="manager"))
    w.engine.add_node(node_doc("n2"))
    w.engine.own_node = "m1"
    records = Records()
    rec = Reconciler(w.trust, w.engine, record=records, interval=60.0)
    asyncio.run(rec.sweep())
    assert w.store.enrolled() == {"m1": "swarm1"}
    assert ("cluster.enrol", "m1") in [(k, o) for k, o, _, _ in records.rows]
    assert w.engine.labels("m1") == ENROLLED and w.engine.labels("n2") == {}
    # later sweeps never enrol it again once the operator has unenrolled it
    w.store.enrol("n2", "swarm1", "ops", w.clock())
    w.store.unenrol("m1")
    asyncio.run(rec.sweep())
    assert w.store.enrolled() == {"n2": "swarm1"}
    assert w.engine.labels("m1") == {}


def test_the_reconciler_hooks_the_trusts_wake() -> None:
    s = cluster()
    assert not s.rec._wake.is_set()
    s.w.trust.wake()
    assert s.rec._wake.is_set()


# ------------------------------------------- defects found by these tests, fixed
def test_an_expiry_seen_first_after_a_restart_is_not_called_drift() -> None:
    s = swept(expires="1d")
    s.w.clock.advance(86400)
    s.rec = Reconciler(s.w.trust, s.w.engine, record=s.records, interval=60.0)  # the gateway restarted
    s.sweep()
    ((kind, reason),) = s.records.of("n1")
    assert kind == "cluster.project" and "expired" in reason


def test_an_unenrolment_is_not_worded_as_a_change_outside_moorage() -> None:
    s = swept()
    s.w.store.unenrol("n2")
    s.sweep()
    assert s.w.engine.labels("n2") == {}
    ((kind, reason),) = s.records.of("n2")
    assert kind == "cluster.project" and "outside" not in reason


def test_a_lifted_pin_survives_a_failed_service_update() -> None:
    s = swept()
    s.w.engine.set_labels("n2", ATTESTED)
    s.sweep()
    asyncio.run(attest(s.w, "n2"))
    real = s.w.engine.call_json

    async def services_fail(method: str, path: str, limit: int = 0, body: Any = None) -> tuple[int, Any]:
        if method == "POST" and path.startswith("/services/"):
            return 500, {"message": "rpc error: update out of sequence"}
        return await real(method, path, limit, body)

    s.w.engine.call_json = services_fail  # type: ignore[method-assign]
    s.sweep()
    s.w.engine.call_json = real  # type: ignore[method-assign]
    s.sweep()
    assert "node.id!=n2" not in s.w.engine.constraints("svc-pci")
