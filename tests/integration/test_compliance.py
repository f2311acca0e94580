"""Continuous compliance against a real engine: lab, policy, image and database
changes each show in the report after one sweep; --against-running lists exactly
what a tightened rule catches; rule actions hold at the gateway."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from moorage.admission.compliance import ObjectReport
from moorage.admission.images import ImageGate
from moorage.admission.pipeline import PolicyAdmission
from moorage.admission.sweeper import ComplianceResults, Sweeper
from moorage.engine import EngineClient
from moorage.images.scanner import Scanner
from moorage.images.vulns.osv import OsvDatabase
from moorage.lab import Lab
from moorage.lab.images import BUSYBOX_REF
from moorage.policy.documents import parse_document
from moorage.policy.loader import PolicySet, builtin_set
from moorage.store import open_store
from tests.conftest import busybox_lab, unique_name
from tests.gateway_harness import RunningGateway, docker, ok

OSV = Path(__file__).parent.parent / "fixtures" / "osv" / "pypi"
VULN = """
apiVersion: moorage.dev/v1
kind: Policy
metadata: {name: patched}
spec:
  mode: enforce
  images: {vulnerabilities: {maxSeverity: medium}}
"""
TIGHT = """
apiVersion: moorage.dev/v1
kind: Policy
metadata: {name: tight}
spec:
  mode: enforce
  packs: [baseline]
  resources: {require: [memory]}
  running:
    rules: {resources.memory-required: block-update, runtime.*: require-at-restart}
