"""`moorage lab up --nodes 3` plus `moorage up --lab NAME`: a governed cluster, as a
person gets it. The wiring is what this checks (the reconciler runs in `moorage up`
and answers node events; services through the gateway carry Moorage's constraints);
tests/integration/test_cluster_trust.py goes through every attack."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from moorage.lab import Lab
from moorage.lab.images import BUSYBOX_REF, build_busybox, load_into
from tests.conftest import needs_root, unique_name
from tests.gateway_harness import UIDS, ok

MOORAGE = [sys.executable, "-m", "moorage.cli.main"]


def as_user(user: str, sock: Path, *cmd: str) -> subprocess.CompletedProcess[str]:
    uid = str(UIDS[user])
    env = {
        "PATH": os.environ["PATH"],
        "HOME": "/tmp",
        "DOCKER_HOST": f"unix://{sock}",
        "NO_COLOR": "1",
        "DOCKER_BUILDKIT": "0",
    }
    return subprocess.run(
        ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *cmd],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_moorage_up_governs_a_lab_swarm() -> None:
    needs_root()
    lab = Lab(unique_name("cu"))
    data = Path(f"/tmp/moorage-{lab.name}-up")
    proc = None
    try:
        lab.up(nodes=3, owner_pid=os.getpid())
        load_into(build_busybox(), [lab.client(k) for k in range(1, 4)])
        data.mkdir(mode=0o755)
        (data / "users.yaml").write_text(
            f"users:\n  alice: {{uid: {UIDS['alice']}, teams: [payments], roles: [developer]}}\n"
            f"  olga: {{uid: {UIDS['olga']}, teams: [payments], roles: [operator]}}\n"
        )
        log = open(data / "up.log", "wb")  # noqa: SIM115 - the child owns it
        proc = subprocess.Popen(
            [
                *MOORAGE,
                "up",
                "--lab",
                lab.name,
                "--data-dir",
                str(data),
                "--context",
                "",
                "--reconcile-interval",
                "2",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while b"Use it:" not in (data / "up.log").read_bytes():
            assert time.monotonic() < deadline and proc.poll() is None, (data / "up.log").read_text()
            time.sleep(0.1)
        banner = (data / "up.log").read_text()
        assert "cluster     governed" in banner
        os.chmod(data / "docker.sock", 0o666)
        sock = data / "docker.sock"
        manager = lab.client(1)
        # the manager Moorage stands in front of is enrolled by the first sweep
        node1 = f"{lab.name}-node1"
        deadline = time.monotonic() + 15
        while (manager.call("GET", f"/nodes/{node1}")["Spec"].get("Labels") or {}).get(
            "io.moorage.enrolled"
        ) != "true":
            assert time.monotonic() < deadline, "the manager was not enrolled"
            time.sleep(0.5)
        node2 = f"{lab.name}-node2"
        ok(as_user("olga", sock, *MOORAGE, "node", "enrol", node2))
        deadline = time.monotonic() + 15
        while (manager.call("GET", f"/nodes/{node2}")["Spec"].get("Labels") or {}).get(
            "io.moorage.enrolled"
        ) != "true":
            assert time.monotonic() < deadline, "the enrolment label was not projected"
            time.sleep(0.5)
        ok(
            as_user(
                "alice",
                sock,
                "docker",
                "service",
                "create",
                "--detach",
                "--name",
                "web",
                BUSYBOX_REF,
                "sleep",
                "600",
            )
        )
        constraints = manager.call("GET", "/services/web")["Spec"]["TaskTemplate"]["Placement"]["Constraints"]
        assert "node.labels.io.moorage.enrolled==true" in constraints
        # a label forged on the manager, behind Moorage's back, is gone within one interval
        doc = manager.call("GET", f"/nodes/{lab.name}-node3")
        spec = doc["Spec"]
        spec["Labels"] = {**(spec.get("Labels") or {}), "io.moorage.enrolled": "true"}
        manager.call("POST", f"/nodes/{doc['ID']}/update?version={doc['Version']['Index']}", spec)
        deadline = time.monotonic() + 15
        while "io.moorage.enrolled" in (
            manager.call("GET", f"/nodes/{doc['ID']}")["Spec"].get("Labels") or {}
        ):
            assert time.monotonic() < deadline, "the forged label stayed"
            time.sleep(0.5)
        trail = subprocess.run(
            [*MOORAGE, "audit", "log", "--data-dir", str(data), "--json"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "cluster.drift" in trail.stdout, trail.stderr
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        lab.down()
        shutil.rmtree(data, ignore_errors=True)
