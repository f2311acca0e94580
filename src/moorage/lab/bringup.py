"""Starting a lab's pieces: the network, the engines, the Swarm and the registry.

Each step is a function of the lab's layout; :class:`moorage.lab.Lab` calls them in
order from ``up()`` and removes everything again when one fails.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from moorage.engine import EngineError
from moorage.lab import _sys
from moorage.lab.layout import SWARM_PORT, LabError, LabLayout

__all__ = [
    "REGISTRY_BIN",
    "REQUIRED",
    "form_swarm",
    "make_network",
    "preflight",
    "start_dockerd",
    "start_registry",
    "wait_nodes_ready",
]


# binary -> Debian package that provides it
REQUIRED = {
    "dockerd": "docker.io",
    "containerd": "containerd",
    "runc": "runc",
    "ip": "iproute2",
    "nsenter": "util-linux",
    "unshare": "util-linux",
    "iptables": "iptables",
}
REGISTRY_BIN = {"docker-registry": "docker-registry"}


def preflight(registry: bool = False) -> None:
    """Refuse early, with the fix, when the machine can't run a lab."""
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces and dockerd): run it with sudo or as root")
    needed = dict(REQUIRED)
    if registry:
        needed.update(REGISTRY_BIN)
    missing = sorted({pkg for b, pkg in needed.items() if shutil.which(b) is None})
    if missing:
        raise LabError(f"missing system packages; install them with: apt-get install -y {' '.join(missing)}")


def make_network(lab: LabLayout, nodes: int) -> None:
    """Namespaces for the hub and every node, a bridge in the hub, a veth pair per node."""
    hub = lab.hub
    _sys.run(["ip", "netns", "add", hub])
    _sys.run(["ip", "-n", hub, "link", "set", "lo", "up"])
    _sys.run(["ip", "-n", hub, "link", "add", "br0", "type", "bridge"])
    _sys.run(["ip", "-n", hub, "link", "set", "br0", "up"])
    for k in range(1, nodes + 1):
        ns = lab.netns(k)
        _sys.run(["ip", "netns", "add", ns])
        _sys.run(["ip", "-n", ns, "link", "set", "lo", "up"])
        _sys.run(
            [
                "ip",
                "-n",
                hub,
                "link",
                "add",
                f"n{k}",
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                ns,
            ]
        )
        _sys.run(["ip", "-n", hub, "link", "set", f"n{k}", "master", "br0", "up"])
        _sys.run(["ip", "-n", ns, "addr", "add", f"{lab.ip(k)}/24", "dev", "eth0"])
        _sys.run(["ip", "-n", ns, "link", "set", "eth0", "up"])


def start_dockerd(lab: LabLayout, k: int, registry_port: int | None) -> None:
    """Start node ``k``'s dockerd in its namespace and wait until it answers."""
    nd = lab.node_dir(k)
    nd.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {"shutdown-timeout": 3, "log-level": "info"}
    if registry_port:
        config["insecure-registries"] = [f"127.0.0.1:{registry_port}"]
    (nd / "daemon.json").write_text(json.dumps(config))
    sock = lab.socket_path(k)
    sock.unlink(missing_ok=True)
    log = open(nd / "dockerd.log", "ab")  # noqa: SIM115 - handed to the child
    cmd = [
        "nsenter", f"--net={_sys.NETNS_DIR / lab.netns(k)}", "--",
        "unshare", "--uts", "--",
        "/bin/sh", "-c", 'hostname "$0" && exec "$@"', f"{lab.name}-node{k}",
        "dockerd",
        "--data-root", str(nd / "data"),
        "--exec-root", str(nd / "exec"),
        "--pidfile", str(nd / "docker.pid"),
        "--host", f"unix://{sock}",
        "--config-file", str(nd / "daemon.json"),
    ]  # fmt: skip
    with log:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    (nd / "launcher.pid").write_text(str(proc.pid))
    client = lab.client(k)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LabError(
                f"dockerd for node {k} exited with code {proc.returncode}. "
                f"Last lines of {nd / 'dockerd.log'}:\n{_tail(nd / 'dockerd.log')}"
            )
        if sock.exists() and client.ping():
            return
        time.sleep(0.1)
    raise LabError(
        f"dockerd for node {k} did not answer within 60 s. "
        f"Last lines of {nd / 'dockerd.log'}:\n{_tail(nd / 'dockerd.log')}"
    )


def form_swarm(lab: LabLayout, nodes: int) -> None:
    """Node 1 initialises a Swarm; the others join it as workers."""
    manager = lab.client(1)
    manager.call(
        "POST",
        "/swarm/init",
        {
            "ListenAddr": f"0.0.0.0:{SWARM_PORT}",
            "AdvertiseAddr": f"{lab.ip(1)}:{SWARM_PORT}",
            # A short heartbeat lets failure tests see a node go down in seconds.
            "Spec": {
                "Dispatcher": {"HeartbeatPeriod": 2_000_000_000},
                "Orchestration": {"TaskHistoryRetentionLimit": 2},
            },
        },
    )
    token = manager.call("GET", "/swarm")["JoinTokens"]["Worker"]
    for k in range(2, nodes + 1):
        lab.client(k).call(
            "POST",
            "/swarm/join",
            {
                "ListenAddr": f"0.0.0.0:{SWARM_PORT}",
                "AdvertiseAddr": f"{lab.ip(k)}:{SWARM_PORT}",
                "RemoteAddrs": [f"{lab.ip(1)}:{SWARM_PORT}"],
                "JoinToken": token,
            },
        )
    wait_nodes_ready(lab, nodes)


def wait_nodes_ready(lab: LabLayout, count: int, timeout: float = 60) -> None:
    """Wait until the manager lists ``count`` nodes in state ``ready``."""
    deadline = time.monotonic() + timeout
    ready = 0
    while time.monotonic() < deadline:
        try:
            listed = lab.client(1).call("GET", "/nodes")
        except EngineError:
            listed = []
        ready = sum(1 for n in listed if n["Status"]["State"] == "ready")
        if ready >= count:
            return
        time.sleep(0.3)
    raise LabError(f"only {ready} of {count} swarm nodes became ready within {timeout:.0f} s")


def start_registry(lab: LabLayout, nodes: int) -> int:
    """Start a registry on 127.0.0.1 and the forwarder that makes that address work
    inside every node; return its port."""
    if shutil.which("docker-registry") is None:
        raise LabError("missing docker-registry; install it with: apt-get install -y docker-registry")
    rdir = lab.dir / "registry"
    (rdir / "data").mkdir(parents=True, exist_ok=True)
    port = _free_port()
    (rdir / "config.yml").write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {rdir / 'data'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    with open(rdir / "registry.log", "ab") as log:
        proc = subprocess.Popen(
            ["docker-registry", "serve", str(rdir / "config.yml")],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    (rdir / "registry.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + 20
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise LabError(
                f"the registry did not start. Last lines of {rdir / 'registry.log'}:\n"
                f"{_tail(rdir / 'registry.log')}"
            )
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1) as r:
                if r.status == 200:
                    break
        except (OSError, urllib.error.URLError):
            time.sleep(0.1)
    with open(rdir / "forward.log", "ab") as log:
        fwd = subprocess.Popen(
            [sys.executable, "-m", "moorage.lab.forward", str(port)]
            + [lab.netns(k) for k in range(1, nodes + 1)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    (rdir / "forward.pid").write_text(str(fwd.pid))
    return port


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text[-lines:])
