"""Several gateways on one PostgreSQL store, measured: three `moorage up`, one per
manager of a 3-node lab Swarm, on a private PostgreSQL with fsync on.

    python bench/gateways.py [--minutes 10] [--clients 32] [--json FILE]

Phases, each printed with its budget (DESIGN.md / the shared-state issue):
  - quota race: 50 concurrent service creates over the three gateways against a
    replicas quota of 10; the engine counts what was created (budget: exactly 10);
  - revocation: alice's certificate from gateway A revoked through A, and the time
    until gateway C refuses it, five times (budget: 1 s);
  - soak: CLIENTS keep-alive clients spread over the gateways, /_ping and
    GET /containers/json mixed, for MINUTES; each client fails over to the next
    gateway in its list when its gateway is gone. Halfway, one gateway is SIGKILLed
    and started again 5 s later (as Swarm would). Errors, answers per second and each
    gateway's memory (VmRSS, sampled every 10 s) are reported, and afterwards every
    answered request's id is looked up in the one shared chain, which must verify;
  - leader failover: the gateway leading the reconciler is SIGKILLed, and the time
    until another leads is measured (budget: 10 s).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import signal
import socket
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).parent))

from _common import rss_mib
from tests import fleet_harness
from tests.conftest import unique_name
from tests.e2e.test_gateways import CREATES
from tests.fleet_harness import Fleet, as_alice, login_alice, tls_ping

from moorage.lab import Lab
from moorage.lab.images import BUSYBOX_REF

_RID = re.compile(rb"(?i)\r\nx-moorage-request-id:\s*([^\r\n]+)")
_LEN = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")


def quota_race(fleet: Fleet) -> dict[str, Any]:
    socks = ",".join(str(g.sock) for g in fleet.gateways)
    out = as_alice(sys.executable, "-c", CREATES, socks, BUSYBOX_REF, "50", home=fleet.root / "alice")
    statuses = json.loads(out.stdout) if out.returncode == 0 else []
    made = [s for s in fleet.lab.client(1).call("GET", "/services") if s["Spec"]["Name"].startswith("race-")]
    for svc in made:
        fleet.lab.client(1).call("DELETE", f"/services/{svc['ID']}")
    return {"creates": 50, "limit": 10, "admitted": statuses.count(201), "refused": statuses.count(403),
            "created_per_engine": len(made)}  # fmt: skip


def revocation(fleet: Fleet, trials: int = 5) -> dict[str, Any]:
    times = []
    for i in range(trials):
        certs = login_alice(fleet, 0, fleet.root / f"alice-login-{i}")
        c = fleet.gateways[2]
        assert tls_ping(c.port, certs) == 200
        fleet.moorage("cert", "revoke", "--user", "alice", gateway=0)
        start = time.monotonic()
        while tls_ping(c.port, certs) == 200:
            time.sleep(0.005)
        times.append(time.monotonic() - start)
    return {"seconds": [round(t, 3) for t in times], "max_s": round(max(times), 3)}


class _Client(threading.Thread):
    """Keep-alive requests over the gateways' unix sockets, its own gateway first."""

    def __init__(self, fleet: Fleet, index: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.fleet, self.index, self.stop = fleet, index, stop
        self.answered: list[str] = []
        self.errors = 0
        self.failovers = 0
        self.rng = random.Random(index)

    def run(self) -> None:
        n = len(self.fleet.gateways)
        sock: socket.socket | None = None
        turn = self.index % n
        while not self.stop.is_set():
            if sock is None:
                gw = self.fleet.gateways[turn]
                try:
                    sock = socket.socket(socket.AF_UNIX)
                    sock.settimeout(10)
                    sock.connect(str(gw.sock))
                except OSError:
                    sock = None
                    turn = (turn + 1) % n  # fail over to the next gateway in the list
                    self.failovers += 1
                    time.sleep(0.01)
                    continue
            target = b"/_ping" if self.rng.random() < 0.7 else b"/v1.41/containers/json?all=1"
            try:
                sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: d\r\n\r\n")
                status, rid = self._answer(sock)
            except OSError:
                sock.close()
                sock = None
                turn = (turn + 1) % n
                self.failovers += 1
                continue
            if status == 200 and rid:
                self.answered.append(rid)
            else:
                self.errors += 1
        if sock is not None:
            sock.close()

    def _answer(self, sock: socket.socket) -> tuple[int, str]:
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        length = _LEN.search(head)
        if length is None:  # chunked list answers: read to the terminating chunk
            while not rest.endswith(b"0\r\n\r\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed")
                rest += chunk
        else:
            while len(rest) < int(length.group(1)):
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed")
                rest += chunk
        rid = _RID.search(head)
        return int(head.split()[1]), rid.group(1).decode() if rid else ""


def soak(fleet: Fleet, minutes: float, clients: int) -> dict[str, Any]:
    stop = threading.Event()
    threads = [_Client(fleet, i, stop) for i in range(clients)]
    memory: dict[str, list[float]] = {g.name: [] for g in fleet.gateways}
    start = time.monotonic()
    for t in threads:
        t.start()
    killed_at = restarted_at = None
    duration = minutes * 60
    while (elapsed := time.monotonic() - start) < duration:
        for g in fleet.gateways:
            if g.alive():
                memory[g.name].append(round(rss_mib(g.proc.pid), 1))
        if killed_at is None and elapsed >= duration / 2:
            victim = fleet.gateways[1]
            victim.proc.send_signal(signal.SIGKILL)
            victim.proc.wait(10)
            killed_at = elapsed
        if killed_at is not None and restarted_at is None and elapsed >= killed_at + 5:
            fleet.restart(1)
            restarted_at = time.monotonic() - start
        time.sleep(min(10.0, max(0.5, duration - elapsed)))
    stop.set()
    for t in threads:
        t.join(30)
    seconds = time.monotonic() - start
    answered = [rid for t in threads for rid in t.answered]
    recorded = set(fleet.pg.psql("SELECT body::jsonb ->> 'request_id' FROM audit.records").split())
    missing = [rid for rid in answered if rid not in recorded]
    keys = str(fleet.root / "g1")  # its audit-keys: the checkpoint key every gateway shares
    verify = fleet.moorage("audit", "verify", "--store", fleet.url, "--data-dir", keys, "--json")
    try:
        verified = bool(json.loads(verify.stdout)["ok"])
    except (ValueError, KeyError):
        verified = False
    return {
        "minutes": minutes, "clients": clients, "answered": len(answered),
        "per_second": round(len(answered) / seconds, 1), "errors": sum(t.errors for t in threads),
        "failovers": sum(t.failovers for t in threads), "killed_at_s": round(killed_at or 0, 1),
        "restarted_at_s": round(restarted_at or 0, 1), "records": len(recorded),
        "answered_without_record": len(missing), "chain_verifies": verified,
        "memory_mib": {name: {"first": xs[0], "max": max(xs), "last": xs[-1]} for name, xs in memory.items() if xs},
    }  # fmt: skip


def leader_failover(fleet: Fleet) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while len(leaders := fleet.leaders()) < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    dead = leaders[0]
    marks = {g.name: len(g.log.read_text()) for g in fleet.gateways}
    dead.proc.send_signal(signal.SIGKILL)
    dead.proc.wait(10)
    start = time.monotonic()
    while not fleet.leaders(marks):
        time.sleep(0.05)
    took = time.monotonic() - start
    fleet.restart(fleet.gateways.index(dead))
    return {"killed": dead.name, "new_leader": fleet.leaders(marks)[0].name, "seconds": round(took, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    lab = Lab(unique_name("bg"))
    result: dict[str, Any] = {}
    try:
        print("starting a 3-manager lab Swarm, PostgreSQL (fsync on) and three gateways ...", flush=True)
        fleet_harness.managers_up(lab)
        with fleet_harness.running(lab, fsync=True) as fleet:
            result["quota_race"] = quota_race(fleet)
            print("quota race  ", result["quota_race"], flush=True)
            result["revocation"] = revocation(fleet)
            print("revocation  ", result["revocation"], flush=True)
            result["soak"] = soak(fleet, args.minutes, args.clients)
            print("soak        ", result["soak"], flush=True)
            result["leader_failover"] = leader_failover(fleet)
            print("leader      ", result["leader_failover"], flush=True)
    finally:
        lab.down()
    q, r, s, f = result["quota_race"], result["revocation"], result["soak"], result["leader_failover"]
    print("\n| measure | figure | budget |\n| --- | --- | --- |")
    print(
        f"| quota race: admitted of 50 (limit 10), created per the engine | {q['admitted']}, {q['created_per_engine']} | exactly 10 |"
    )
    print(f"| revocation on A refused on C (worst of {len(r['seconds'])}) | {r['max_s']} s | 1 s |")
    print(f"| soak: {s['clients']} clients, {s['minutes']} min, answers/s | {s['per_second']} | - |")
    print(
        f"| soak: errors / answered without a record / chain verifies | {s['errors']} / {s['answered_without_record']} / {s['chain_verifies']} | 0 / 0 / true |"
    )
    for name, m in s["memory_mib"].items():
        print(f"| {name} VmRSS first / max / last | {m['first']} / {m['max']} / {m['last']} MiB | bounded |")
    print(f"| leader failover ({f['killed']} killed, {f['new_leader']} leads) | {f['seconds']} s | 10 s |")
    print("\nspread of the revocation times:", statistics.median(r["seconds"]), "s median")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
