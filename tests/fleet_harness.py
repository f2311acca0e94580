"""Several `moorage up` gateways, one per manager of a lab Swarm, sharing one private
PostgreSQL store, the CA and the checkpoint key: for the e2e tests and for
bench/gateways.py."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from moorage.audit.keys import KeyRing
from moorage.identity.pki import Pki
from moorage.lab import Lab, build_busybox, load_into
from tests import pg_harness
from tests.conftest import unique_name
from tests.gateway_harness import UIDS, USERS
from tests.oidc_harness import OidcServer

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
  quotas: {replicas: 10}
"""


@dataclass
class Gateway:
    """One `moorage up` process and its data folder."""

    name: str
    data: Path
    proc: subprocess.Popen[bytes]
    port: int

    @property
    def sock(self) -> Path:
        return self.data / "docker.sock"

    @property
    def log(self) -> Path:
        return self.data / "up.log"

    def alive(self) -> bool:
        return self.proc.poll() is None


@dataclass
class Fleet:
    """The gateways, the store they share, and where their files are."""

    root: Path
    url: str
    pg: pg_harness.Postgres
    lab: Lab
    gateways: list[Gateway]

    def moorage(self, *args: str, gateway: int = 0) -> subprocess.CompletedProcess[str]:
        """Run the moorage CLI as root against one gateway's socket."""
        env = {**os.environ, "NO_COLOR": "1", "DOCKER_HOST": f"unix://{self.gateways[gateway].sock}"}
        return subprocess.run([*MOORAGE, *args], capture_output=True, text=True, timeout=300, env=env)

    def restart(self, index: int) -> None:
        """Start gateway ``index`` again (after it was killed)."""
        self.gateways[index] = start_gateway(self.lab, index + 1, self.root, self.url)

    def leaders(self, since: dict[str, int] | None = None) -> list[Gateway]:
        """The live gateways whose log says they lead the reconciler (after ``since``)."""
        return [g for g in self.gateways if g.alive()
                and "leads reconciler" in g.log.read_text()[(since or {}).get(g.name, 0):]]  # fmt: skip


