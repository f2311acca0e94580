"""The built-in rule objects: each carries the catalog's documentation of its id,
reports only its own id, and the packs composed of them report what the rule
functions do, in the same order."""

from __future__ import annotations

import pytest

from moorage.policy.builtin.operations import Operations
from moorage.policy.builtin.runtime import PACKS, RuntimeRule
from moorage.policy.loader import builtin_set
from moorage.policy.pack import BUILT_IN, built_in_rules
from moorage.policy.request import Facts, Request
from moorage.policy.rule import Family, Subject
from moorage.policy.rules import RULES
from moorage.policy.rules.operations import check_operation
from moorage.policy.rules.runtime import check

HOSTILE = {
    "Image": "busybox",
    "User": "0",
    "HostConfig": {
        "Privileged": True,
        "CapAdd": ["SYS_ADMIN", "NET_RAW"],
        "PidMode": "host",
        "NetworkMode": "host",
        "Binds": ["/var/run/docker.sock:/s", "/etc:/e", "/run:/r", "/srv:/x"],
        "Devices": [{"PathOnHost": "/dev/sda", "PathInContainer": "/dev/sda"}],
        "SecurityOpt": ["seccomp=unconfined", "apparmor=mine", "label=type:spc_t", "bogus=1"],
        "Runtime": "kata",
        "LogConfig": {"Type": "syslog"},
        "Sysctls": {"kernel.shm_rmid_forced": "1", "net.ipv4.ip_forward": "1"},
        "OomScoreAdj": -500,
    },
}

SUBJECTS = [
    ("container.create", HOSTILE, {}),
    ("container.create", {"Image": "busybox"}, {}),
    ("image.build", None, {"networkmode": ["host"], "cgroupparent": ["x"], "isolation": ["hyperv"],
                           "remote": ["http://x"], "securityopt": ["a", "b"]}),
    ("image.pull", None, {"fromSrc": ["http://x"]}),
    ("container.update", {"Privileged": True, "Memory": 1}, {}),
    ("swarm.init", {"Spec": {"CAConfig": {"SigningCAKey": "k", "ExternalCAs": [{}]}}}, {}),
    ("swarm.join", {"RemoteAddrs": ["x"]}, {}),
    ("plugin.create", None, {}),
    ("network.create", {"Driver": "macvlan", "Options": {"x": "1"}, "IPAM": {"Driver": "y"}, "Ingress": True}, {}),
    ("system.shutdown", None, {}),
]  # fmt: skip


def _subjects(pack: str) -> list[Subject]:
    doc = builtin_set(pack, None).documents[0]
    return [
        Subject.of(doc, Request(kind, body, user="alice", query=query), body, Facts(), {}, False)
        for kind, body, query in SUBJECTS
    ]


def test_every_rule_object_carries_the_catalog_entry_of_its_id() -> None:
    rules = [r for r in built_in_rules() if not isinstance(r, Family)]
    assert rules and all(RULES[r.id] is r.doc for r in rules)


def test_only_the_runtime_reading_reports_several_ids() -> None:
    objects = built_in_rules()
    carried = {r.id for r in objects if not isinstance(r, Family)}
    assert {r.name for r in objects if isinstance(r, Family)} == {"runtime, as read"}
    # allow-list misses only the runtime view's reader finds, reported in reading order
    assert set(RULES) - carried == {
        "runtime.cgroup", "runtime.masked-paths", "runtime.mount", "runtime.oom-score",
        "runtime.security-opt", "runtime.volume-driver", "runtime.volume-options",
    }  # fmt: skip


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


@pytest.mark.parametrize("pack", ["baseline", "restricted"])
def test_each_rule_reports_only_its_own_id(pack: str) -> None:
    seen: set[str] = set()
    for subject in _subjects(pack):
        for rule in built_in_rules():
            if isinstance(rule, Family):
                continue
            found = rule.findings(subject)
            assert {f.rule for f in found} <= {rule.id}, rule.id
            seen |= {f.rule for f in found}
    assert len(seen) > 20  # the subjects reach most rules


@pytest.mark.parametrize("pack", ["baseline", "restricted"])
def test_a_pack_reports_what_the_runtime_check_does(pack: str) -> None:
    for subject in _subjects(pack):
        if subject.runtime is not None:
            assert PACKS[pack].findings(subject) == check(
                subject.runtime, pack, subject.doc.compiled.runtime_allow
            )
    assert all(r.pack == pack for r in PACKS[pack].members if isinstance(r, RuntimeRule))


def test_the_operation_rules_report_what_check_operation_does() -> None:
    for subject in _subjects("baseline"):
        op, req = subject.operation, subject.req
        assert op is not None
        expected = check_operation(
            req.kind, req.body, req.query, req.object_ref, op.plugin_allow, op.facts, op.subnets
        )
        assert Operations().findings(subject) == expected


def test_the_built_in_composition_reports_the_runtime_view_before_the_operations() -> None:
    found = BUILT_IN.findings(_subjects("baseline")[0])
    rules = [f.rule for f in found]
    assert rules[0] == "runtime.privileged"
    assert rules.index("runtime.docker-socket") < rules.index("runtime.host-path")
    # NetworkMode=host is reported once, by the runtime view, not again by the operations
    assert [f.path for f in found].count("HostConfig.NetworkMode") == 1


def test_field_by_field_reports_what_each_of_its_rules_does() -> None:
    from moorage.policy.builtin.operations import NETWORK_OPERATIONS
    from moorage.policy.rule import Each

    plain = Each(*NETWORK_OPERATIONS.rules)
    for subject in _subjects("baseline"):
        assert NETWORK_OPERATIONS.findings(subject) == plain.findings(subject)
