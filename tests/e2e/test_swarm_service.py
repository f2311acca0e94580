"""`moorage cluster deploy` on a 3-manager lab Swarm: one gateway task per manager,
each in front of its own engine, all on one PostgreSQL store whose URL is a Swarm
secret; a task that dies is restarted by Swarm.

The lab can't pull an image with Python in it, so the task's image is the lab's
busybox with this machine's Python, virtual environment and libraries mounted
read-only (`--mount`, as an operator adds a policy folder); a real deployment uses an
image with Moorage installed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from moorage.audit.keys import KeyRing
from moorage.identity.pki import Pki
from moorage.lab import Lab
from moorage.lab.images import BUSYBOX_REF
from tests import pg_harness

pytestmark = pytest.mark.e2e

MOORAGE = [sys.executable, "-m", "moorage.cli.main"]
REPO = Path(__file__).resolve().parents[2]


def _host_mounts(pg: pg_harness.Postgres) -> list[str]:
    """Python, the virtual environment and the repository, the C libraries, and the
    store's socket, each at the same path in the task."""
    paths = {Path(sys.base_prefix), REPO, Path(sys.prefix), pg.socket_dir}
    out = [f"type=bind,source={p},target={p},readonly" for p in sorted(paths) if p.exists()]
    out += ["type=bind,source=/usr,target=/usr,readonly", "type=bind,source=/usr/lib,target=/lib,readonly",
            "type=bind,source=/usr/lib64,target=/lib64,readonly", "type=tmpfs,target=/tmp"]  # fmt: skip
    return out


def _running(lab: Lab) -> dict[str, str]:
    """node id -> container id of each running task of the service."""
    tasks = lab.client(1).call("GET", '/tasks?filters={"service":["moorage"],"desired-state":["running"]}')
    return {
        t["NodeID"]: t["Status"]["ContainerStatus"]["ContainerID"]
        for t in tasks
        if t["Status"]["State"] == "running" and t["Status"].get("ContainerStatus", {}).get("ContainerID")
    }


def test_the_gateway_runs_once_per_manager_on_one_store_and_swarm_restarts_it(
    manager_lab: Lab, tmp_path: Path
) -> None:
    lab = manager_lab
    with pg_harness.running() as pg:
        data = tmp_path / "data"
        Pki(data / "pki").ensure_ca()
        KeyRing(data / "audit-keys").signer()
        mounts = [a for m in _host_mounts(pg) for a in ("--mount", m)]
        python = Path(sys.prefix) / "bin" / "python"
        out = subprocess.run(
            [*MOORAGE, "cluster", "deploy", "--image", BUSYBOX_REF, "--store", pg.url(),
             "--engine", lab.docker_host(1), "--data-dir", str(data),
             "--engine-socket", str(lab.dir / "by-host" / "{{.Node.Hostname}}" / "docker.sock"),
             "--command", f"{python} -m moorage.cli.main", *mounts],
            capture_output=True, text=True, timeout=120, env={**os.environ, "NO_COLOR": "1"},
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert "created" in out.stdout
        service = lab.client(1).call("GET", "/services/moorage")
        assert pg.url() not in str(service["Spec"])  # the URL is only in the secret
        try:
            deadline = time.monotonic() + 120
            while len(_running(lab)) < 3:
                assert time.monotonic() < deadline, lab.client(1).call(
                    "GET", '/tasks?filters={"service":["moorage"]}'
                )
                time.sleep(1)
            # every gateway reached the store, each named by its manager
            deadline = time.monotonic() + 60
            want = {f"moorage@{lab.name}-node{k}" for k in (1, 2, 3)}
            while True:
                seen = set(pg.psql("SELECT DISTINCT application_name FROM pg_stat_activity").split())
                if want <= seen:
                    break
                assert time.monotonic() < deadline, (seen, _logs(lab))
                time.sleep(1)
            # a gateway that dies is restarted by Swarm on its manager
            node2 = next(n["ID"] for n in lab.client(1).call("GET", "/nodes")
                         if n["Description"]["Hostname"] == f"{lab.name}-node2")  # fmt: skip
            killed = _running(lab)[node2]
            lab.client(2).call("POST", f"/containers/{killed}/kill")
            deadline = time.monotonic() + 60
            while _running(lab).get(node2) in (None, killed):
                assert time.monotonic() < deadline
                time.sleep(1)
        finally:
            lab.client(1).call("DELETE", "/services/moorage")
            for secret in lab.client(1).call("GET", "/secrets") or []:
                if secret["Spec"].get("Labels", {}).get("moorage") == "moorage":
                    _retry_delete(lab, f"/secrets/{secret['ID']}")


def _logs(lab: Lab) -> str:
    try:
        raw = lab.client(1).call("GET", "/services/moorage/logs?stdout=1&stderr=1&tail=40")
    except Exception as exc:  # only for a failure message
        return f"(no logs: {exc})"
    return str(raw)[-3000:]


def _retry_delete(lab: Lab, path: str) -> None:
    for _ in range(30):  # a secret is in use until the service's tasks are gone
        try:
            lab.client(1).call("DELETE", path)
            return
        except Exception:
            time.sleep(1)
