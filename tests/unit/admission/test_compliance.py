"""Continuous compliance's pure core: running objects as create requests, results
keyed by what they depend on, per-rule actions, reports, and the gateway's guard."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from moorage.admission.compliance import Inputs, action_for, judge, result_key, running_set
from moorage.admission.compliance_report import compliance_run, policy_report, policy_reports, team_summary
from moorage.admission.guard import refusal
from moorage.admission.running import build_snapshot, container_body
from moorage.admission.sweeper import ComplianceResults, Sweeper
from moorage.images.formats.sarif import sarif_log
from moorage.policy.decision import ExceptionGrant, Facts, Request
from moorage.policy.documents import parse_document
from moorage.policy.loader import PolicySet, builtin_set
from moorage.policy.rules.images import ImageFacts
from moorage.store import open_store

MASKED = ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
          "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"]  # fmt: skip


def _container(cid: str, name: str, team: str, **host: Any) -> dict[str, Any]:
    """A container inspect document as the engine answers it (defaults filled in)."""
    hc = {"NetworkMode": "default", "PortBindings": {}, "CgroupnsMode": "host", "IpcMode": "private",
          "Privileged": False, "ReadonlyRootfs": False, "MaskedPaths": MASKED,
          "ReadonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
          "CapAdd": None, "CapDrop": None, "SecurityOpt": None, "Memory": 0, **host}  # fmt: skip
    return {
        "Id": cid, "Name": "/" + name, "Image": "sha256:img", "State": {"Status": "running"},
        "Config": {"Image": "busybox:1", "Cmd": ["sleep", "1"], "Labels": {"io.moorage.team": team,
                                                                         "io.moorage.owner": f"{team}-dev"}},
        "HostConfig": hc,
        "NetworkSettings": {"Networks": {"bridge": {"Aliases": None, "IPAMConfig": None}}},
    }  # fmt: skip


INFO = {"CgroupVersion": "1", "Name": "engine"}


def _snap(*containers: dict[str, Any]) -> Any:
    return build_snapshot(list(containers), info=INFO)


def _policy(text: str) -> PolicySet:
    return PolicySet(tuple(parse_document(text, "test.yaml")), "v-" + str(abs(hash(text)))[:8])


TIGHT = """
apiVersion: moorage.dev/v1
kind: Policy
metadata: {name: tight}
spec:
  mode: enforce
  packs: [baseline]
  resources: {require: [memory]}
  running:
    action: warn
    rules: {"resources.*": block-update, runtime.privileged: require-at-restart}
