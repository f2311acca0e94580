"""Policy through the gateway, in front of a real dockerd, driven by the real CLIs:
quotas under concurrency, exceptions end to end, warnings, mutations, reload."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from moorage.admission.exceptions import ExceptionStore
from moorage.admission.pipeline import PolicyAdmission
from moorage.audit import JsonLinesSink
from moorage.lab import Lab
from moorage.lab.images import BUSYBOX_REF
from tests.conftest import busybox_lab, unique_name
from tests.gateway_harness import DOCKER_CLIS, RunningGateway, docker, moorage, ok

POLICY = """\
apiVersion: moorage.dev/v1
kind: Policy
metadata: {name: org}
spec:
  mode: enforce
  packs: [baseline]
  mutations: {noNewPrivileges: true, pidsLimit: 300}
---
apiVersion: moorage.dev/v1
kind: Policy
metadata: {name: payments-quota}
spec:
  scope: {teams: [payments]}
  quotas: {containers: 5}
---
apiVersion: moorage.dev/v1
kind: Policy
metadata: {name: restricted-audit}
spec:
  mode: audit
  packs: [restricted]
"""


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with busybox_lab("pol") as lab:
        yield lab


class PolicyGateway:
    def __init__(self, lab: Lab, folder: Path) -> None:
        self.folder = folder
        (folder / "policies").mkdir(parents=True)
        (folder / "policies" / "org.yaml").write_text(POLICY)
        os.chmod(folder, 0o755)
        self.store = ExceptionStore.in_folder(folder)
        self.admission = PolicyAdmission(source=folder / "policies", exceptions=self.store)
        self.audit = JsonLinesSink(folder / "audit.jsonl")
        self.gw = RunningGateway(lab.docker_host(1), folder / "docker.sock", audit=self.audit,
                                 admission=self.admission, exceptions=self.store)  # fmt: skip

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in (self.folder / "audit.jsonl").read_text().splitlines()]


@pytest.fixture
def pg(lab: Lab) -> Iterator[PolicyGateway]:
    folder = Path(f"/tmp/moorage-{lab.name}-{unique_name('pg')}")
    folder.mkdir()
    gateway = PolicyGateway(lab, folder)
    try:
        yield gateway
    finally:
        left = ok(docker(gateway.gw, "ps", "-aq")).split()
        if left:
            ok(docker(gateway.gw, "rm", "-f", *left))
        gateway.gw.stop()
        gateway.store.close()
        shutil.rmtree(folder, ignore_errors=True)


def test_ten_concurrent_creates_against_a_quota_of_five_get_exactly_five(pg: PolicyGateway) -> None:
    results: list[Any] = [None] * 10

    def create(i: int) -> None:
        results[i] = docker(pg.gw, "create", "--name", f"q{i}", BUSYBOX_REF, "true", user="alice")

    threads = [threading.Thread(target=create, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    made = [r for r in results if r.returncode == 0]
    refused = [r for r in results if r.returncode != 0]
    assert len(made) == 5, [r.stderr for r in results]
    for r in refused:
        assert "quota.containers" in r.stderr and "over its quota of 5" in r.stderr
    listed = ok(docker(pg.gw, "ps", "-aq", user="alice")).split()
    assert len(listed) == 5
    # another team is counted apart
    ok(docker(pg.gw, "create", "--name", "bob-1", BUSYBOX_REF, "true", user="bob"))
    # removing one frees a slot
    ok(docker(pg.gw, "rm", listed[0], user="alice"))
    ok(docker(pg.gw, "create", BUSYBOX_REF, "true", user="alice"))
    assert docker(pg.gw, "create", BUSYBOX_REF, "true", user="alice").returncode != 0


@pytest.mark.parametrize("cli", DOCKER_CLIS)
def test_warnings_and_mutations_reach_the_cli_the_engine_and_the_trail(pg: PolicyGateway, cli: str) -> None:
    out = docker(pg.gw, "run", "--rm", BUSYBOX_REF, "cat", "/proc/self/status", user="bob", cli=cli)
    assert out.returncode == 0, out.stderr
    # restricted in audit: the CLI prints the create response's Warnings
    assert "WARNING: moorage: restricted-audit (audit): runtime.non-root" in out.stderr
    # the declared mutation reached the engine: no-new-privileges is on in the process
    assert any(line.split() == ["NoNewPrivs:", "1"] for line in out.stdout.splitlines())
    cid = ok(docker(pg.gw, "create", BUSYBOX_REF, "true", user="bob", cli=cli))
    host = json.loads(ok(docker(pg.gw, "inspect", cid, user="bob", cli=cli)))[0]["HostConfig"]
    assert host["PidsLimit"] == 300 and "no-new-privileges:true" in host["SecurityOpt"]
    record = [r for r in pg.records() if r["kind"] == "container.create" and r["status"] == 201][-1]
    assert "HostConfig.PidsLimit = 300" in record["mutations"]
    assert "runtime.non-root" in record["rules"] and record["policy_version"] == pg.admission.policies.version


def test_an_approved_exception_lets_exactly_its_scope_through_until_it_expires(pg: PolicyGateway) -> None:
    denied = docker(pg.gw, "create", "--cap-add", "sys_admin", BUSYBOX_REF, "true", user="alice")
    assert denied.returncode != 0
    assert "runtime.capabilities" in denied.stderr
    assert "moorage exception request --rule runtime.capabilities --team payments" in denied.stderr
    # alice may not ask for another team, nor approve her own request
    other = moorage(pg.gw, "exception", "request", "--rule", "runtime.capabilities", "--team", "search",
                    "--reason", "debugging a kernel issue", user="alice")  # fmt: skip
    assert other.returncode == 1 and "only for your teams" in other.stderr
    req = moorage(pg.gw, "exception", "request", "--rule", "runtime.capabilities", "--team", "payments",
                  "--reason", "fuse mount for a migration", "--expires", "6s", user="alice")  # fmt: skip
    assert req.returncode == 0, req.stderr
    exc_id = req.stdout.split()[1].rstrip(":")
    assert moorage(pg.gw, "exception", "approve", exc_id, user="alice").returncode == 1
    # still pending: nothing changes
    assert (
        docker(pg.gw, "create", "--cap-add", "sys_admin", BUSYBOX_REF, "true", user="alice").returncode != 0
    )
    # a security officer who did not request it approves
    sid_req = moorage(pg.gw, "exception", "request", "--rule", "runtime.devices", "--team", "security",
                      "--reason", "a self-approval attempt", user="sid")  # fmt: skip
    sid_id = sid_req.stdout.split()[1].rstrip(":")
    self_approve = moorage(pg.gw, "exception", "approve", sid_id, user="sid")
    assert self_approve.returncode == 1 and "another security officer" in self_approve.stderr
    approved = moorage(pg.gw, "exception", "approve", exc_id, user="sofia")
    assert approved.returncode == 0 and "approved until" in approved.stdout, approved.stderr
    granted_at = time.monotonic()
    made = docker(pg.gw, "create", "--cap-add", "sys_admin", BUSYBOX_REF, "true", user="alice")
    assert made.returncode == 0, made.stderr
    assert f"excepted by {exc_id}" in made.stderr
    # exactly its scope: another team, another rule
    assert docker(pg.gw, "create", "--cap-add", "sys_admin", BUSYBOX_REF, "true", user="bob").returncode != 0
    assert docker(pg.gw, "create", "--privileged", BUSYBOX_REF, "true", user="alice").returncode != 0
    listing = moorage(pg.gw, "exception", "list", "--json", user="bob")
    assert json.loads(listing.stdout) == []  # bob sees only his team's
    time.sleep(max(0.0, 6.5 - (time.monotonic() - granted_at)))
    after = docker(pg.gw, "create", "--cap-add", "sys_admin", BUSYBOX_REF, "true", user="alice")
    assert after.returncode != 0 and "runtime.capabilities" in after.stderr
    listed = json.loads(moorage(pg.gw, "exception", "list", "--json", user="sofia").stdout)
    assert {e["id"]: e["status"] for e in listed}[exc_id] == "expired"
    kinds = [r["kind"] for r in pg.records()]
    assert "moorage.exception.request" in kinds and "moorage.exception.approve" in kinds


def test_a_bad_reload_keeps_the_previous_policies(pg: PolicyGateway) -> None:
    before = pg.admission.policies.version
    (pg.folder / "policies" / "org.yaml").write_text(POLICY.replace("packs: [baseline]", "packs: [baselin]"))
    message = pg.admission.reload()
    assert "stays in force" in message and "org.yaml:6: spec.packs[0]" in message
    assert pg.admission.policies.version == before
    assert docker(pg.gw, "create", "--privileged", BUSYBOX_REF, "true", user="bob").returncode != 0
    # a good edit is picked up by the watcher, without a signal
    (pg.folder / "policies" / "org.yaml").write_text(POLICY.replace("packs: [baseline]", "packs: []"))
    watching = asyncio.run_coroutine_threadsafe(asyncio.wait_for(pg.admission.watch(0.1), 1.0), pg.gw.loop)
    with pytest.raises(TimeoutError):
        watching.result(5)  # it runs until the timeout ends it
    assert pg.admission.policies.version != before
    cid = ok(docker(pg.gw, "create", "--privileged", BUSYBOX_REF, "true", user="bob"))
    assert cid
