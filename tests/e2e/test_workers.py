"""`moorage up --workers 2`: two gateway processes on one listener. Decisions that
count live state hold across them, both serve, one that dies is replaced, and no
answered request loses its record."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from moorage.lab import Lab
from moorage.lab.images import BUSYBOX_REF
from tests.conftest import busybox_lab, unique_name
from tests.e2e.test_audit_crash import request_id
from tests.gateway_harness import UIDS, USERS

MOORAGE = [sys.executable, "-m", "moorage.cli.main"]
POLICY = """\
apiVersion: moorage.dev/v1
kind: Policy
metadata: {name: org}
spec:
  mode: enforce
  packs: [baseline]
---
apiVersion: moorage.dev/v1
kind: Policy
metadata: {name: payments-quota}
spec:
  scope: {teams: [payments]}
  quotas: {containers: 10}
"""
# concurrent creates, each on its own connection, as whoever runs it
CREATES = textwrap.dedent("""
    import json, socket, sys, threading
    path, image, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    statuses = [0] * n
    def create(i):
        body = json.dumps({"Image": image, "Cmd": ["true"]}).encode()
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(path)
            s.sendall(b"POST /v1.41/containers/create HTTP/1.1\\r\\nHost: d\\r\\nContent-Type: application/json\\r\\n"
                      + b"Content-Length: %d\\r\\n\\r\\n" % len(body) + body)
            out = b""
            while b"\\r\\n" not in out:
                out += s.recv(4096)
            statuses[i] = int(out.split()[1])
    threads = [threading.Thread(target=create, args=(i,)) for i in range(n)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    print(json.dumps(statuses))
""")


class Up:
    def __init__(self, lab: Lab, folder: Path) -> None:
        self.folder = folder
        self.sock = folder / "docker.sock"
        (folder / "policies").mkdir()
        (folder / "policies" / "org.yaml").write_text(POLICY)
        (folder / "users.yaml").write_text(yaml.safe_dump(USERS))
        self.log = folder / "up.log"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [*MOORAGE, "up", "--upstream", lab.docker_host(1), "--data-dir", str(folder / "data"),
                 "--listen", str(self.sock), "--policy", str(folder / "policies"),
                 "--users", str(folder / "users.yaml"), "--workers", "2", "--context", ""],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while "Use it:" not in self.log.read_text():
            assert time.monotonic() < deadline and self.proc.poll() is None, self.log.read_text()
            time.sleep(0.05)
        line = next(ln for ln in self.log.read_text().splitlines() if "workers" in ln)
        self.pids = [int(p) for p in line.split("pids ")[1].rstrip(")").split(", ")]

    def workers(self) -> list[int]:
        """The supervisor's children now."""
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True)
        return sorted(int(p) for p in out.stdout.split())

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with busybox_lab("wk") as lab:
        yield lab


@pytest.fixture
def up(lab: Lab) -> Iterator[Up]:
    folder = Path(f"/tmp/moorage-{unique_name('wk')}")
    folder.mkdir(mode=0o755)
    gateway = Up(lab, folder)
    try:
        yield gateway
    finally:
        gateway.stop()
        left = lab.client(1).call("GET", "/containers/json?all=1")
        for c in left if isinstance(left, list) else []:
            lab.client(1).call("DELETE", f"/containers/{c['Id']}?force=1")
        shutil.rmtree(folder, ignore_errors=True)


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def test_a_quota_admits_exactly_its_limit_when_creates_race_through_two_workers(up: Up) -> None:
    assert len(up.pids) == 2 and up.workers() == sorted(up.pids)
    home = up.folder / "alice-home"
    home.mkdir()
    os.chown(home, UIDS["alice"], UIDS["alice"])
    out = subprocess.run(
        ["setpriv", f"--reuid={UIDS['alice']}", f"--regid={UIDS['alice']}", "--clear-groups",
         sys.executable, "-c", CREATES, str(up.sock), BUSYBOX_REF, "24"],
        capture_output=True, text=True, timeout=120, cwd=home,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    statuses = json.loads(out.stdout)
    assert statuses.count(201) == 10 and statuses.count(403) == 14, statuses


def test_both_workers_serve_and_a_killed_one_is_replaced_losing_no_record(up: Up) -> None:
    answered: list[str] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            try:
                rid = request_id(up, b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")  # type: ignore[arg-type]
            except OSError:
                continue  # the connection a killed worker held
            if rid:
                answered.append(rid)

    before = {pid: cpu_ticks(pid) for pid in up.pids}
    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    try:
        time.sleep(2.0)
        assert all(cpu_ticks(pid) > before[pid] for pid in up.pids), "a worker served nothing"
        os.kill(up.pids[1], signal.SIGKILL)
        deadline = time.monotonic() + 20
        while not (len(up.workers()) == 2 and up.pids[1] not in up.workers()):
            assert time.monotonic() < deadline, up.log.read_text()
            time.sleep(0.1)
        time.sleep(1.0)  # the replacement serves too
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert len(answered) > 100
    verify = subprocess.run([*MOORAGE, "audit", "verify", "--data-dir", str(up.folder / "data"), "--json"],
                            capture_output=True, text=True)  # fmt: skip
    assert verify.returncode == 0 and json.loads(verify.stdout)["ok"] is True, verify.stdout + verify.stderr
    log = subprocess.run([*MOORAGE, "audit", "log", "--json", "--data-dir", str(up.folder / "data")],
                         capture_output=True, text=True, check=True)  # fmt: skip
    recorded = {json.loads(line)["request_id"] for line in log.stdout.splitlines()}
    missing = [rid for rid in answered if rid not in recorded]
    assert missing == [], f"{len(missing)} of {len(answered)} answered requests have no record"
