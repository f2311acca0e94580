"""Cluster trust on a real 3-node Swarm: enrolment, signed attestations, placement,
the reconciler against edits behind Moorage's back, and governed Swarm operations.

The judge is the engine: after each step the manager is asked where tasks run and
what the nodes' labels are, never Moorage. Node 1 is the manager; node 2 is attested
for ``pci``; node 3 starts unenrolled.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from moorage.admission.pipeline import PolicyAdmission
from moorage.audit.trail import AuditTrail, KeyRing
from moorage.cluster.attestation import key_id
from moorage.cluster.reconciler import Reconciler
from moorage.cluster.store import ClusterStore
from moorage.cluster.trust import ClusterTrust
from moorage.engine import EngineClient, EngineError
from moorage.identity import UserDirectory
from moorage.images.sign import generate_key, parse_public_keys
from moorage.lab import Lab
from moorage.lab.images import BUSYBOX_REF, build_busybox, load_into
from moorage.policy.documents import parse_document
from moorage.policy.loader import PolicySet
from tests.conftest import needs_root, unique_name
from tests.gateway_harness import UIDS, USERS, RunningGateway, docker, moorage, ok

POLICY = """
apiVersion: moorage.dev/v1
kind: Policy
metadata: {name: pci-placement, version: "1"}
spec:
  mode: enforce
  placement:
    classes: {pci: ["node.labels.io.moorage.attested.pci==true"]}
    teams: {payments: pci}
    exclusive: [pci]
"""
PCI = "node.labels.io.moorage.attested.pci==true"
DEADLINE = 15.0  # every attack is undone within this


@dataclass
class Cluster:
    lab: Lab
    gw: RunningGateway
    trust: ClusterTrust
    trail: AuditTrail
    keys: dict[str, Path]
    ids: dict[int, str]  # lab node -> swarm node id
    manager: EngineClient

    def labels(self, k: int) -> dict[str, str]:
        spec = self.manager.call("GET", f"/nodes/{self.ids[k]}")["Spec"]
        return {a: b for a, b in (spec.get("Labels") or {}).items() if a.startswith("io.moorage.")}

    def records(self, kind: str | None = None) -> list[dict[str, Any]]:
        out = []
        for line in self.trail.export_lines():
            if line["type"] == "record":
                body = json.loads(line["body"]) if isinstance(line["body"], str | bytes) else line["body"]
                if kind is None or body.get("kind") == kind:
                    out.append(body)
        return out

    def running_on(self, service: str) -> list[str]:
        flt = quote(json.dumps({"service": [service], "desired-state": ["running"]}))
        tasks = self.manager.call("GET", f"/tasks?filters={flt}")
        return [t["NodeID"] for t in tasks if (t.get("Status") or {}).get("State") == "running"]

    def node_update(self, k: int, change: Callable[[dict[str, Any]], None]) -> None:
        """Edit a node directly on the manager: behind Moorage's back."""
        doc = self.manager.call("GET", f"/nodes/{self.ids[k]}")
        spec = doc["Spec"]
        change(spec)
        self.manager.call("POST", f"/nodes/{self.ids[k]}/update?version={doc['Version']['Index']}", spec)


