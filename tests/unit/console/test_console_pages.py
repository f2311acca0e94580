"""Console pages whose data needs more than a snapshot: the nodes page on a governed
swarm (enrolment, attestation problems, drift between a node's labels and the store)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from moorage.admission.running import build_snapshot
from moorage.cluster.store import ClusterStore
from moorage.cluster.trust import ClusterTrust
from moorage.console.auth import Viewer
from moorage.console.pages import Pages
from moorage.console.views import ConsoleContext
from moorage.policy.loader import builtin_set

NODES = [
    {"ID": "n1", "Version": {"Index": 3}, "Spec": {"Role": "manager", "Availability": "active",
                                                    "Labels": {"io.moorage.enrolled": "true"}},
     "Description": {"Hostname": "m1"}, "Status": {"State": "ready"}},
    {"ID": "n2", "Version": {"Index": 4}, "Spec": {"Role": "worker", "Availability": "active",
                                                    "Labels": {"io.moorage.attested.pci": "true"}},
     "Description": {"Hostname": "w2"}, "Status": {"State": "ready"}},
]  # fmt: skip


class Engine:
    def call(self, method: str, path: str) -> Any:
        return {"/nodes": NODES, "/swarm": {"ID": "swarm-1", "Version": {"Index": 1}, "Spec": {}}}[path]


def test_the_nodes_page_shows_enrolment_and_drift_from_the_store(tmp_path: Path) -> None:
    store = ClusterStore.in_folder(tmp_path)
    store.enrol("n1", "swarm-1", "olga", 1.0)
    trust = ClusterTrust(store, lambda: {})
    ctx = ConsoleContext(tmp_path, None, None, None, lambda: builtin_set(), Engine(), cluster=trust)  # type: ignore[arg-type]
    snap = build_snapshot([], nodes=NODES, info={"Swarm": {"NodeID": "n1"}})
    officer = Viewer("sofia", ("security",), ("security-officer",), "console:oidc", 1e12, "n")
    rows = {r["node"].id: r for r in Pages(ctx, lambda *a, **k: None, None)._node_rows(snap, officer, set())}  # type: ignore[arg-type]
    assert rows["n1"]["enrolled"] and rows["n1"]["drift"] == {}
    # n2 carries an attestation label nobody vouches for, and isn't enrolled: drift
    assert not rows["n2"]["enrolled"]
    assert rows["n2"]["drift"] == {"io.moorage.attested.pci": ("true", None)}
    developer = Viewer("pat", ("payments",), ("developer",), "console:oidc", 1e12, "n")
    assert Pages(ctx, lambda *a, **k: None, None)._node_rows(snap, developer, {"n2"})[0]["node"].id == "n2"  # type: ignore[arg-type]
