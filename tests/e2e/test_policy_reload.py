"""`moorage up --policy DIR`: a bad edit leaves the previous set in force; a good one
takes effect on SIGHUP; refusals through the real CLI name the rule."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from moorage.cli.exception import call
from moorage.lab import Lab, build_busybox, load_into
from moorage.lab.images import BUSYBOX_REF
from tests.conftest import needs_root, unique_name

DOC = """\
apiVersion: moorage.dev/v1
kind: Policy
metadata: {name: org}
spec:
  packs: [baseline]
"""


def wait_for(predicate, what: str, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_sighup_reload_keeps_the_last_good_set() -> None:
    needs_root()
    lab = Lab(unique_name("rl"))
    lab.up(nodes=1, owner_pid=os.getpid())
    data = Path(f"/tmp/moorage-{lab.name}")
    proc = None
    try:
        load_into(build_busybox(), [lab.client(1)])
        (data / "policies").mkdir(parents=True)
        policy = data / "policies" / "org.yaml"
        policy.write_text(DOC)
        log = data / "up.log"
        with open(log, "w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "moorage.cli.main", "up", "--upstream", lab.docker_host(1),
                 "--data-dir", str(data), "--context", "", "--policy", str(data / "policies")],
                stdout=out, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
        wait_for(lambda: "Use it:" in log.read_text(), log.read_text())
        host = f"unix://{data / 'docker.sock'}"
        first = call(host, "GET", "/moorage/v1/policy")["version"]
        env = {"PATH": os.environ["PATH"], "HOME": str(data), "DOCKER_HOST": host}

        def docker(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(["docker", *args], capture_output=True, text=True, env=env, timeout=60)

        assert "runtime.privileged" in docker("create", "--privileged", BUSYBOX_REF).stderr
        # a broken edit: reported with file, line and field; the old set stays
        policy.write_text(DOC.replace("packs: [baseline]", "packs: [baseline]\n  mode: sometimes"))
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reload failed" in log.read_text(), log.read_text())
        assert f"{policy}:6: spec.mode" in log.read_text()
        assert call(host, "GET", "/moorage/v1/policy")["version"] == first
        assert "runtime.privileged" in docker("create", "--privileged", BUSYBOX_REF).stderr
        # a good edit takes effect
        policy.write_text(DOC + "  images: {forbidLatest: true}\n")
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: call(host, "GET", "/moorage/v1/policy")["version"] != first, "reload")
        refused = docker("create", BUSYBOX_REF)
        assert refused.returncode != 0 and "images.latest" in refused.stderr
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        lab.down()
        shutil.rmtree(data, ignore_errors=True)