def start_gateway(lab: Lab, k: int, root: Path, url: str) -> Gateway:
    """`moorage up` in front of manager ``k``, on the shared store; waits until it serves."""
    data = root / f"g{k}"
    data.mkdir(exist_ok=True)
    if not (data / "pki").exists():  # every gateway shares the CA and the checkpoint key
        shutil.copytree(root / "shared/pki", data / "pki")
        shutil.copytree(root / "shared/audit-keys", data / "audit-keys")
    logfile = data / "up.log"
    offset = logfile.stat().st_size if logfile.exists() else 0  # a restart appends to the same log
    log = open(logfile, "ab")  # noqa: SIM115 - the child owns it
    proc = subprocess.Popen(
        [*MOORAGE, "up", "--upstream", lab.docker_host(k), "--data-dir", str(data), "--store", url,
         "--tls-listen", "127.0.0.1:0", "--identity", str(root / "identity.yaml"), "--identity-sync", "1",
         "--users", str(root / "users.yaml"), "--policy", str(root / "policies"), "--workers", "1",
         "--context", ""],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while b"Use it:" not in logfile.read_bytes()[offset:]:
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(logfile.read_text()[-3000:])
        time.sleep(0.1)
    port = int(re.findall(r"tls\s+tcp://127\.0\.0\.1:(\d+)", logfile.read_text()[offset:])[-1])
    os.chmod(data / "docker.sock", 0o666)
    return Gateway(f"g{k}", data, proc, port)


def managers_up(lab: Lab) -> None:
    """Bring ``lab`` up as a 3-node Swarm of managers with the busybox image, each
    engine's socket also reachable as ``by-host/<hostname>/docker.sock`` (for Swarm's
    ``{{.Node.Hostname}}`` templates)."""
    lab.up(nodes=3, owner_pid=os.getpid())
    load_into(build_busybox(), [lab.client(k) for k in range(1, 4)])
    for node in lab.client(1).call("GET", "/nodes"):
        if node["Spec"]["Role"] != "manager":
            spec = {**node["Spec"], "Role": "manager"}
            lab.client(1).call("POST", f"/nodes/{node['ID']}/update?version={node['Version']['Index']}", spec)
    by_host = lab.dir / "by-host"
    by_host.mkdir(exist_ok=True)
    for k in range(1, 4):
        link = by_host / f"{lab.name}-node{k}"
        if not link.exists():
            link.symlink_to(lab.node_dir(k))


@contextlib.contextmanager
def running(lab: Lab, fsync: bool = False, count: int = 3) -> Iterator[Fleet]:
    """``count`` gateways in front of managers 1..count of ``lab``, for the block."""
    root = Path(f"/tmp/moorage-{unique_name('gw')}")
    root.mkdir(mode=0o755)
    pg = pg_harness.start(fsync=fsync)
    idp = OidcServer(root / "oidc", {"pat": ["payments-dev"]})
    fleet = Fleet(root, pg.url(), pg, lab, [])
    try:
        idp.start()
        Pki(root / "shared/pki").ensure_ca()
        KeyRing(root / "shared/audit-keys").signer()
        (root / "policies").mkdir()
        (root / "policies/org.yaml").write_text(POLICY)
        (root / "users.yaml").write_text(yaml.safe_dump(USERS))
        (root / "identity.yaml").write_text(json.dumps({
            "oidc": {"issuer": idp.issuer, "client_id": "moorage"},
            "mapping": {"groups": {"payments-dev": {"teams": ["payments"], "roles": ["developer"]}},
                        "lifetime": "8h"},
        }))  # fmt: skip
        for k in range(1, count + 1):
            fleet.gateways.append(start_gateway(lab, k, root, pg.url()))
        yield fleet
    finally:
        for gw in fleet.gateways:
            if gw.alive():
                gw.proc.send_signal(signal.SIGTERM)
                gw.proc.wait(30)
        for svc in lab.client(1).call("GET", "/services") or []:
            if svc["Spec"]["Name"].startswith("race-"):
                lab.client(1).call("DELETE", f"/services/{svc['ID']}")
        pg.stop()
        idp.stop()
        shutil.rmtree(root, ignore_errors=True)


def as_alice(*cmd: str, home: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` as the users file's alice (uid 52001), in ``home``."""
    home.mkdir(exist_ok=True)
    os.chown(home, UIDS["alice"], UIDS["alice"])
    return subprocess.run(
        ["setpriv", f"--reuid={UIDS['alice']}", f"--regid={UIDS['alice']}", "--clear-groups", *cmd],
        capture_output=True, text=True, timeout=300, cwd=home,
        env={"PATH": os.environ["PATH"], "HOME": str(home), **(env or {})},
    )  # fmt: skip


def login_alice(fleet: Fleet, gateway: int, home: Path) -> Path:
    """alice's login certificate from one gateway (users file provider); its folder."""
    gw = fleet.gateways[gateway]
    out = as_alice(*MOORAGE, "login", "--users", "--host", f"tcp://127.0.0.1:{gw.port}", "--context", "shared",
                   home=home, env={"DOCKER_HOST": f"unix://{gw.sock}"})  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return next((home / ".docker/contexts/tls").rglob("cert.pem")).parent


def tls_ping(port: int, cert_dir: Path) -> int:
    """The status of ``GET /_ping`` over TLS with the certificate in ``cert_dir``."""
    ctx = ssl.create_default_context(cafile=str(cert_dir / "ca.pem"))
    ctx.load_cert_chain(str(cert_dir / "cert.pem"), str(cert_dir / "key.pem"))
    with (
        socket.create_connection(("127.0.0.1", port), 5) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s,
    ):
        s.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
        out = b""
        while chunk := s.recv(4096):
            out += chunk
    return int(out.split()[1])
