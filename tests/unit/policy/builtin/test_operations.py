"""The operation rules, as rule objects, report what ``check_operation`` does, the
network rules field by field."""

from __future__ import annotations

from moorage.policy.builtin.operations import NETWORK_OPERATIONS, Operations
from moorage.policy.loader import builtin_set
from moorage.policy.request import Facts, Request
from moorage.policy.rule import Each, Subject
from moorage.policy.rules.operations import check_operation
from tests.unit.policy.builtin.subjects import subjects


def test_the_operation_rules_report_what_check_operation_does() -> None:
    for subject in subjects("baseline"):
        op, req = subject.operation, subject.req
        assert op is not None
        expected = check_operation(
            req.kind, req.body, req.query, req.object_ref, op.plugin_allow, op.facts, op.subnets
        )
        assert Operations().findings(subject) == expected


def test_the_network_rules_report_field_by_field() -> None:
    body = {
        "Image": "busybox",
        "HostConfig": {"NetworkMode": "host"},
        "NetworkingConfig": {
            "EndpointsConfig": {"host": {"DriverOpts": {"a": "1"}}, "web": {"DriverOpts": {"b": "2"}}}
        },
    }
    doc = builtin_set("baseline", None).documents[0]
    subject = Subject.of(doc, Request("container.create", body, user="alice"), body, Facts(), {}, False)
    assert [(f.rule, f.path) for f in Operations().findings(subject)] == [
        ("network.host", "HostConfig.NetworkMode"),
        ("network.host", "NetworkingConfig.EndpointsConfig.host"),
        ("network.driver-option", "NetworkingConfig.EndpointsConfig.host.DriverOpts.a"),
        ("network.driver-option", "NetworkingConfig.EndpointsConfig.web.DriverOpts.b"),
    ]


def test_field_by_field_reports_what_each_of_its_rules_does() -> None:
    plain = Each(*NETWORK_OPERATIONS.rules)
    for subject in subjects("baseline"):
        assert NETWORK_OPERATIONS.findings(subject) == plain.findings(subject)
