"""Three gateways, one per manager of a lab Swarm, sharing one PostgreSQL store:
decisions that count shared state hold across them, a revocation made through one
is refused by another, one leader reconciles and another takes over when it dies,
and a gateway SIGKILLed under load loses no answered request's record from the one
shared chain. (bench/gateways.py measures the same for ten minutes, with the
budgets' figures.)"""

from __future__ import annotations

import json
import re
import signal
import socket
import sys
import textwrap
import threading
import time
from collections.abc import Iterator

import pytest

from moorage.lab import Lab
from moorage.lab.images import BUSYBOX_REF
from tests import fleet_harness
from tests.fleet_harness import Fleet, as_alice, login_alice, tls_ping

pytestmark = pytest.mark.e2e

# Concurrent service creates as whoever runs it, spread over the gateways' sockets.
CREATES = textwrap.dedent("""
    import json, socket, sys, threading
    socks, image, n = sys.argv[1].split(","), sys.argv[2], int(sys.argv[3])
    statuses = [0] * n
    def create(i):
        body = json.dumps({"Name": f"race-{i}", "TaskTemplate": {"ContainerSpec": {"Image": image,
                           "Command": ["sleep", "600"]}}, "Mode": {"Replicated": {"Replicas": 1}}}).encode()
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(socks[i % len(socks)])
            s.sendall(b"POST /v1.41/services/create HTTP/1.1\\r\\nHost: d\\r\\nContent-Type: application/json\\r\\n"
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


@pytest.fixture(scope="module")
def fleet(manager_lab: Lab) -> Iterator[Fleet]:
    with fleet_harness.running(manager_lab) as fleet:
        yield fleet


def test_a_quota_admits_exactly_its_limit_when_creates_race_through_three_gateways(
    fleet: Fleet, manager_lab: Lab
) -> None:
    socks = ",".join(str(g.sock) for g in fleet.gateways)
    out = as_alice(sys.executable, "-c", CREATES, socks, BUSYBOX_REF, "50", home=fleet.root / "alice")
    assert out.returncode == 0, out.stderr
    statuses = json.loads(out.stdout)
    assert statuses.count(201) == 10 and statuses.count(403) == 40, statuses
    made = [
        s for s in manager_lab.client(1).call("GET", "/services") if s["Spec"]["Name"].startswith("race-")
    ]
    assert len(made) == 10  # the engine, not Moorage, is the judge


def test_a_certificate_revoked_through_one_gateway_is_refused_by_another(
    fleet: Fleet,
) -> None:
    c = fleet.gateways[2]
    certs = login_alice(fleet, 0, fleet.root / "alice-login")
    assert tls_ping(c.port, certs) == 200  # a certificate from gateway A works on gateway C
    revoked = fleet.moorage("cert", "revoke", "--user", "alice", gateway=0)
    assert revoked.returncode == 0, revoked.stderr
    start = time.monotonic()
    while tls_ping(c.port, certs) == 200:
        # the budget is 1 s (bench/gateways.py measures it); the test allows for a loaded machine
        assert time.monotonic() - start < 5.0, "gateway C still accepts the revoked certificate"
        time.sleep(0.02)


def test_one_gateway_leads_and_another_takes_over_when_it_dies(fleet: Fleet, manager_lab: Lab) -> None:
    deadline = time.monotonic() + 20
    while len(leaders := fleet.leaders()) != 1:
        assert time.monotonic() < deadline, [g.log.read_text()[-500:] for g in fleet.gateways]
        time.sleep(0.2)
    dead = leaders[0]
    marks = {g.name: len(g.log.read_text()) for g in fleet.gateways}
    dead.proc.send_signal(signal.SIGKILL)
    dead.proc.wait(10)
    start = time.monotonic()
    while not fleet.leaders(marks):
        # the budget is 10 s (bench/gateways.py measures it); the test allows for a loaded machine
        assert time.monotonic() - start < 30, "no other gateway took the lead"
        time.sleep(0.1)
    fleet.restart(fleet.gateways.index(dead))  # back to three gateways for the next test


def test_a_gateway_killed_under_load_loses_no_answered_record_and_the_one_chain_verifies(
    fleet: Fleet,
) -> None:
    answered: list[str] = []
    stop = threading.Event()
    dead = fleet.gateways[1]

    def client(i: int) -> None:
        order = [fleet.gateways[(i + j) % 3] for j in range(3)]  # its own gateway first, then the others
        while not stop.is_set():
            for gw in order:
                if gw.proc.poll() is not None:
                    continue
                try:
                    with socket.socket(socket.AF_UNIX) as s:
                        s.settimeout(5)
                        s.connect(str(gw.sock))
                        s.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
                        out = b""
                        while chunk := s.recv(65536):
                            out += chunk
                except OSError:
                    continue  # fail over to the next gateway in its list
                rid = re.search(rb"(?i)x-moorage-request-id:\s*(\S+)", out)
                if rid and out.startswith(b"HTTP/1.1 200"):
                    answered.append(rid.group(1).decode())
                break

    threads = [threading.Thread(target=client, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    try:
        time.sleep(3)
        dead.proc.send_signal(signal.SIGKILL)
        dead.proc.wait(10)
        time.sleep(3)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert len(answered) > 200
    keys = str(fleet.root / "g1")  # its audit-keys: the checkpoint key every gateway shares
    verify = fleet.moorage("audit", "verify", "--store", fleet.url, "--data-dir", keys, "--json")
    assert verify.returncode == 0 and json.loads(verify.stdout)["ok"] is True, verify.stdout + verify.stderr
    log = fleet.moorage("audit", "log", "--store", fleet.url, "--json")
    assert log.returncode == 0, log.stderr
    recorded = {json.loads(line).get("request_id") for line in log.stdout.splitlines()}
    missing = [rid for rid in answered if rid not in recorded]
    assert missing == [], f"{len(missing)} of {len(answered)} answered requests have no record"


def test_the_store_lists_every_gateway_and_the_policy_each_decides_with(fleet: Fleet) -> None:
    deadline = time.monotonic() + 30
    while True:
        out = fleet.moorage("store", "status", "--store", fleet.url, "--json")
        assert out.returncode == 0, out.stderr
        status = json.loads(out.stdout)
        if len(status["gateways"]) >= 3:
            break
        assert time.monotonic() < deadline, status
        time.sleep(1)
    assert len({g["policy_version"] for g in status["gateways"]}) == 1  # one policy for all
    assert all(a["state"] == "current" for a in status["areas"])
