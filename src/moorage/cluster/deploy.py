"""Moorage as a Swarm service: the gateway runs as a global service on the managers,
one task per manager in front of that manager's engine, with the store's URL, the
gateways' CA and the audit checkpoint key as Swarm secrets. Swarm places the tasks
and restarts them; the gateways agree through the shared store.

The TLS listener is published in host mode: each manager answers on its own address,
and clients list every manager in their Docker context (or behind one DNS name), so
a client of a manager that dies reconnects to another. Swarm's ingress would also
work, but it hides the client's address behind the routing mesh.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moorage.engine import EngineClient, EngineError

__all__ = ["Deployment", "deploy", "secret_name"]

# What each gateway needs, read from the secrets Swarm mounts (target paths in the task).
DATA = "/var/lib/moorage"
_SECRETS = {  # (file in the CA / key folder, where the task finds it)
    "ca.pem": f"{DATA}/pki/ca.pem",
    "ca-key.pem": f"{DATA}/pki/ca-key.pem",
}


def secret_name(prefix: str, content: bytes) -> str:
    """A secret's name from its content: secrets are immutable, so a new value is a new
    secret and a service update moves the tasks to it."""
    return f"{prefix}-{hashlib.sha256(content).hexdigest()[:12]}"


@dataclass(frozen=True)
class Deployment:
    """What to run: the image (with Moorage installed), the service's name, the TLS
    port, and the files the gateways share."""

    image: str
    store_url: str
    name: str = "moorage"
    port: int = 2376
    pki: Path | None = None  # a folder with ca.pem and ca-key.pem, shared by every gateway
    audit_keys: Path | None = None  # the checkpoint key folder every gateway signs with
    command: tuple[str, ...] = ("moorage",)
    args: tuple[str, ...] = ()  # more `moorage up` options (--policy ..., --identity ...)
    mounts: tuple[dict[str, Any], ...] = ()  # extra mounts (Engine API Mount objects)
    labels: dict[str, str] = field(default_factory=dict)
    # the node's engine socket on the node; Swarm expands templates such as {{.Node.Hostname}}
    engine_socket: str = "/var/run/docker.sock"

    def secrets(self) -> list[tuple[str, bytes, str]]:
        """(name, content, target path) of every secret the tasks read."""
        out = [(secret_name(f"{self.name}-store", self.store_url.encode()), self.store_url.encode(),
                "/run/secrets/moorage-store")]  # fmt: skip
        if self.pki is not None:
            for file, target in _SECRETS.items():
                data = (self.pki / file).read_bytes()
                out.append((secret_name(f"{self.name}-{file.replace('.', '-')}", data), data, target))
        if self.audit_keys is not None:
            for key in sorted(self.audit_keys.iterdir()):
                if key.is_file():
                    data = key.read_bytes()
                    out.append((secret_name(f"{self.name}-audit-{key.stem}", data), data,
                                f"{DATA}/audit-keys/{key.name}"))  # fmt: skip
        return out

    def service(self, secret_ids: dict[str, str]) -> dict[str, Any]:
        """The Engine API service spec: global on the managers, the node's engine socket
        mounted, TLS published in host mode, restarted on any exit."""
        up = [*self.command, "up", "--upstream", "unix:///var/run/docker.sock", "--data-dir", DATA,
              "--store-file", "/run/secrets/moorage-store", "--tls-listen", f"0.0.0.0:{self.port}",
              "--context", "", *self.args]  # fmt: skip
        secrets = [
            {"SecretID": secret_ids[name], "SecretName": name,
             "File": {"Name": target, "UID": "0", "GID": "0", "Mode": 0o400}}
            for name, _, target in self.secrets()
        ]  # fmt: skip
        engine = {"Type": "bind", "Source": self.engine_socket, "Target": "/var/run/docker.sock"}
        data = {"Type": "volume", "Source": f"{self.name}-data", "Target": DATA}
        mounts = [engine, data, *self.mounts]
        return {
            "Name": self.name,
            "Labels": dict(self.labels),
            "TaskTemplate": {
                "ContainerSpec": {
                    "Image": self.image,
                    "Hostname": "{{.Node.Hostname}}",  # records and the store name the manager
                    "Command": up[:1],
                    "Args": up[1:],
                    "Mounts": mounts,
                    "Secrets": secrets,
                },
                "Placement": {"Constraints": ["node.role==manager"]},
                "RestartPolicy": {"Condition": "any", "Delay": 1_000_000_000},
            },
            "Mode": {"Global": {}},
            "UpdateConfig": {"Parallelism": 1, "Order": "stop-first", "FailureAction": "rollback"},
            "EndpointSpec": {
                "Ports": [
                    {
                        "Protocol": "tcp",
                        "TargetPort": self.port,
                        "PublishedPort": self.port,
                        "PublishMode": "host",
                    }
                ]
            },
        }


def deploy(engine: EngineClient, d: Deployment) -> tuple[str, bool]:
    """Create the secrets the service lacks, then create the service or update it to
    this spec; (service id, created)."""
    ids: dict[str, str] = {}
    existing = {s["Spec"]["Name"]: s["ID"] for s in engine.call("GET", "/secrets") or []}
    for name, data, _ in d.secrets():
        if name in existing:
            ids[name] = existing[name]
            continue
        body = {"Name": name, "Data": base64.b64encode(data).decode(), "Labels": {"moorage": d.name}}
        made = engine.call("POST", "/secrets/create", body)
        ids[name] = made["ID"]
    spec = d.service(ids)
    try:
        current = engine.call("GET", f"/services/{d.name}")
    except EngineError as exc:
        if exc.status != 404:
            raise
        made = engine.call("POST", "/services/create", spec)
        return str(made["ID"]), True
    version = current["Version"]["Index"]
    engine.call("POST", f"/services/{current['ID']}/update?version={version}", spec)
    return str(current["ID"]), False