def wait_for(what: str, check: Callable[[], bool], timeout: float = DEADLINE) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(0.5)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    needs_root()
    lab = Lab(unique_name("ct"))
    folder = Path(f"/tmp/moorage-{lab.name}-ct")
    gw = None
    trail = None
    try:
        lab.up(nodes=3, owner_pid=os.getpid())
        load_into(build_busybox(), [lab.client(k) for k in range(1, 4)])
        folder.mkdir(mode=0o755)
        keys: dict[str, Path] = {}
        users = json.loads(json.dumps(USERS))
        for officer in ("sofia", "sid"):
            priv, pub = generate_key(folder / officer)
            os.chown(priv, UIDS[officer], UIDS[officer])
            keys[officer] = priv
            users["users"][officer]["keys"] = [pub.read_text()]
        directory = UserDirectory.from_dict(users)
        officer_keys = {}
        for user, pem in directory.officer_keys():
            for pub_key in parse_public_keys(pem.encode(), user):
                officer_keys[key_id(pub_key)] = (user, pub_key)
        trust = ClusterTrust(ClusterStore.in_folder(folder), lambda: officer_keys)
        trail = AuditTrail(folder / "audit.db", KeyRing(folder / "audit-keys"))
        admission = PolicyAdmission(PolicySet(tuple(parse_document(POLICY, "pci.yaml")), "t1"), cluster=trust)
        gw = RunningGateway(lab.docker_host(1), folder / "docker.sock", audit=trail, admission=admission)
        gw.gateway.users = directory
        gw.gateway.cluster = trust
        reconciler = Reconciler(
            trust,
            gw.gateway.upstream,
            gw.gateway.record_event,
            interval=2.0,
            events=lambda: gw.gateway.upstream.lines('/events?filters={"type":["node"]}'),
        )
        asyncio.run_coroutine_threadsafe(_start(reconciler), gw.loop).result(10)
        manager = lab.client(1)
        by_host = {n["Description"]["Hostname"]: n["ID"] for n in manager.call("GET", "/nodes")}
        ids = {k: by_host[f"{lab.name}-node{k}"] for k in range(1, 4)}
        yield Cluster(lab, gw, trust, trail, keys, ids, manager)
    finally:
        if gw is not None:
            gw.stop()
        if trail is not None:
            trail.close()
        lab.down()
        shutil.rmtree(folder, ignore_errors=True)


_TASKS: list[asyncio.Future[None]] = []


async def _start(reconciler: Reconciler) -> None:
    _TASKS.append(asyncio.ensure_future(reconciler.run()))


_SEND = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(sys.stdin.buffer.read())
out = b""
while chunk := s.recv(65536):
    out += chunk