"""


def _policy(text: str, version: str) -> PolicySet:
    return PolicySet(tuple(parse_document(text, f"{version}.yaml")), version)


class Env:
    def __init__(self, lab: Lab, work: Path) -> None:
        self.lab, self.work = lab, work
        self.engine = EngineClient(lab.docker_host(1).removeprefix("unix://"), timeout=300)
        self.db = OsvDatabase(work / "vulndb.sqlite")
        self.gate = ImageGate(Scanner(work / "cache", self.db), self.engine)
        self.results = ComplianceResults(open_store(None, work / "store").database("compliance"))
        self.policy = builtin_set("baseline", None)
        self.sweeper = Sweeper(self.results, lambda: self.policy, self.engine, self.gate)

    def docker(self, *args: str) -> str:
        env = {**os.environ, "DOCKER_HOST": self.lab.docker_host(1), "DOCKER_BUILDKIT": "0"}
        proc = subprocess.run(["docker", *args], capture_output=True, text=True, env=env, timeout=180)
        assert proc.returncode == 0, f"docker {' '.join(args)}: {proc.stderr}"
        return proc.stdout.strip()

    def sweep(self) -> dict[str, ObjectReport]:
        asyncio.run(self.sweeper.sweep("test"))
        return {r.name: r for r in self.results.all()}

    def build(self, tag: str, packages: dict[str, str]) -> None:
        ctx = self.work / f"ctx-{tag.replace(':', '-').replace('/', '-')}"
        for name, version in packages.items():
            info = ctx / "site" / f"{name}-{version}.dist-info"
            info.mkdir(parents=True)
            (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        (ctx / "site").mkdir(parents=True, exist_ok=True)
        (ctx / "Dockerfile").write_text(f"FROM {BUSYBOX_REF}\nCOPY site /usr/lib/python3.11/site-packages\n")
        self.docker("build", "-q", "-t", tag, str(ctx))


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with busybox_lab("cmp") as lab:
        yield Env(lab, tmp_path_factory.mktemp("compliance"))


def test_lab_policy_image_and_database_changes_each_show_after_one_sweep(env: Env) -> None:
    env.docker("run", "-d", "--name", "plain", BUSYBOX_REF, "sleep", "600")
    env.docker(
        "create", "--name", "priv", "--privileged", BUSYBOX_REF, "sleep", "600"
    )  # runc here refuses the caps
    got = env.sweep()
    assert got["plain"].status == "pass" and got["priv"].status == "fail"
    assert {i.rule for i in got["priv"].items} >= {"runtime.privileged"}
    # the lab changes: a new container is judged, a removed one is forgotten
    env.docker("run", "-d", "--name", "hostnet", "--network", "host", BUSYBOX_REF, "sleep", "600")
    env.docker("rm", "-f", "priv")
    got = env.sweep()
    assert "priv" not in got and got["hostnet"].status == "fail"
    assert any(
        i.rule.startswith("network.") or i.path == "HostConfig.NetworkMode" for i in got["hostnet"].items
    )
    env.docker("rm", "-f", "hostnet")
    # the policy changes: a tightened one catches what the old one let run
    env.policy = _policy(TIGHT, "tight-1")
    got = env.sweep()
    assert [i.rule for i in got["plain"].items if i.result == "fail"] == ["resources.memory-required"]
    # the image changes: the workload now runs an image with a vulnerable package
    env.policy = _policy(VULN, "vuln-1")
    env.db.update(str(OSV))
    env.build("cmp/app:1", {})
    env.docker("run", "-d", "--name", "app", "cmp/app:1", "sleep", "600")
    assert env.sweep()["app"].status == "pass"
    env.build("cmp/app:2", {"urllib3": "1.24.1"})
    env.docker("rm", "-f", "app")
    env.docker("run", "-d", "--name", "app", "cmp/app:2", "sleep", "600")
    got = env.sweep()
    assert got["app"].status == "fail"
    assert any(
        i.rule == "images.vulnerabilities" and "urllib3" in i.message + i.value for i in got["app"].items
    )


def test_a_database_change_is_reflected_within_one_sweep(env: Env, tmp_path: Path) -> None:
    env.policy = _policy(VULN, "vuln-2")
    env.build("cmp/db:1", {"urllib3": "1.24.1"})
    env.docker("run", "-d", "--name", "dbcase", "cmp/db:1", "sleep", "600")
    partial = tmp_path / "osv"
    partial.mkdir()
    for f in OSV.glob("*.json"):
        if "urllib3" not in f.read_text():
            shutil.copy(f, partial / f.name)
    env.db = env.gate.scanner.db = OsvDatabase(tmp_path / "fresh.sqlite")  # a database without those records
    env.db.update(str(partial))
    got = env.sweep()
    assert got["dbcase"].status == "pass", got["dbcase"].items
    env.db.update(str(OSV))  # new records: a new database version
    got = env.sweep()
    assert got["dbcase"].status == "fail"
    assert any(i.rule == "images.vulnerabilities" for i in got["dbcase"].items)
    env.docker("rm", "-f", "dbcase")


def test_against_running_lists_exactly_the_workloads_a_tightened_rule_catches(
    env: Env, tmp_path: Path
) -> None:
    names = []
    for i, memory in enumerate(("", "64m", "")):
        name = f"ar-{i}"
        names.append(name)
        env.docker(
            "run",
            "-d",
            "--name",
            name,
            *(["--memory", memory] if memory else []),
            BUSYBOX_REF,
            "sleep",
            "600",
        )
    (tmp_path / "tight.yaml").write_text(TIGHT)
    proc = subprocess.run([sys.executable, "-m", "moorage.cli.main", "policy", "check", "--against-running",
                           str(tmp_path), "--host", env.lab.docker_host(1), "--data-dir", str(tmp_path), "--json"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    caught = {o["name"] for o in json.loads(proc.stdout)["would_fail"]}
    running = set(env.docker("ps", "--format", "{{.Names}}").split())
    expected = {n for n in running if n != "ar-1"}  # every running container lacks a limit but ar-1
    assert caught == expected and {"ar-0", "ar-2"} <= caught
    table = subprocess.run([sys.executable, "-m", "moorage.cli.main", "policy", "check", "--against-running",
                            str(tmp_path), "--host", env.lab.docker_host(1), "--data-dir", str(tmp_path)],
                           capture_output=True, text=True, timeout=120, env={**os.environ, "NO_COLOR": "1"})  # fmt: skip
    assert "resources.memory-required" in table.stdout and "would fall out of compliance" in table.stdout
    for name in names:
        env.docker("rm", "-f", name)


def test_rule_actions_hold_at_the_gateway(env: Env, tmp_path: Path) -> None:
    """block-update refuses an update, require-at-restart a start; stop still works."""
    folder = Path(f"/tmp/moorage-{unique_name('cg')}")
    folder.mkdir(mode=0o755)
    env.policy = builtin_set("baseline", None)
    admission = PolicyAdmission(env.policy, compliance=env.results)
    gw = RunningGateway(env.lab.docker_host(1), folder / "docker.sock", admission=admission)
    try:
        ok(docker(gw, "run", "-d", "--name", "guarded", BUSYBOX_REF, "sleep", "600", user="alice"))
        ok(docker(gw, "update", "--cpus", "0.5", "guarded", user="alice"))  # compliant: allowed
        env.policy = _policy(TIGHT, "tight-2")
        admission.policies = env.policy
        assert env.sweep()["guarded"].status == "fail"
        refused = docker(gw, "update", "--cpus", "0.25", "guarded", user="alice")
        assert refused.returncode != 0 and "may not be updated" in refused.stderr, refused.stderr
        assert "resources.memory-required" in refused.stderr
        short = env.engine.call("GET", "/containers/guarded/json")["Id"][:5]
        by_prefix = docker(
            gw, "update", "--cpus", "0.25", short, user="alice"
        )  # any spelling the engine takes
        assert by_prefix.returncode != 0 and "may not be updated" in by_prefix.stderr, by_prefix.stderr
        ok(docker(gw, "stop", "-t", "0", "guarded", user="alice"))  # nothing is kept running either
        text = TIGHT.replace("resources.memory-required: block-update", "resources.*: require-at-restart")
        env.policy = _policy(text, "tight-3")
        admission.policies = env.policy
        env.sweep()
        started = docker(gw, "start", "guarded", user="alice")
        assert started.returncode != 0 and "may not be started again" in started.stderr, started.stderr
        state = env.engine.call("GET", "/containers/guarded/json")["State"]
        assert not state["Running"]  # the engine agrees: refused, not run
    finally:
        gw.stop()
        shutil.rmtree(folder, ignore_errors=True)
        env.docker("rm", "-f", "guarded")


def test_the_compliance_commands_sweep_and_report_in_each_format(env: Env, tmp_path: Path) -> None:
    env.docker("create", "--name", "cli-priv", "--privileged", BUSYBOX_REF, "true")
    env.docker("create", "--name", "cli-ok", "--label", "x=y", BUSYBOX_REF, "true")

    def moorage(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "moorage.cli.main", *args, "--data-dir", str(tmp_path)],
                              capture_output=True, text=True, timeout=120, env={**os.environ, "NO_COLOR": "1"})  # fmt: skip

    sweep = moorage("compliance", "sweep", "--host", env.lab.docker_host(1), "--json")
    assert sweep.returncode == 0, sweep.stderr
    assert json.loads(sweep.stdout)["failing"] >= 1
    table = moorage("compliance", "report")
    assert (
        table.returncode == 1
        and "container/cli-priv" in table.stdout
        and "runtime.privileged" in table.stdout
    )
    # the restricted pack is in audit mode by default: its findings warn
    assert re.search(r"container/cli-ok\s+WARN", table.stdout) and re.search(
        r"container/cli-priv\s+FAIL", table.stdout
    )
    reports = json.loads(moorage("compliance", "report", "--format", "policyreport").stdout)
    priv = next(r for r in reports["items"] if r["scope"]["name"] == "cli-priv")
    assert priv["kind"] == "PolicyReport" and priv["summary"]["fail"] >= 1
    assert any(r["rule"] == "runtime.privileged" and r["properties"]["path"] == "HostConfig.Privileged"
               for r in priv["results"])  # fmt: skip
    sarif = json.loads(moorage("compliance", "report", "--format", "sarif").stdout)
    assert any(r["ruleId"] == "runtime.privileged" for r in sarif["runs"][0]["results"])
    assert "(unowned)" in moorage("compliance", "report", "--format", "summary").stdout
    env.docker("rm", "-f", "cli-priv", "cli-ok")


SURFACE = """
apiVersion: moorage.dev/v1
kind: Policy
metadata: {name: pci-surface}
spec:
  mode: enforce
  scope: {labels: {moorage.class: pci}}
  images:
    surface: {shells: forbid, packageManagers: forbid, maxPackages: 10, maxSize: 1m, bases: ["cmp/approved-base:*"]}
