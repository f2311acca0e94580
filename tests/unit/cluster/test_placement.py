"""Governed services' placement constraints and the labels Moorage projects."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from moorage.cluster.placement import (
    canonical_constraint,
    class_of_constraints,
    govern_service,
    moorage_labels,
    parse_constraint,
    projected_labels,
    required_constraints,
)

ENROLLED = "node.labels.io.moorage.enrolled==true"
PCI = "node.labels.io.moorage.attested.pci==true"
NOT_PCI = "node.labels.io.moorage.attested.pci!=true"


def body(*constraints: str) -> dict[str, Any]:
    return {"Name": "web", "TaskTemplate": {"Placement": {"Constraints": list(constraints)}}}


def constraints(b: Any) -> list[str]:
    out: list[str] = b["TaskTemplate"]["Placement"]["Constraints"]
    return out


@pytest.mark.parametrize(
    ("text", "canon"),
    [
        ("NODE.LABELS.io.moorage.enrolled == TRUE", ENROLLED),
        ("Node.Labels.Rack==R1", "node.labels.Rack==r1"),
        ("NODE.ID != Abc", "node.id!=abc"),
        ("  node.role==Worker  ", "node.role==worker"),
        ("no operator at all", "no operator at all"),
        ("node.labels.a==b!=c", "node.labels.a==b!=c"),
    ],
)
def test_canonical_constraint(text: str, canon: str) -> None:
    assert canonical_constraint(text) == canon


def test_parse_constraint_splits_like_swarmkit() -> None:
    assert parse_constraint(" node.role == manager ") == ("node.role", "==", "manager")
    assert parse_constraint("node.id!=x") == ("node.id", "!=", "x")
    assert parse_constraint("node.role") is None


@pytest.mark.parametrize("empty", [{}, {"TaskTemplate": None}, {"TaskTemplate": {"Placement": None}}])
def test_an_empty_body_gets_enrolled_nodes(empty: dict[str, Any]) -> None:
    out = govern_service(empty, "", set(), set())
    assert constraints(out.body) == [ENROLLED]
    assert out.added == [f"TaskTemplate.Placement.Constraints += {ENROLLED}"] and out.refused == []


def test_an_empty_pci_body_gets_enrolled_and_its_class() -> None:
    out = govern_service({}, "pci", set(), set())
    assert constraints(out.body) == [ENROLLED, PCI]
    assert len(out.added) == 2 and out.refused == []


def test_the_body_is_completed_in_place_and_keeps_its_other_constraints() -> None:
    b = body("node.role==worker")
    out = govern_service(b, "", set(), set())
    assert out.body is b
    assert constraints(b) == ["node.role==worker", ENROLLED]


def test_keys_are_found_in_any_case() -> None:
    b = {"taskTemplate": {"placement": {"constraints": ["node.role==worker"]}}}
    out = govern_service(b, "", set(), set())
    assert b["taskTemplate"]["placement"]["constraints"] == ["node.role==worker", ENROLLED]
    assert out.refused == []


def test_exclusive_classes_keep_other_services_off_their_nodes() -> None:
    plain = govern_service(body(), "", {"pci", "gold"}, set())
    assert constraints(plain.body) == [
        ENROLLED,
        "node.labels.io.moorage.attested.gold!=true",
        NOT_PCI,
    ]
    pci = govern_service(body(), "pci", {"pci", "gold"}, set())
    assert constraints(pci.body) == [ENROLLED, PCI, "node.labels.io.moorage.attested.gold!=true"]
    assert NOT_PCI not in constraints(pci.body)


def test_pins_apply_to_class_services_only() -> None:
    plain = govern_service(body(), "", set(), ["n3", "n1", "n3"])
    assert not any(c.startswith("node.id") for c in constraints(plain.body))
    pci = govern_service(body(), "pci", set(), ["n3", "n1", "n3"])
    assert constraints(pci.body) == [ENROLLED, PCI, "node.id!=n1", "node.id!=n3"]


def test_required_constraints() -> None:
    assert required_constraints("", [], []) == [ENROLLED]
    assert required_constraints("pci", ["pci"], ["n9"]) == [ENROLLED, PCI, "node.id!=n9"]


@pytest.mark.parametrize(
    ("cls", "constraint"),
    [
        ("pci", NOT_PCI),
        ("pci", "NODE.LABELS.io.moorage.attested.pci == false"),
        ("pci", "node.labels.io.moorage.enrolled!=true"),
        ("pci", "node.labels.IO.MOORAGE.attested.pci==true"),
        ("pci", "node.labels.io.moorage.attested.gold==true"),
        ("", "node.labels.io.moorage.attested.pci==true"),
        ("", "node.labels.io.moorage.enrolled==false"),
        ("", "node.labels.Io.Moorage.enrolled==true"),
        ("", "node.labels.io.moorage.enrolled"),
        ("pci", "node.labels.io.moorage.attested.PCI==true"),
    ],
)
def test_constraints_on_moorages_labels_are_refused(cls: str, constraint: str) -> None:
    out = govern_service(body(constraint), cls, {"pci"}, set())
    assert [(f, v) for f, v, _ in out.refused] == [("TaskTemplate.Placement.Constraints[0]", constraint)]
    assert "io.moorage." in out.refused[0][2]


def test_a_refusal_names_the_constraint_by_index() -> None:
    out = govern_service(body("node.role==worker", ENROLLED, NOT_PCI), "pci", set(), set())
    assert [f for f, _, _ in out.refused] == ["TaskTemplate.Placement.Constraints[2]"]


@pytest.mark.parametrize(
    "constraint",
    ["NODE.LABELS.io.moorage.enrolled == TRUE", "node.labels.io.moorage.enrolled==true"],
)
def test_a_spelling_of_enrolled_is_accepted_and_not_added_twice(constraint: str) -> None:
    out = govern_service(body(constraint), "pci", set(), set())
    assert out.refused == []
    assert constraints(out.body) == [constraint, PCI]
    assert out.added == [f"TaskTemplate.Placement.Constraints += {PCI}"]


def test_a_spelling_of_the_class_is_accepted_and_not_added_twice() -> None:
    out = govern_service(body("node.labels.io.moorage.attested.pci==True"), "pci", set(), set())
    assert out.refused == []
    assert constraints(out.body) == ["node.labels.io.moorage.attested.pci==True", ENROLLED]


def test_an_exclusion_spelt_otherwise_is_accepted_on_other_services() -> None:
    out = govern_service(body("Node.Labels.io.moorage.attested.pci != TRUE"), "", {"pci"}, set())
    assert out.refused == []
    assert constraints(out.body) == ["Node.Labels.io.moorage.attested.pci != TRUE", ENROLLED]


def test_a_body_sent_back_on_update_changes_nothing() -> None:
    first = govern_service(body("node.role==worker"), "pci", {"pci", "gold"}, {"n2"})
    sent_back = copy.deepcopy(first.body)
    again = govern_service(sent_back, "pci", {"pci", "gold"}, {"n2"})
    assert again.added == [] and again.refused == []
    assert again.body == first.body


def test_a_dropped_required_constraint_comes_back() -> None:
    first = govern_service(body(), "pci", set(), {"n2"})
    cons = [c for c in constraints(first.body) if c != "node.id!=n2"]
    again = govern_service(body(*cons), "pci", set(), {"n2"})
    assert again.added == ["TaskTemplate.Placement.Constraints += node.id!=n2"]


@pytest.mark.parametrize("odd", [None, "text", [], {"TaskTemplate": "x"}, {"TaskTemplate": {"Placement": 3}}])
def test_bodies_of_the_wrong_shape_are_left_alone(odd: Any) -> None:
    out = govern_service(odd, "pci", set(), set())
    assert out.added == [] and out.refused == []


def test_class_of_constraints() -> None:
    assert class_of_constraints([PCI, ENROLLED, "node.id!=x"]) == {"pci"}
    assert class_of_constraints(["NODE.LABELS.io.moorage.attested.gold == TRUE", NOT_PCI]) == {"gold"}
    assert class_of_constraints(["node.labels.io.moorage.attested.==true"]) == set()
    assert class_of_constraints(["node.labels.io.moorage.attested.pci==false"]) == set()
    assert class_of_constraints(["node.labels.IO.MOORAGE.attested.pci==true"]) == set()
    assert class_of_constraints(["no operator"]) == set()


def test_projected_labels() -> None:
    assert projected_labels(False, ["pci"]) == {}
    assert projected_labels(True, ["pci"]) == {
        "io.moorage.enrolled": "true",
        "io.moorage.attested.pci": "true",
    }
    assert projected_labels(True, []) == {"io.moorage.enrolled": "true"}


def test_moorage_labels_catch_every_case() -> None:
    labels = {"IO.Moorage.x": "1", "io.moorage.enrolled": "true", "rack": "r1", "io.moorag": "z"}
    assert moorage_labels(labels) == {"IO.Moorage.x": "1", "io.moorage.enrolled": "true"}


def service(*constraints: str) -> dict[str, Any]:
    return {"TaskTemplate": {"Placement": {"Constraints": list(constraints)}}}


def test_every_service_gets_enrolled_nodes_and_class_services_their_class() -> None:
    plain = govern_service(service(), "", {"pci"}, {"n3"})
    assert plain.body["TaskTemplate"]["Placement"]["Constraints"] == [
        "node.labels.io.moorage.enrolled==true",
        "node.labels.io.moorage.attested.pci!=true",
    ]
    pci = govern_service(service(), "pci", {"pci"}, {"n3"})
    assert pci.body["TaskTemplate"]["Placement"]["Constraints"] == [
        "node.labels.io.moorage.enrolled==true",
        "node.labels.io.moorage.attested.pci==true",
        "node.id!=n3",
    ]
    again = govern_service(pci.body, "pci", {"pci"}, {"n3"})
    assert again.added == [] and again.refused == []


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
def test_constraints_on_moorages_labels_are_refused_in_any_spelling(constraint: str) -> None:
    assert govern_service(service(constraint), "pci", set(), set()).refused


@pytest.mark.parametrize(
    "constraint",
    [
        "NODE.LABELS.io.moorage.enrolled == TRUE",
        "node.labels.io.moorage.attested.pci==True",
        "node.role==worker",
    ],
)
def test_spellings_that_mean_what_moorage_requires_pass(constraint: str) -> None:
    out = govern_service(service(constraint), "pci", set(), set())
    assert out.refused == []
    assert len(
        {canonical_constraint(c) for c in out.body["TaskTemplate"]["Placement"]["Constraints"]}
    ) == len(out.body["TaskTemplate"]["Placement"]["Constraints"])


def test_the_projection_and_classes() -> None:
    assert projected_labels(False, ["pci"]) == {}
    assert projected_labels(True, ["pci"]) == {
        "io.moorage.enrolled": "true",
        "io.moorage.attested.pci": "true",
    }
    assert moorage_labels({"IO.Moorage.x": "1", "rack": "r1"}) == {"IO.Moorage.x": "1"}
    assert class_of_constraints(["node.labels.io.moorage.attested.pci == TRUE", "node.id!=x"]) == {"pci"}
