"""Local Docker engines and a local Swarm on one Linux machine.

Node ``k`` of lab ``NAME`` is a private ``dockerd`` (own data-root, exec-root,
pidfile, unix socket, hostname) inside network namespace ``mlab_NAME_nk``. The
nodes are wired by veth pairs to a bridge in a hub namespace ``mlab_NAME_hub``,
so nothing is added to the machine's own network namespace and two labs never
see each other. With ``--registry`` a Distribution registry listens on
127.0.0.1 and a forwarder makes that same address work inside every node.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from moorage.engine import EngineClient, EngineError
from moorage.lab import _sys

__all__ = ["Lab", "LabError", "LabStatus", "NodeStatus", "lab_root", "list_labs"]

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,19}$")
SUBNET = "10.213.0"  # lives only inside the lab's own namespaces
SWARM_PORT = 2377

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

Progress = Callable[[str], None]


class LabError(Exception):
    """Something the person running the lab must fix; the message says what and how."""


def lab_root() -> Path:
    """Where labs keep their state (``MOORAGE_LAB_ROOT``, default /var/lib/moorage/lab)."""
    return Path(os.environ.get("MOORAGE_LAB_ROOT", "/var/lib/moorage/lab"))


def list_labs() -> list[str]:
    """Names of labs that have state on this machine or namespaces left behind."""
    names: set[str] = set()
    root = lab_root()
    if root.is_dir():
        names.update(p.name for p in root.iterdir() if p.is_dir() and NAME_RE.match(p.name))
    for ns in _sys.netns_list():
        m = re.match(r"^mlab_([a-z0-9-]+)_(?:hub|n\d+)$", ns)
        if m:
            names.add(m.group(1))
    return sorted(names)


@dataclass(frozen=True)
class NodeStatus:
    """One lab node as seen right now."""

    node: int
    role: str
    running: bool
    connected: bool
    swarm: str
    docker_host: str


@dataclass(frozen=True)
class LabStatus:
    """The whole lab as seen right now."""

    name: str
    exists: bool
    nodes: tuple[NodeStatus, ...]
    registry: str | None
    registry_running: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _noop(_: str) -> None:
    pass


class Lab:
    """One named lab. Construct it, then ``up()``, use it, ``down()``."""

    def __init__(self, name: str = "default") -> None:
        if not NAME_RE.match(name):
            raise LabError(
                f"invalid lab name {name!r}: use 1-20 lower-case letters, digits or '-', "
                "starting with a letter or digit"
            )
        self.name = name
        self.dir = lab_root() / name

    # ----------------------------------------------------------------- naming
    def netns(self, k: int) -> str:
        return f"mlab_{self.name}_n{k}"

    @property
    def hub(self) -> str:
        return f"mlab_{self.name}_hub"

    def node_dir(self, k: int) -> Path:
        return self.dir / f"n{k}"

    def socket_path(self, k: int) -> Path:
        return self.node_dir(k) / "docker.sock"

    def docker_host(self, k: int) -> str:
        return f"unix://{self.socket_path(k)}"

    def client(self, k: int, timeout: float = 60.0) -> EngineClient:
        return EngineClient(str(self.socket_path(k)), timeout=timeout)

    def ip(self, k: int) -> str:
        return f"{SUBNET}.{k}"

    # ------------------------------------------------------------------ state
    @property
    def _state_file(self) -> Path:
        return self.dir / "state.json"

    def state(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self._state_file.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _save(self, state: dict[str, Any]) -> None:
        tmp = self._state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self._state_file)

    def _require_state(self) -> dict[str, Any]:
        state = self.state()
        if state is None:
            raise LabError(f"lab {self.name!r} is not up. Start it with: moorage lab up --name {self.name}")
        return state

    @property
    def nodes(self) -> int:
        return int(self._require_state()["nodes"])

    @property
    def registry(self) -> str | None:
        state = self.state()
        port = state.get("registry_port") if state else None
        return f"127.0.0.1:{port}" if port else None

    # -------------------------------------------------------------- preflight
    @staticmethod
    def preflight(registry: bool = False) -> None:
        """Refuse early, with the fix, when the machine can't run a lab."""
        if os.geteuid() != 0:
            raise LabError("the lab needs root (network namespaces and dockerd): run it with sudo or as root")
        needed = dict(REQUIRED)
        if registry:
            needed.update(REGISTRY_BIN)
        missing = sorted({pkg for b, pkg in needed.items() if shutil.which(b) is None})
        if missing:
            raise LabError(
                f"missing system packages; install them with: apt-get install -y {' '.join(missing)}"
            )

    # --------------------------------------------------------------------- up
    def up(
        self,
        nodes: int = 1,
        registry: bool = False,
        progress: Progress = _noop,
        owner_pid: int | None = None,
    ) -> LabStatus:
        """Start ``nodes`` engines (a Swarm when more than one) and maybe a registry.

        ``owner_pid`` marks a lab that belongs to a running process (a test
        session): once that process is gone, :func:`cleanup_stale` removes it.
        """
        if not 1 <= nodes <= 9:
            raise LabError(f"--nodes must be between 1 and 9, not {nodes}")
        self.preflight(registry)
        if self.state() is not None or any(ns.startswith(f"mlab_{self.name}_") for ns in _sys.netns_list()):
            raise LabError(
                f"a lab named {self.name!r} already exists. Remove it with "
                f"`moorage lab down --name {self.name}` or choose another --name"
            )
        self.dir.mkdir(parents=True, exist_ok=True)
        state: dict[str, Any] = {
            "name": self.name,
            "nodes": nodes,
            "created": time.time(),
            "owner_pid": owner_pid,
            "registry_port": None,
            "swarm": nodes > 1,
        }
        self._save(state)
        try:
            progress(f"creating network namespaces for {nodes} node(s)")
            self._make_network(nodes)
            if registry:
                progress("starting the registry on 127.0.0.1")
                state["registry_port"] = self._start_registry(nodes)
                self._save(state)
            errors: list[BaseException] = []

            def start(k: int) -> None:
                try:
                    self._start_dockerd(k, state.get("registry_port"))
                except BaseException as exc:
                    errors.append(exc)

            progress(f"starting {nodes} dockerd(s)")
            threads = [threading.Thread(target=start, args=(k,)) for k in range(1, nodes + 1)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if errors:
                raise errors[0]
            if nodes > 1:
                progress("forming the swarm (node 1 manager)")
                self._form_swarm(nodes)
        except BaseException:
            self.down()
            raise
        return self.status()

    def _make_network(self, nodes: int) -> None:
        hub = self.hub
        _sys.run(["ip", "netns", "add", hub])
        _sys.run(["ip", "-n", hub, "link", "set", "lo", "up"])
        _sys.run(["ip", "-n", hub, "link", "add", "br0", "type", "bridge"])
        _sys.run(["ip", "-n", hub, "link", "set", "br0", "up"])
        for k in range(1, nodes + 1):
            ns = self.netns(k)
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
            _sys.run(["ip", "-n", ns, "addr", "add", f"{self.ip(k)}/24", "dev", "eth0"])
            _sys.run(["ip", "-n", ns, "link", "set", "eth0", "up"])

    def _start_dockerd(self, k: int, registry_port: int | None) -> None:
        nd = self.node_dir(k)
        nd.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {"shutdown-timeout": 3, "log-level": "info"}
        if registry_port:
            config["insecure-registries"] = [f"127.0.0.1:{registry_port}"]
        (nd / "daemon.json").write_text(json.dumps(config))
        sock = self.socket_path(k)
        sock.unlink(missing_ok=True)
        log = open(nd / "dockerd.log", "ab")  # noqa: SIM115 - handed to the child
        cmd = [
            "nsenter", f"--net={_sys.NETNS_DIR / self.netns(k)}", "--",
            "unshare", "--uts", "--",
            "/bin/sh", "-c", 'hostname "$0" && exec "$@"', f"{self.name}-node{k}",
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
        client = self.client(k)
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

    def _form_swarm(self, nodes: int) -> None:
        manager = self.client(1)
        manager.call(
            "POST",
            "/swarm/init",
            {
                "ListenAddr": f"0.0.0.0:{SWARM_PORT}",
                "AdvertiseAddr": f"{self.ip(1)}:{SWARM_PORT}",
                # A short heartbeat lets failure tests see a node go down in seconds.
                "Spec": {
                    "Dispatcher": {"HeartbeatPeriod": 2_000_000_000},
                    "Orchestration": {"TaskHistoryRetentionLimit": 2},
                },
            },
        )
        token = manager.call("GET", "/swarm")["JoinTokens"]["Worker"]
        for k in range(2, nodes + 1):
            self.client(k).call(
                "POST",
                "/swarm/join",
                {
                    "ListenAddr": f"0.0.0.0:{SWARM_PORT}",
                    "AdvertiseAddr": f"{self.ip(k)}:{SWARM_PORT}",
                    "RemoteAddrs": [f"{self.ip(1)}:{SWARM_PORT}"],
                    "JoinToken": token,
                },
            )
        self.wait_nodes_ready(nodes)

    def wait_nodes_ready(self, count: int, timeout: float = 60) -> None:
        """Wait until the manager lists ``count`` nodes in state ``ready``."""
        deadline = time.monotonic() + timeout
        ready = 0
        while time.monotonic() < deadline:
            try:
                listed = self.client(1).call("GET", "/nodes")
            except EngineError:
                listed = []
            ready = sum(1 for n in listed if n["Status"]["State"] == "ready")
            if ready >= count:
                return
            time.sleep(0.3)
        raise LabError(f"only {ready} of {count} swarm nodes became ready within {timeout:.0f} s")

    def _start_registry(self, nodes: int) -> int:
        if shutil.which("docker-registry") is None:
            raise LabError("missing docker-registry; install it with: apt-get install -y docker-registry")
        rdir = self.dir / "registry"
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
                + [self.netns(k) for k in range(1, nodes + 1)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        (rdir / "forward.pid").write_text(str(fwd.pid))
        return port

    # ------------------------------------------------------------ node control
    def _check_node(self, k: int) -> None:
        n = self.nodes
        if not 1 <= k <= n:
            raise LabError(f"lab {self.name!r} has nodes 1..{n}; there is no node {k}")

    def node_running(self, k: int) -> bool:
        pid = _sys.read_pid(self.node_dir(k) / "docker.pid")
        return pid is not None and _sys.pid_alive(pid) and self.client(k).ping()

    def stop_node(self, k: int) -> None:
        """Stop node k's dockerd the way an operator would (SIGTERM), its containers with it."""
        self._check_node(k)
        nd = self.node_dir(k)
        pids = [p for p in (_sys.read_pid(nd / "docker.pid"),) if p]
        _sys.terminate(pids, grace=30)
        _sys.kill(_sys.find_processes([f"{nd}/"], []))
        _sys.unmount_all(nd / "data")
        _sys.unmount_all(nd / "exec")

    def start_node(self, k: int) -> None:
        """Start node k's dockerd again; a swarm member rejoins on its own."""
        self._check_node(k)
        if self.node_running(k):
            return
        self._start_dockerd(k, self._require_state().get("registry_port"))

    def cut_node(self, k: int) -> None:
        """Partition node k from the others (its link on the hub bridge goes down)."""
        self._check_node(k)
        _sys.run(["ip", "-n", self.hub, "link", "set", f"n{k}", "down"])

    def heal_node(self, k: int) -> None:
        """Undo :meth:`cut_node`."""
        self._check_node(k)
        _sys.run(["ip", "-n", self.hub, "link", "set", f"n{k}", "up"])

    def node_connected(self, k: int) -> bool:
        out = _sys.run(["ip", "-n", self.hub, "-o", "link", "show", f"n{k}"], check=False)
        m = re.search(r"<([^>]*)>", out.stdout)
        return out.returncode == 0 and m is not None and "UP" in m.group(1).split(",")

    # ----------------------------------------------------------------- status
    def status(self) -> LabStatus:
        state = self.state()
        if state is None:
            return LabStatus(self.name, False, (), None, False)
        nodes: list[NodeStatus] = []
        for k in range(1, int(state["nodes"]) + 1):
            running = self.node_running(k)
            swarm = "-"
            if running:
                try:
                    swarm = str(self.client(k, timeout=5).call("GET", "/info")["Swarm"]["LocalNodeState"])
                except EngineError:
                    swarm = "unknown"
            role = "manager" if k == 1 else "worker"
            if not state.get("swarm"):
                role = "standalone"
            nodes.append(
                NodeStatus(
                    k,
                    role,
                    running,
                    self.node_connected(k),
                    swarm or "inactive",
                    self.docker_host(k),
                )
            )
        reg_pid = _sys.read_pid(self.dir / "registry" / "registry.pid")
        return LabStatus(
            self.name,
            True,
            tuple(nodes),
            self.registry,
            bool(reg_pid and _sys.pid_alive(reg_pid)),
        )

    # ------------------------------------------------------------------- down
    def _markers(self) -> list[str]:
        return [f"{self.dir}/", f"mlab_{self.name}_"]

    def _namespaces(self) -> list[str]:
        return [ns for ns in _sys.netns_list() if ns.startswith(f"mlab_{self.name}_")]

    def down(self) -> bool:
        """Remove every process, namespace, veth, mount and file of this lab.

        Works from what is on the machine, so it also cleans up after a run that
        was killed half-way. Safe to call twice. Returns whether anything was found.
        """
        namespaces = self._namespaces()
        found = self.dir.exists() or bool(namespaces)
        if not found:
            return False
        daemons = []
        for pidfile in self.dir.glob("n*/docker.pid"):
            pid = _sys.read_pid(pidfile)
            if pid:
                daemons.append(pid)
        _sys.terminate(daemons, grace=20)
        inodes = [i for i in (_sys.netns_inode(ns) for ns in namespaces) if i is not None]
        for _ in range(3):
            pids = _sys.find_processes(self._markers(), inodes)
            if not pids:
                break
            _sys.kill(pids)
        _sys.unmount_all(self.dir)
        for ns in namespaces:
            _sys.run(["ip", "netns", "delete", ns], check=False)
        _sys.remove_tree(self.dir)
        left = self.leftovers()
        if left:
            raise LabError(f"lab {self.name!r} was not fully removed: " + "; ".join(left))
        return True

    def leftovers(self) -> list[str]:
        """Anything of this lab still on the machine (empty after a clean ``down``)."""
        left: list[str] = []
        inodes = [i for i in (_sys.netns_inode(ns) for ns in self._namespaces()) if i is not None]
        pids = _sys.find_processes(self._markers(), inodes)
        if pids:
            left.append(f"processes {sorted(pids)}")
        if self._namespaces():
            left.append(f"network namespaces {self._namespaces()}")
        mounts = _sys.mounts_under(self.dir)
        if mounts:
            left.append(f"{len(mounts)} mount(s) under {self.dir}")
        if self.dir.exists():
            left.append(f"directory {self.dir}")
        return left


def cleanup_stale(progress: Progress = _noop) -> list[str]:
    """Remove labs whose owning process has died (e.g. an interrupted test run),
    and namespaces that no lab state explains. Labs started by hand are kept."""
    removed: list[str] = []
    for name in list_labs():
        lab = Lab(name)
        state = lab.state()
        owner = state.get("owner_pid") if state else None
        orphan = state is None
        if orphan or (owner and not _sys.pid_alive(int(owner))):
            progress(f"removing stale lab {name!r}")
            lab.down()
            removed.append(name)
    return removed


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