"""


def test_attack_surface_rules_are_reported_for_running_workloads_and_refused_at_creation(env: Env) -> None:
    """busybox has a shell and applets that pose as package managers; it is 2 MB and has no allowed base."""
    env.policy = _policy(SURFACE, "surface-1")
    env.docker("create", "--name", "pci-app", "--label", "moorage.class=pci", BUSYBOX_REF, "true")
    env.docker("create", "--name", "other-app", BUSYBOX_REF, "true")  # not of the class: not judged by it
    got = env.sweep()
    rules = {i.rule: i for i in got["pci-app"].items}
    assert {"images.surface.shell", "images.surface.package-manager", "images.surface.size",
            "images.surface.base"} <= set(rules), rules  # fmt: skip
    assert rules["images.surface.shell"].value.startswith("/bin/") and rules["images.surface.shell"].fix
    assert not any(i.rule.startswith("images.surface") for i in got["other-app"].items)
    admission = PolicyAdmission(env.policy, images=env.gate)
    folder = Path(f"/tmp/moorage-{unique_name('cs')}")
    folder.mkdir(mode=0o755)
    gw = RunningGateway(env.lab.docker_host(1), folder / "docker.sock", admission=admission)
    try:
        refused = docker(gw, "create", "--label", "moorage.class=pci", BUSYBOX_REF, "true", user="alice")
        assert refused.returncode != 0 and "images.surface.shell" in refused.stderr, refused.stderr
        assert (
            len(env.docker("ps", "-aq", "--filter", "label=moorage.class=pci").split()) == 1
        )  # the engine agrees
        ok(docker(gw, "create", "--name", "plain-class", BUSYBOX_REF, "true", user="alice"))
    finally:
        gw.stop()
        shutil.rmtree(folder, ignore_errors=True)
        env.docker("rm", "-f", "pci-app", "other-app", "plain-class")