"""


def test_the_engine_defaults_in_an_inspect_are_not_findings() -> None:
    body = container_body(_container("c1", "plain", "pay"), "1")
    assert "MaskedPaths" not in body["HostConfig"] and "CgroupnsMode" not in body["HostConfig"]
    # on cgroup v2 hosts the daemon's default is private: host is then what the create asked for
    assert container_body(_container("c1", "x", "pay"), "2")["HostConfig"]["CgroupnsMode"] == "host"
    # fewer masked paths than the defaults is an unmasking, kept for the rules to judge
    assert container_body(_container("c1", "x", "pay", MaskedPaths=["/proc/kcore"]), "1")["HostConfig"][
        "MaskedPaths"
    ] == ["/proc/kcore"]
    pset = builtin_set("baseline", None)
    w = _snap(_container("c1", "plain", "pay")).top_level()[0]
    assert judge(pset, w, Inputs(pset.version), now=1.0).status == "pass"


def test_a_privileged_container_fails_and_names_rule_field_value_fix() -> None:
    pset = builtin_set("baseline", None)
    w = _snap(_container("c2", "priv", "pay", Privileged=True)).top_level()[0]
    report = judge(pset, w, Inputs(pset.version), now=5.0)
    item = next(i for i in report.items if i.rule == "runtime.privileged")
    assert (report.status, item.result, item.path, item.value, item.action) == (
        "fail",
        "fail",
        "HostConfig.Privileged",
        "true",
        "report",
    )
    assert item.fix and report.team == "pay" and report.owner == "pay-dev"


def test_mutations_do_not_cure_a_running_object() -> None:
    text = TIGHT.replace("resources: {require: [memory]}", "mutations: {noNewPrivileges: true}").replace(
        "packs: [baseline]", "packs: [restricted]")  # fmt: skip
    pset = _policy(text)
    w = _snap(_container("c3", "plain", "pay")).top_level()[0]
    rules = {i.rule for i in judge(pset, w, Inputs(pset.version), now=1.0).items}
    assert "runtime.no-new-privileges" in rules  # the gateway adds it on create; this one runs without
    assert running_set(pset) is running_set(pset)


def test_quota_rules_are_left_to_creation() -> None:
    pset = _policy(TIGHT.replace("resources: {require: [memory]}", "quotas: {containers: 0}"))
    w = _snap(_container("c4", "plain", "pay")).top_level()[0]
    assert not [i for i in judge(pset, w, Inputs(pset.version), now=1.0).items if i.rule.startswith("quota.")]


def test_actions_per_rule_family_and_default() -> None:
    pset = _policy(TIGHT)
    assert action_for(pset, "tight", "resources.memory-required") == "block-update"
    assert action_for(pset, "tight", "runtime.privileged") == "require-at-restart"
    assert action_for(pset, "tight", "runtime.host-namespace") == "warn"
    assert action_for(pset, "builtin-baseline", "runtime.privileged") == "report"


def test_the_key_changes_with_each_input() -> None:
    w = _snap(_container("c5", "plain", "pay")).top_level()[0]
    base = Inputs("p1", "db1", "att1", "exc1")
    key = result_key(w, base, None)
    assert key == result_key(w, Inputs("p1", "db1", "att1", "exc1"), None)
    for changed in (Inputs("p2", "db1", "att1", "exc1"), Inputs("p1", "db2", "att1", "exc1"),
                    Inputs("p1", "db1", "att2", "exc1"), Inputs("p1", "db1", "att1", "exc2")):  # fmt: skip
        assert result_key(w, changed, None) != key
    assert result_key(w, base, ImageFacts("busybox:1", findings=(("X-1", "p", "1", "high", ""),))) != key
    other = _snap(_container("c5", "plain", "pay", Privileged=True)).top_level()[0]
    assert result_key(other, base, None) != key


def test_an_exception_turns_a_failure_into_a_skip() -> None:
    pset = builtin_set("baseline", None)
    w = _snap(_container("c6", "priv", "pay", Privileged=True)).top_level()[0]
    grant = ExceptionGrant("exc-1", "runtime.*", 1e12, team="pay")
    report = judge(pset, w, Inputs(pset.version), facts=Facts(exceptions=(grant,)), now=1.0)
    item = next(i for i in report.items if i.rule == "runtime.privileged")
    assert item.result == "skip" and item.excepted_by == "exc-1"


def test_reports_in_the_policyreport_and_sarif_shapes() -> None:
    pset = builtin_set("baseline", None)
    snap = _snap(_container("c7", "priv", "pay", Privileged=True), _container("c8", "ok", "search"))
    reports = [judge(pset, w, Inputs(pset.version), now=1700000000.0) for w in snap.top_level()]
    doc = policy_report(reports[0])
    assert doc["apiVersion"] == "wgpolicyk8s.io/v1alpha2" and doc["kind"] == "PolicyReport"
    assert doc["scope"]["kind"] == "Container" and doc["summary"]["fail"] >= 1
    result = next(r for r in doc["results"] if r["rule"] == "runtime.privileged")
    assert result["properties"]["path"] == "HostConfig.Privileged" and result["properties"]["fix"]
    assert policy_report(reports[1])["results"][0]["result"] == "pass"
    assert len(policy_reports(reports)["items"]) == 2
    assert team_summary(reports) == {"pay": {"objects": 1, "pass": 0, "fail": 1, "warn": 0,
                                             "violations": len(reports[0].items)},
                                     "search": {"objects": 1, "pass": 1, "fail": 0, "warn": 0, "violations": 0}}  # fmt: skip
    sarif = sarif_log(compliance_run(reports))
    assert sarif["version"] == "2.1.0"
    results = sarif["runs"][0]["results"]
    assert any(r["ruleId"] == "runtime.privileged" and r["level"] == "error" for r in results)


def test_the_guard_refuses_updates_and_restarts_by_action() -> None:
    pset = _policy(TIGHT)
    w = _snap(_container("c9", "priv", "pay", Privileged=True)).top_level()[0]
    report = judge(pset, w, Inputs(pset.version), now=1.0)
    update = Request(
        "container.update", {"Memory": 1 << 26}, user="pay-dev", teams=("pay",), object_ref="priv"
    )
    refused = refusal(pset, update, report)
    assert refused is not None and "resources.memory-required" in refused[1]
    assert "may not be updated" in refused[0] and "moorage exception request" in refused[0]
    start = Request("container.start", None, user="pay-dev", teams=("pay",), object_ref="priv")
    refused = refusal(pset, start, report)
    assert refused is not None and refused[1] == ("runtime.privileged",)
    stop = Request("container.stop", None, user="pay-dev", teams=("pay",), object_ref="priv")
    assert refusal(pset, stop, report) is None  # nothing running is stopped or kept running by Moorage


def test_a_service_update_that_cures_the_rule_passes_the_guard() -> None:
    pset = _policy(TIGHT)
    spec = {"Name": "web", "Labels": {"io.moorage.team": "pay"},
            "TaskTemplate": {"ContainerSpec": {"Image": "busybox:1"}}}  # fmt: skip
    snap = build_snapshot([], [{"ID": "s1", "Spec": spec}], info=INFO)
    report = judge(pset, snap.top_level()[0], Inputs(pset.version), now=1.0)
    assert any(i.rule == "resources.memory-required" for i in report.items)
    same = Request("service.update", spec, user="pay-dev", teams=("pay",), object_ref="s1")
    assert refusal(pset, same, report) is not None
    cured = dict(spec, TaskTemplate={"ContainerSpec": {"Image": "busybox:1"},
                                     "Resources": {"Limits": {"MemoryBytes": 1 << 26}}})  # fmt: skip
    assert refusal(pset, Request("service.update", cured, user="pay-dev", teams=("pay",), object_ref="s1"),
                   report) is None  # fmt: skip


def test_a_sweep_judges_only_what_changed_and_forgets_what_is_gone(tmp_path: Path) -> None:
    store = open_store(None, tmp_path)
    results = ComplianceResults(store.database("compliance"))
    pset = builtin_set("baseline", None)
    warned: list[str] = []

    async def notify(r: Any) -> None:
        warned.append(r.name)

    sweeper = Sweeper(results, lambda: pset, None, clock=lambda: 1.0, notify=notify)
    snap = _snap(_container("a1", "one", "pay"), _container("a2", "two", "pay", Privileged=True))
    first = asyncio.run(sweeper.judge(snap))
    assert (first.objects, first.recomputed, first.failing) == (2, 2, 1)
    again = asyncio.run(sweeper.judge(snap))
    assert (again.recomputed, again.failing) == (0, 1)
    assert results.get("two") is not None and results.get("a2") is not None
    gone = asyncio.run(sweeper.judge(_snap(_container("a1", "one", "pay"))))
    assert (gone.objects, gone.failing) == (1, 0) and results.get("two") is None
    assert [s["recomputed"] for s in results.sweeps()] == [0, 0, 2]
    assert warned == []  # the built-in documents only report
    tight = _policy(TIGHT)
    sweeper.policies = lambda: tight
    asyncio.run(sweeper.judge(snap))
    assert sorted(warned) == ["one", "two"]
    assert json.loads(json.dumps(results.all()[0].as_dict()))["status"] == "fail"


def test_the_guard_finds_a_report_by_id_only_and_restart_rules_refuse_updates(tmp_path: Path) -> None:
    """A container named with another's id must not hide that one's report; an update
    could add a restart policy, so require-at-restart refuses it too."""
    store = open_store(None, tmp_path)
    results = ComplianceResults(store.database("compliance"))
    pset = _policy(TIGHT)
    bad_id = "b" * 64
    snap = _snap(_container(bad_id, "priv", "pay", Privileged=True), _container("d" * 64, bad_id, "pay"))
    asyncio.run(Sweeper(results, lambda: pset, None).judge(snap, images={}))
    assert results.get(bad_id) is None  # ambiguous by id-or-name: not what the guard uses
    report = results.by_id(bad_id)
    assert report is not None and report.name == "priv"
    update = Request("container.update", {"RestartPolicy": {"Name": "always"}}, user="pay-dev", teams=("pay",),
                     object_ref=bad_id)  # fmt: skip
    refused = refusal(pset, update, report)
    assert refused is not None and "runtime.privileged" in refused[1] and "may not be updated" in refused[0]
