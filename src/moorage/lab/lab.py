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
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from moorage.engine import EngineError
from moorage.lab import _sys, bringup
from moorage.lab.layout import NAME_RE, LabError, LabLayout, lab_root

__all__ = ["Lab", "LabError", "LabStatus", "NodeStatus", "cleanup_stale", "lab_root", "list_labs"]

Progress = Callable[[str], None]


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
        """The status as plain JSON data (``moorage lab status --json``)."""
        return asdict(self)


def _noop(_: str) -> None:
    pass


class Lab(LabLayout):
    """One named lab. Construct it, then ``up()``, use it, ``down()``."""

    # ------------------------------------------------------------------ state
    @property
    def _state_file(self) -> Path:
        return self.dir / "state.json"

    def state(self) -> dict[str, Any] | None:
        """What ``up()`` recorded in state.json, or None when the lab is not up."""
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
        """How many nodes the lab was started with; LabError when it is not up."""
        return int(self._require_state()["nodes"])

    @property
    def registry(self) -> str | None:
        """The registry's ``host:port``, or None when the lab has none."""
        state = self.state()
        port = state.get("registry_port") if state else None
        return f"127.0.0.1:{port}" if port else None

    # -------------------------------------------------------------- preflight
    @staticmethod
    def preflight(registry: bool = False) -> None:
        """Refuse early, with the fix, when the machine can't run a lab."""
        bringup.preflight(registry)

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
            bringup.make_network(self, nodes)
            if registry:
                progress("starting the registry on 127.0.0.1")
                state["registry_port"] = bringup.start_registry(self, nodes)
                self._save(state)
            errors: list[BaseException] = []

            def start(k: int) -> None:
                try:
                    bringup.start_dockerd(self, k, state.get("registry_port"))
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
                bringup.form_swarm(self, nodes)
        except BaseException:
            self.down()
            raise
        return self.status()

    def wait_nodes_ready(self, count: int, timeout: float = 60) -> None:
        """Wait until the manager lists ``count`` nodes in state ``ready``."""
        bringup.wait_nodes_ready(self, count, timeout)

    # ------------------------------------------------------------ node control
    def _check_node(self, k: int) -> None:
        n = self.nodes
        if not 1 <= k <= n:
            raise LabError(f"lab {self.name!r} has nodes 1..{n}; there is no node {k}")

    def node_running(self, k: int) -> bool:
        """Whether node k's dockerd is alive and answers a ping."""
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
        bringup.start_dockerd(self, k, self._require_state().get("registry_port"))

    def cut_node(self, k: int) -> None:
        """Partition node k from the others (its link on the hub bridge goes down)."""
        self._check_node(k)
        _sys.run(["ip", "-n", self.hub, "link", "set", f"n{k}", "down"])

    def heal_node(self, k: int) -> None:
        """Undo :meth:`cut_node`."""
        self._check_node(k)
        _sys.run(["ip", "-n", self.hub, "link", "set", f"n{k}", "up"])

    def node_connected(self, k: int) -> bool:
        """Whether node k's link on the hub bridge is up (see :meth:`cut_node`)."""
        out = _sys.run(["ip", "-n", self.hub, "-o", "link", "show", f"n{k}"], check=False)
        m = re.search(r"<([^>]*)>", out.stdout)
        return out.returncode == 0 and m is not None and "UP" in m.group(1).split(",")

    # ----------------------------------------------------------------- status
    def status(self) -> LabStatus:
        """The lab and each node as seen right now (asks every engine)."""
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