sys.stdout.buffer.write(out)
"""


def raw_as(gw: RunningGateway, data: bytes, user: str) -> tuple[int, Any]:
    """A hand-written request from another uid (the gateway knows callers by uid)."""
    head, _, rest = data.partition(b"\r\n\r\n")
    data = head + b"\r\nConnection: close\r\n\r\n" + rest
    uid = str(UIDS[user])
    proc = subprocess.run(
        [
            "setpriv",
            f"--reuid={uid}",
            f"--regid={uid}",
            "--clear-groups",
            sys.executable,
            "-c",
            _SEND,
            str(gw.sock),
        ],
        input=data,
        capture_output=True,
        timeout=60,
    )
    answer_head, _, body = proc.stdout.partition(b"\r\n\r\n")
    status = int(answer_head.split()[1]) if answer_head else 0
    try:
        return status, json.loads(body) if body else None
    except ValueError:
        return status, body.decode(errors="replace")


def node_ref(c: Cluster, k: int) -> str:
    return f"{c.lab.name}-node{k}"


def test_enrolment_and_attestation_need_two_people(cluster: Cluster) -> None:
    c = cluster
    for k in (1, 2):
        ok(moorage(c.gw, "node", "enrol", node_ref(c, k), user="olga"))
    refused = moorage(c.gw, "node", "enrol", node_ref(c, 3), user="alice")
    assert refused.returncode != 0 and "may not" in refused.stderr
    wait_for(
        "nodes 1 and 2 carry io.moorage.enrolled",
        lambda: all(c.labels(k).get("io.moorage.enrolled") == "true" for k in (1, 2)),
    )
    assert c.labels(3) == {}
    out = ok(
        moorage(
            c.gw,
            "node",
            "attest",
            node_ref(c, 2),
            "--class",
            "pci",
            "--evidence",
            "QSA-2026-17",
            "--expires",
            "1h",
            user="sofia",
        )
    )
    rid = out.split()[1].rstrip(":")
    assert rid.startswith("att-")
    own = moorage(c.gw, "node", "approve", rid, "--key", str(c.keys["sofia"]), user="sofia")
    assert own.returncode != 0 and "another security officer" in own.stderr
    stolen = c.keys["sofia"].with_name("stolen.key")  # sid signs with a key that isn't his
    shutil.copy(c.keys["sofia"], stolen)
    os.chown(stolen, UIDS["sid"], UIDS["sid"])
    wrong_key = moorage(c.gw, "node", "approve", rid, "--key", str(stolen), user="sid")
    assert wrong_key.returncode != 0 and "does not verify" in wrong_key.stderr
    ok(moorage(c.gw, "node", "approve", rid, "--key", str(c.keys["sid"]), user="sid"))
    wait_for(
        "node 2 carries io.moorage.attested.pci", lambda: c.labels(2).get("io.moorage.attested.pci") == "true"
    )
    approved = [r for r in c.records("moorage.attestation.approve") if r["status"] == 200]
    assert approved and approved[-1]["summary"]["classes"] == ["pci"] and approved[-1]["user"] == "sid"
    assert c.records("cluster.project"), "the projection is in the audit trail"


def test_pci_runs_only_on_the_attested_node_and_others_stay_off_it(cluster: Cluster) -> None:
    c = cluster
    ok(
        docker(
            c.gw,
            "service",
            "create",
            "--detach",
            "--name",
            "pay",
            "--replicas",
            "2",
            BUSYBOX_REF,
            "sleep",
            "3600",
            user="alice",
        )
    )
    ok(
        docker(
            c.gw,
            "service",
            "create",
            "--detach",
            "--name",
            "plain",
            "--replicas",
            "3",
            BUSYBOX_REF,
            "sleep",
            "3600",
            user="bob",
        )
    )
    wait_for("pay runs 2 tasks", lambda: len(c.running_on("pay")) == 2, 60)
    wait_for("plain runs 3 tasks", lambda: len(c.running_on("plain")) == 3, 60)
    assert set(c.running_on("pay")) == {c.ids[2]}
    # plain: never on the unenrolled node 3, never on node 2 (pci is exclusive)
    assert set(c.running_on("plain")) == {c.ids[1]}
    spec = c.manager.call("GET", "/services/pay")["Spec"]
    assert PCI in spec["TaskTemplate"]["Placement"]["Constraints"]


def test_a_label_set_behind_moorages_back_is_removed(cluster: Cluster) -> None:
    c = cluster
    c.node_update(
        3,
        lambda s: s.setdefault("Labels", {}).update(
            {"io.moorage.attested.pci": "true", "io.moorage.enrolled": "true"}
        ),
    )
    took = wait_for("node 3's forged labels are removed", lambda: c.labels(3) == {})
    assert took < DEADLINE
    drift = [r for r in c.records("cluster.drift") if r["object_ref"] == c.ids[3]]
    assert drift and "outside Moorage" in drift[-1]["reason"]
    wait_for(
        "pay is pinned off node 3",
        lambda: (
            f"node.id!={c.ids[3]}"
            in c.manager.call("GET", "/services/pay")["Spec"]["TaskTemplate"]["Placement"]["Constraints"]
        ),
    )
    assert c.ids[3] not in c.running_on("pay")


def test_a_label_removed_behind_moorages_back_is_restored(cluster: Cluster) -> None:
    c = cluster
    c.node_update(2, lambda s: s["Labels"].pop("io.moorage.attested.pci"))
    wait_for(
        "node 2's attestation label is back", lambda: c.labels(2).get("io.moorage.attested.pci") == "true"
    )
    wait_for("pay runs on node 2 again", lambda: c.running_on("pay") == [c.ids[2]] * 2, 60)


def test_node_updates_through_moorage_cant_touch_the_projection(cluster: Cluster) -> None:
    c = cluster
    dev = docker(
        c.gw, "node", "update", "--label-add", "io.moorage.attested.pci=true", node_ref(c, 3), user="alice"
    )
    assert dev.returncode != 0
    for args in (
        ["--label-add", "io.moorage.attested.pci=true", node_ref(c, 3)],
        ["--label-rm", "io.moorage.attested.pci", node_ref(c, 2)],
        ["--label-add", "IO.MOORAGE.attested.pci=true", node_ref(c, 3)],
    ):
        out = docker(c.gw, "node", "update", *args)  # root: an admin
        assert out.returncode != 0 and "node.labels" in out.stderr, args
    promote = docker(c.gw, "node", "promote", node_ref(c, 2))
    assert promote.returncode != 0 and "node.promote" in promote.stderr
    assert c.manager.call("GET", f"/nodes/{c.ids[2]}")["Spec"]["Role"] == "worker"
    ok(docker(c.gw, "node", "update", "--label-add", "rack=r7", node_ref(c, 2)))  # other labels pass
    assert c.labels(2).get("io.moorage.attested.pci") == "true"


@pytest.mark.parametrize(
    "constraint",
    [
        "node.labels.io.moorage.attested.pci!=true",
        "NODE.LABELS.io.moorage.attested.pci == false",
        "node.labels.io.moorage.enrolled!=true",
        "node.labels.IO.MOORAGE.attested.pci==true",
        "node.labels.io.moorage.attested.gold==true",
    ],
)
def test_class_constraints_cant_be_edited_in_any_spelling(cluster: Cluster, constraint: str) -> None:
    c = cluster
    created = docker(
        c.gw, "service", "create", "--detach", "--constraint", constraint, BUSYBOX_REF, "true", user="alice"
    )
    assert created.returncode != 0, created.stdout
    assert "cluster trust" in created.stderr or "placement.class" in created.stderr, created.stderr
    doc = c.manager.call("GET", "/services/pay")
    spec = doc["Spec"]
    spec["TaskTemplate"]["Placement"]["Constraints"] = [constraint]
    body = json.dumps(spec).encode()
    status, answer = raw_as(
        c.gw,
        b"POST /v1.41/services/pay/update?version=%d HTTP/1.1\r\nHost: d\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
        % (doc["Version"]["Index"], len(body), body),
        "alice",
    )
    assert status == 403, answer
    assert PCI in c.manager.call("GET", "/services/pay")["Spec"]["TaskTemplate"]["Placement"]["Constraints"]


def test_a_dropped_class_constraint_is_refused_or_comes_back(cluster: Cluster) -> None:
    c = cluster
    refused = docker(c.gw, "service", "update", "--detach", "--constraint-rm", PCI, "pay", user="alice")
    assert refused.returncode != 0 and "placement.class" in refused.stderr
    enrolled = "node.labels.io.moorage.enrolled==true"
    ok(docker(c.gw, "service", "update", "--detach", "--constraint-rm", enrolled, "pay", user="alice"))
    constraints = c.manager.call("GET", "/services/pay")["Spec"]["TaskTemplate"]["Placement"]["Constraints"]
    assert PCI in constraints and enrolled in constraints


def test_a_rollback_to_a_spec_without_moorages_constraints_is_refused(cluster: Cluster) -> None:
    c = cluster
    # made on the engine before Moorage governed the cluster: the class, not enrolment
    spec = {
        "Name": "old-pay",
        "Labels": {"io.moorage.team": "payments", "io.moorage.owner": "alice"},
        "TaskTemplate": {
            "ContainerSpec": {"Image": BUSYBOX_REF, "Command": ["sleep", "600"]},
            "Placement": {"Constraints": [PCI]},
        },
        "Mode": {"Replicated": {"Replicas": 0}},
    }
    c.manager.call("POST", "/services/create", spec)
    try:
        ok(docker(c.gw, "service", "update", "--detach", "--env-add", "A=1", "old-pay", user="alice"))
        governed = c.manager.call("GET", "/services/old-pay")["Spec"]["TaskTemplate"]["Placement"][
            "Constraints"
        ]
        assert PCI in governed
        back = docker(c.gw, "service", "rollback", "--detach", "old-pay", user="alice")
        assert back.returncode != 0 and "rollback runs the service's previous spec" in back.stderr, (
            back.stderr
        )
        after = c.manager.call("GET", "/services/old-pay")["Spec"]["TaskTemplate"]["Placement"]["Constraints"]
        assert after == governed
    finally:
        c.manager.call("DELETE", "/services/old-pay")


def test_a_class_service_cant_use_the_host_network_or_plain_overlays(cluster: Cluster) -> None:
    c = cluster
    host = docker(
        c.gw, "service", "create", "--detach", "--network", "host", BUSYBOX_REF, "true", user="alice"
    )
    assert host.returncode != 0
    mesh = docker(
        c.gw, "service", "create", "--detach", "--publish", "8080:80", BUSYBOX_REF, "true", user="alice"
    )
    assert mesh.returncode != 0 and "mode=host" in mesh.stderr
    ok(docker(c.gw, "network", "create", "--driver", "overlay", "paynet", user="olga"))
    try:
        assert "encrypted" in c.manager.call("GET", "/networks/paynet")["Options"]  # made encrypted
        ok(
            docker(
                c.gw,
                "service",
                "create",
                "--detach",
                "--name",
                "pay-net",
                "--network",
                "paynet",
                BUSYBOX_REF,
                "sleep",
                "60",
                user="alice",
            )
        )
        ok(docker(c.gw, "service", "rm", "pay-net", user="alice"))
    finally:
        docker(c.gw, "network", "rm", "paynet", user="olga")


def test_another_team_cant_claim_an_exclusive_class(cluster: Cluster) -> None:
    c = cluster
    out = docker(
        c.gw, "service", "create", "--detach", "--label", "moorage.class=pci", BUSYBOX_REF, "true", user="bob"
    )
    assert out.returncode != 0 and "exclusive" in out.stderr, out.stderr


def test_a_class_service_may_publish_on_the_host(cluster: Cluster) -> None:
    c = cluster
    ok(
        docker(
            c.gw,
            "service",
            "create",
            "--detach",
            "--name",
            "pay-edge",
            "--replicas",
            "0",
            "--publish",
            "mode=host,target=80,published=8088",
            BUSYBOX_REF,
            "true",
            user="alice",
        )
    )
    ok(docker(c.gw, "service", "rm", "pay-edge", user="alice"))


def test_swarm_operations_are_governed_and_secrets_stay_out_of_the_trail(cluster: Cluster) -> None:
    c = cluster
    assert docker(c.gw, "swarm", "update", "--task-history-limit", "3", user="olga").returncode != 0
    assert docker(c.gw, "swarm", "update", "--task-history-limit", "3", user="sofia").returncode != 0
    ok(docker(c.gw, "swarm", "update", "--cert-expiry", "2160h", user="sofia"))
    tokens = moorage(c.gw, "cluster", "rotate-tokens", user="olga")
    assert tokens.returncode != 0
    before = c.manager.call("GET", "/swarm")["JoinTokens"]
    ok(moorage(c.gw, "cluster", "rotate-tokens", user="sofia"))
    after = c.manager.call("GET", "/swarm")["JoinTokens"]
    assert before["Worker"] != after["Worker"] and before["Manager"] != after["Manager"]
    lock = ok(moorage(c.gw, "cluster", "autolock", "on", user="sofia"))
    unlock_key = lock.split("unlock key: ")[1].split()[0]
    assert c.manager.call("GET", "/swarm")["Spec"]["EncryptionConfig"]["AutoLockManagers"] is True
    ok(moorage(c.gw, "cluster", "autolock", "off", user="sofia"))
    shown = docker(c.gw, "swarm", "join-token", "-q", "worker", user="olga").stdout.strip()
    assert shown == ""  # an operator's view of the swarm has no join tokens
    status, doc = raw_as(c.gw, b"GET /swarm HTTP/1.1\r\nHost: d\r\n\r\n", "olga")
    assert status == 200 and "JoinTokens" not in doc
    status, doc = raw_as(c.gw, b"GET /swarm HTTP/1.1\r\nHost: d\r\n\r\n", "alice")
    assert status in (403, 404)
    trail = json.dumps(c.records())
    for secret in (*before.values(), *after.values(), unlock_key):
        assert secret not in trail


def test_ca_rotation_keeps_attestations_and_every_node_follows(cluster: Cluster) -> None:
    c = cluster
    out = ok(moorage(c.gw, "cluster", "rotate-ca", user="sofia"))
    assert "every ready node follows the new root" in out
    status = json.loads(ok(moorage(c.gw, "cluster", "status", "--json", user="sofia")))
    assert all(n["follows_current_root"] for n in status["nodes"])
    assert len(status["ca"]["accepted_roots"]) == 2
    time.sleep(3)  # a sweep after the rotation
    assert c.labels(2).get("io.moorage.attested.pci") == "true"
    print(f"\nCA rotation through moorage cluster rotate-ca: {out}")


def test_expiry_takes_the_node_out(cluster: Cluster) -> None:
    c = cluster
    real = c.trust.clock
    c.trust.clock = lambda: real() + 7200  # the 1 h attestation has expired
    try:
        c.trust.wake()
        wait_for("node 2 loses its label on expiry", lambda: "io.moorage.attested.pci" not in c.labels(2))
        assert any("expired" in r["reason"] for r in c.records() if r["object_ref"] == c.ids[2])
        wait_for("no pay task runs on node 2", lambda: c.ids[2] not in c.running_on("pay"), 60)
    finally:
        c.trust.clock = real


def attest_node_2(c: Cluster, requester: str, approver: str) -> None:
    out = ok(
        moorage(
            c.gw,
            "node",
            "attest",
            node_ref(c, 2),
            "--class",
            "pci",
            "--evidence",
            "QSA-2026-18",
            "--expires",
            "1h",
            user=requester,
        )
    )
    rid = out.split()[1].rstrip(":")
    ok(moorage(c.gw, "node", "approve", rid, "--key", str(c.keys[approver]), user=approver))
    wait_for("node 2 is attested again", lambda: c.labels(2).get("io.moorage.attested.pci") == "true")


def pay_constraints(c: Cluster) -> list[str]:
    return list(c.manager.call("GET", "/services/pay")["Spec"]["TaskTemplate"]["Placement"]["Constraints"])


def test_a_new_approval_lifts_the_pin(cluster: Cluster) -> None:
    c = cluster
    assert f"node.id!={c.ids[2]}" in pay_constraints(c)  # expiry pinned node 2 out of pci
    attest_node_2(c, "sid", "sofia")
    wait_for("the pin on node 2 is lifted", lambda: f"node.id!={c.ids[2]}" not in pay_constraints(c))
    assert f"node.id!={c.ids[3]}" in pay_constraints(c)  # node 3's stays
    wait_for("pay runs on node 2 again", lambda: set(c.running_on("pay")) == {c.ids[2]}, 60)


def test_a_promotion_behind_moorages_back_stops_the_attestation(cluster: Cluster) -> None:
    c = cluster
    c.node_update(2, lambda s: s.update(Role="manager"))
    try:
        wait_for(
            "node 2 loses its label as a manager", lambda: "io.moorage.attested.pci" not in c.labels(2), 30
        )
        assert any("role is manager" in r["reason"] for r in c.records() if r["object_ref"] == c.ids[2])
        wait_for("no pay task runs on node 2", lambda: c.ids[2] not in c.running_on("pay"), 60)
    finally:
        # demoting waits until the promotion has reached raft's member list
        deadline = time.monotonic() + 60
        while True:
            try:
                c.node_update(2, lambda s: s.update(Role="worker"))
                break
            except EngineError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
    wait_for(
        "node 2 is a worker again",
        lambda: c.manager.call("GET", f"/nodes/{c.ids[2]}")["Spec"]["Role"] == "worker",
        30,
    )
    # the exclusion sticks: the attestation counts again, but the node stays pinned out
    # of pci until an officer approves anew
    assert f"node.id!={c.ids[2]}" in pay_constraints(c)


def test_revoking_a_paused_nodes_attestation_drains_it(cluster: Cluster) -> None:
    c = cluster
    attest_node_2(c, "olga", "sid")
    wait_for("pay runs on node 2 again", lambda: set(c.running_on("pay")) == {c.ids[2]}, 60)
    assert docker(c.gw, "node", "ls", user="alice").returncode != 0
    assert moorage(c.gw, "node", "revoke", node_ref(c, 2), user="alice").returncode != 0
    # paused behind Moorage's back: swarmkit's constraint enforcer leaves paused nodes alone
    c.node_update(2, lambda s: s.update(Availability="pause"))
    ok(moorage(c.gw, "node", "revoke", node_ref(c, 2), user="sofia"))
    wait_for("node 2 loses its label on revocation", lambda: "io.moorage.attested.pci" not in c.labels(2))
    wait_for(
        "node 2 is drained",
        lambda: c.manager.call("GET", f"/nodes/{c.ids[2]}")["Spec"]["Availability"] == "drain",
    )
    wait_for("no pay task runs on node 2", lambda: c.ids[2] not in c.running_on("pay"), 60)
    assert any("revoked" in r["reason"] for r in c.records() if r["object_ref"] == c.ids[2])
    assert c.records("cluster.drain")
    assert [r for r in c.records("moorage.attestation.revoke") if r["status"] == 200]
