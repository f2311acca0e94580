"""Swarm through the gateway: services, tasks, logs, secrets, and tenancy over them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from moorage.engine import EngineClient
from moorage.lab import Lab
from moorage.lab.images import BUSYBOX_REF
from tests.gateway_harness import DOCKER_CLIS, RunningGateway, docker, gateway_for, ok


@pytest.fixture(scope="module")
def sgw(swarm_lab: Lab) -> Iterator[tuple[RunningGateway, str]]:
    manager = swarm_lab.client(1)
    image = f"{swarm_lab.registry}/lab/busybox:1"
    repo, tag = image.rsplit(":", 1)
    manager.call("POST", f"/images/{BUSYBOX_REF}/tag?repo={repo}&tag={tag}")
    manager.call("POST", f"/images/{repo}/push?tag={tag}", headers={"X-Registry-Auth": "e30="}, timeout=120)
    for gw in gateway_for(swarm_lab):
        yield gw, image


def wait_running(gw: RunningGateway, user: str, service: str, n: int, cli: str = DOCKER_CLIS[0]) -> list[str]:
    deadline = time.monotonic() + 90
    lines: list[str] = []
    while time.monotonic() < deadline:
        out = docker(gw, "service", "ps", "--filter", "desired-state=running", "--format",
                     "{{.Name}} {{.CurrentState}}", service, user=user, cli=cli)  # fmt: skip
        lines = [ln for ln in out.stdout.splitlines() if " Running" in ln]
        if len(lines) >= n:
            return lines
        time.sleep(1)
    raise AssertionError(f"{service}: {lines}")


@pytest.mark.parametrize("cli", DOCKER_CLIS)
def test_services_belong_to_their_team(sgw: tuple[RunningGateway, str], cli: str) -> None:
    gw, image = sgw
    ok(docker(gw, "service", "create", "--detach", "--name", "pay-web", "--replicas", "2", image,
              "sh", "-c", "echo hello-from-task; exec sleep 600", user="alice", cli=cli))  # fmt: skip
    try:
        assert len(wait_running(gw, "alice", "pay-web", 2, cli)) == 2
        assert "pay-web" in ok(docker(gw, "service", "ls", "--format", "{{.Name}}", user="alice", cli=cli))
        assert "pay-web" not in ok(docker(gw, "service", "ls", "--format", "{{.Name}}", user="bob", cli=cli))
        assert "pay-web" in ok(docker(gw, "service", "ls", "--format", "{{.Name}}", user="root", cli=cli))
        # tasks of another team's service are invisible, whichever way they are asked for
        # an admin sees the team's tasks too
        assert len(wait_running(gw, "root", "pay-web", 2, cli)) == 2
        bob_ps = docker(gw, "service", "ps", "pay-web", user="bob", cli=cli)
        assert bob_ps.returncode != 0 and "no such service" in bob_ps.stderr.lower()
        deadline = time.monotonic() + 30
        while (
            "hello-from-task"
            not in (logs := docker(gw, "service", "logs", "pay-web", user="alice", cli=cli)).stdout
        ):
            assert time.monotonic() < deadline, logs.stderr
            time.sleep(1)
        for args in (["service", "logs", "pay-web"], ["service", "inspect", "pay-web"],
                     ["service", "rm", "pay-web"], ["service", "scale", "pay-web=5"]):  # fmt: skip
            out = docker(gw, *args, user="bob", cli=cli)
            assert out.returncode != 0, args
        # an update sends the spec back with the gateway's owner labels: accepted, and
        # ownership stays with the creator even when an admin updates it
        ok(docker(gw, "service", "update", "--detach", "--replicas", "3", "pay-web", user="alice", cli=cli))
        ok(docker(gw, "service", "update", "--detach", "--env-add", "X=1", "pay-web", user="root", cli=cli))
        shown = ok(
            docker(gw, "service", "inspect", "--format", "{{json .Spec}}", "pay-web", user="alice", cli=cli)
        )
        assert "io.moorage." not in shown  # clients never see the bookkeeping; the engine has it
        assert json.loads(shown)["Mode"]["Replicated"]["Replicas"] == 3
        assert gw.gateway.upstream.path is not None
        spec = EngineClient(gw.gateway.upstream.path).call("GET", "/services/pay-web")["Spec"]
        assert spec["Labels"]["io.moorage.owner"] == "alice"
        assert spec["Labels"]["io.moorage.team"] == "payments"
        assert spec["TaskTemplate"]["ContainerSpec"]["Labels"]["io.moorage.team"] == "payments"
        assert spec["Mode"]["Replicated"]["Replicas"] == 3
    finally:
        ok(docker(gw, "service", "rm", "pay-web", user="alice", cli=cli))


@pytest.mark.parametrize("flag", ["--label=io.moorage.team=search", "--container-label=io.moorage.owner=bob"])
def test_service_labels_claiming_ownership_are_refused(sgw: tuple[RunningGateway, str], flag: str) -> None:
    gw, image = sgw
    out = docker(gw, "service", "create", "--detach", flag, image, "true", user="alice")
    assert out.returncode != 0 and "reserved" in out.stderr


def test_secrets_are_for_operators_and_per_team(sgw: tuple[RunningGateway, str]) -> None:
    gw, _ = sgw
    refused = docker(gw, "secret", "create", "dev-secret", "-", user="alice", stdin="x")
    assert refused.returncode != 0 and "secret.create" in refused.stderr
    ok(docker(gw, "secret", "create", "pay-db", "-", user="olga", stdin="s3cret"))
    try:
        labels = json.loads(ok(docker(gw, "secret", "inspect", "--format", "{{json .Spec.Labels}}", "pay-db",
                                      user="olga")))  # fmt: skip
        assert labels == {}  # the owner labels are the engine's to keep, not the client's to see
        assert gw.gateway.upstream.path is not None
        labels = EngineClient(gw.gateway.upstream.path).call("GET", "/secrets/pay-db")["Spec"]["Labels"]
        assert labels == {"io.moorage.owner": "olga", "io.moorage.team": "payments"}
        assert "pay-db" not in ok(docker(gw, "secret", "ls", "--format", "{{.Name}}", user="sam"))
        other = docker(gw, "secret", "inspect", "pay-db", user="sam")
        assert other.returncode != 0 and "not found" in other.stderr.lower()
        assert docker(gw, "secret", "rm", "pay-db", user="sam").returncode != 0
    finally:
        ok(docker(gw, "secret", "rm", "pay-db", user="olga"))


def test_cluster_endpoints_are_not_for_developers(sgw: tuple[RunningGateway, str]) -> None:
    gw, _ = sgw
    for args in (
        ["node", "ls"],
        ["swarm", "leave", "--force"],
        ["node", "update", "--label-add", "pci=1", "self"],
    ):
        out = docker(gw, *args, user="alice")
        # refused at the first call the CLI makes: the change itself or its lookup
        assert out.returncode != 0, args
        assert "may not call" in out.stderr or "is not granted to roles developer" in out.stderr, out.stderr
    assert len(ok(docker(gw, "node", "ls", "-q", user="olga")).splitlines()) == 3


@pytest.mark.parametrize(
    ("flags", "rule"),
    [
        (["--mount", "type=bind,src=/,dst=/h"], "runtime.host-path"),
        (["--mount", "type=bind,src=/var/run/docker.sock,dst=/s"], "runtime.docker-socket"),
        (["--cap-add", "CAP_SYS_ADMIN"], "runtime.capabilities"),
    ],
)
def test_service_escapes_are_refused_under_baseline(
    swarm_lab: Lab, tmp_path: Path, flags: list[str], rule: str
) -> None:
    from moorage.admission.pipeline import PolicyAdmission

    gw = RunningGateway(swarm_lab.docker_host(1), Path(f"/tmp/moorage-{swarm_lab.name}-pol.sock"),
                        admission=PolicyAdmission())  # fmt: skip
    try:
        out = docker(gw, "service", "create", "--detach", "--no-resolve-image", *flags, BUSYBOX_REF, "true")
        assert (
            out.returncode != 0 and "denied by policy builtin-baseline" in out.stderr and rule in out.stderr
        ), out.stderr
        ok(
            docker(
                gw,
                "service",
                "create",
                "--detach",
                "--no-resolve-image",
                "--name",
                "pol-ok",
                BUSYBOX_REF,
                "true",
            )
        )
        ok(docker(gw, "service", "rm", "pol-ok"))
    finally:
        gw.stop()
