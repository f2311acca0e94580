"""A Compose file as the Engine API requests ``docker compose up`` would send: one
container create per service, one volume create per declared volume. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from moorage.policy.documents import PolicyError
from moorage.policy.units import parse_size

__all__ = ["ComposeRequest", "compose_requests"]


@dataclass(frozen=True)
class ComposeRequest:
    """One request a Compose file would make: its name (``services.web``), kind, body and line."""

    name: str  # services.web / volumes.data
    kind: str
    body: dict[str, object]
    line: int


def _list(value: object) -> list[object]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _kv(value: object) -> dict[str, str]:
    if isinstance(value, dict):
        return {str(k): "" if v is None else str(v) for k, v in value.items()}
    out = {}
    for item in _list(value):
        k, _, v = str(item).partition("=")
        out[k] = v
    return out


def _bool(value: object) -> bool:
    return value is True or str(value).lower() in ("true", "yes", "1")


def _ports(value: object) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    for p in _list(value):
        if isinstance(p, dict):
            target = f"{p.get('target')}/{p.get('protocol', 'tcp')}"
            out.setdefault(target, []).append(
                {"HostIp": str(p.get("host_ip", "")), "HostPort": str(p.get("published", ""))}
            )
            continue
        text, _, proto = str(p).partition("/")
        parts = text.rsplit(":", 2)
        ip, host = ("", "")
        if len(parts) == 3:
            ip, host, container = parts
        elif len(parts) == 2:
            host, container = parts
        else:
            container = parts[0]
        out.setdefault(f"{container}/{proto or 'tcp'}", []).append(
            {"HostIp": ip.strip("[]"), "HostPort": host}
        )
    return out


def _service_body(svc: dict[str, Any]) -> dict[str, object]:
    host: dict[str, object] = {}
    body: dict[str, object] = {"Image": svc.get("image") or "(built)", "HostConfig": host}
    if "user" in svc:
        body["User"] = str(svc["user"])
    labels = _kv(svc.get("labels"))
    if labels:
        body["Labels"] = labels
    if _bool(svc.get("privileged")):
        host["Privileged"] = True
    host["CapAdd"] = [str(c) for c in _list(svc.get("cap_add"))]
    host["CapDrop"] = [str(c) for c in _list(svc.get("cap_drop"))]
    for key, field in (("pid", "PidMode"), ("ipc", "IpcMode"), ("uts", "UTSMode"),
                       ("network_mode", "NetworkMode"), ("userns_mode", "UsernsMode"),
                       ("cgroup", "CgroupnsMode")):  # fmt: skip
        if key in svc:
            host[field] = str(svc[key])
    binds, mounts = [], []
    for v in _list(svc.get("volumes")):
        if isinstance(v, dict):
            mounts.append({"Type": str(v.get("type", "volume")), "Source": str(v.get("source", "")),
                           "Target": str(v.get("target", ""))})  # fmt: skip
        else:
            text = str(v)
            if text.startswith((".", "~")):
                text = "/" + text  # a relative host path is still a host path
            binds.append(text)
    host["Binds"], host["Mounts"] = binds, mounts
    host["Devices"] = [{"PathOnHost": str(d).split(":", 1)[0]} for d in _list(svc.get("devices"))]
    host["DeviceCgroupRules"] = [str(r) for r in _list(svc.get("device_cgroup_rules"))]
    host["SecurityOpt"] = [str(o) for o in _list(svc.get("security_opt"))]
    if _bool(svc.get("read_only")):
        host["ReadonlyRootfs"] = True
    host["Sysctls"] = _kv(svc.get("sysctls"))
    host["Tmpfs"] = {str(t).split(":", 1)[0]: "" for t in _list(svc.get("tmpfs"))}
    host["PortBindings"] = _ports(svc.get("ports"))
    limits = ((svc.get("deploy") or {}).get("resources") or {}).get("limits") or {}
    memory = svc.get("mem_limit", limits.get("memory"))
    if memory is not None:
        host["Memory"] = parse_size(memory)
    cpus = svc.get("cpus", limits.get("cpus"))
    if cpus is not None:
        host["NanoCpus"] = int(float(cpus) * 1e9)
    pids = svc.get("pids_limit", limits.get("pids"))
    if pids is not None:
        host["PidsLimit"] = int(pids)
    nets = svc.get("networks")
    if isinstance(nets, dict | list) and nets:
        names = list(nets) if isinstance(nets, dict) else [str(n) for n in nets]
        body["NetworkingConfig"] = {"EndpointsConfig": {n: {} for n in names}}
    return body


def compose_requests(text: str, source: str) -> list[ComposeRequest]:
    """The create requests docker-compose would send for a Compose file, each with the
    line it comes from. Raises PolicyError naming the file and line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        doc = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        line = f":{exc.problem_mark.line + 1}" if exc.problem_mark else ""
        raise PolicyError(f"{source}{line}: not valid YAML: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("services"), dict):
        raise PolicyError(f"{source}: not a Compose file (no services mapping)")

    def line_of(section: str, name: str) -> int:
        for k, v in node.value if isinstance(node, yaml.MappingNode) else []:
            if k.value == section and isinstance(v, yaml.MappingNode):
                for k2, _ in v.value:
                    if k2.value == name:
                        return int(k2.start_mark.line) + 1
        return 1

    out = []
    for name, svc in doc["services"].items():
        if not isinstance(svc, dict):
            raise PolicyError(f"{source}:{line_of('services', name)}: services.{name} must be a mapping")
        try:
            body = _service_body(svc)
        except (ValueError, TypeError) as exc:
            raise PolicyError(f"{source}:{line_of('services', name)}: services.{name}: {exc}") from exc
        out.append(ComposeRequest(f"services.{name}", "container.create", body, line_of("services", name)))
    for name, vol in (doc.get("volumes") or {}).items():
        vol = vol or {}
        body = {"Name": str(name), "Driver": str(vol.get("driver", "local")),
                "DriverOpts": _kv(vol.get("driver_opts"))}  # fmt: skip
        out.append(ComposeRequest(f"volumes.{name}", "volume.create", body, line_of("volumes", name)))
    for name, net in (doc.get("networks") or {}).items():
        if isinstance(net, dict) and net.get("external"):
            continue
        out.append(ComposeRequest(f"networks.{name}", "network.create", {"Name": str(name)},
                                  line_of("networks", name)))  # fmt: skip
    return out
