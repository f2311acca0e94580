"""Reading the engine's node and swarm documents."""

from __future__ import annotations

from moorage.cluster import trust
from moorage.cluster.attestation import trust_root_digest
from moorage.cluster.views import NodeView, SwarmView
from tests.unit.cluster.fakes import PEM, node_doc


def test_a_node_document_is_read_field_by_field() -> None:
    node = NodeView.from_engine(node_doc("n7"))
    assert (node.id, node.hostname, node.role) == ("n7", "host-n7", "worker")
    assert node.trust_root == trust_root_digest(PEM)


def test_missing_parts_read_as_empty() -> None:
    node = NodeView.from_engine({})
    assert (node.id, node.trust_root, node.labels, node.version, node.spec) == ("", "", {}, 0, {})
    swarm = SwarmView.from_engine({"ID": "s"})
    assert (swarm.id, swarm.trust_root, swarm.version, swarm.spec) == ("s", "", 0, {})


def test_the_views_are_still_importable_from_trust() -> None:
    assert (trust.NodeView, trust.SwarmView) == (NodeView, SwarmView)
