"""Where a lab's pieces live: its name, folder, namespaces, sockets and addresses.

Pure naming, shared by the code that starts a lab (lab/bringup.py) and the code that
controls and removes it (lab/lab.py); nothing here touches the machine.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from moorage.engine import EngineClient

__all__ = ["NAME_RE", "SUBNET", "SWARM_PORT", "LabError", "LabLayout", "lab_root"]

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,19}$")
SUBNET = "10.213.0"  # lives only inside the lab's own namespaces
SWARM_PORT = 2377


class LabError(Exception):
    """Something the person running the lab must fix; the message says what and how."""


def lab_root() -> Path:
    """Where labs keep their state (``MOORAGE_LAB_ROOT``, default /var/lib/moorage/lab)."""
    return Path(os.environ.get("MOORAGE_LAB_ROOT", "/var/lib/moorage/lab"))


class LabLayout:
    """The names of one lab's resources, derived from its name alone."""

    def __init__(self, name: str = "default") -> None:
        if not NAME_RE.match(name):
            raise LabError(
                f"invalid lab name {name!r}: use 1-20 lower-case letters, digits or '-', "
                "starting with a letter or digit"
            )
        self.name = name
        self.dir = lab_root() / name

    def netns(self, k: int) -> str:
        """Node ``k``'s network namespace."""
        return f"mlab_{self.name}_n{k}"

    @property
    def hub(self) -> str:
        """The namespace holding the bridge every node's veth is plugged into."""
        return f"mlab_{self.name}_hub"

    def node_dir(self, k: int) -> Path:
        """Node ``k``'s folder: data-root, exec-root, pidfile, socket, log."""
        return self.dir / f"n{k}"

    def socket_path(self, k: int) -> Path:
        """Node ``k``'s engine socket."""
        return self.node_dir(k) / "docker.sock"

    def docker_host(self, k: int) -> str:
        """Node ``k``'s engine as a ``DOCKER_HOST`` value."""
        return f"unix://{self.socket_path(k)}"

    def client(self, k: int, timeout: float = 60.0) -> EngineClient:
        """An engine client for node ``k``."""
        return EngineClient(str(self.socket_path(k)), timeout=timeout)

    def ip(self, k: int) -> str:
        """Node ``k``'s address on the lab's private bridge."""
        return f"{SUBNET}.{k}"
