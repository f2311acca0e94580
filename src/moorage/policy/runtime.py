"""Runtime hardening checks: one normalised view of a workload, whatever field or
spelling expressed it, and the ``baseline`` / ``restricted`` rules over it. Pure.

The engine reads JSON field names case-insensitively, accepts capabilities with or
without ``CAP_`` in any case, and reaches the host through several fields (binds,
bind mounts, namespaces, devices, security options). The view folds all of them,
so a rule is written once and holds for container create, exec create and a
service's task template alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Finding", "RuntimeView", "check", "view_build", "view_container", "view_exec", "view_service",
           "view_volume"]  # fmt: skip

# Docker's default capability set; Kubernetes' baseline allows adding only these.
DEFAULT_CAPS = frozenset({"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                          "NET_BIND_SERVICE", "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID",
                          "SYS_CHROOT"})  # fmt: skip
SAFE_SYSCTLS = frozenset({"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range",
                          "net.ipv4.ip_unprivileged_port_start", "net.ipv4.tcp_syncookies",
                          "net.ipv4.ping_group_range"})  # fmt: skip
DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock", "/var/run/docker", "/run/docker")


@dataclass(frozen=True)
class Finding:
    """One violation: the rule, where in the request, what was found, how to fix it."""

    rule: str
    path: str
    value: Any
    message: str
    fix: str


@dataclass
class RuntimeView:
    privileged: list[str] = field(default_factory=list)  # field paths that grant it
    cap_add: list[tuple[str, str]] = field(default_factory=list)  # (path, CAPABILITY)
    cap_drop: set[str] = field(default_factory=set)
    host_namespaces: list[tuple[str, str]] = field(default_factory=list)  # (path, namespace)
    host_paths: list[tuple[str, str]] = field(default_factory=list)  # (path, host source)
    devices: list[tuple[str, Any]] = field(default_factory=list)
    unconfined: list[tuple[str, str]] = field(default_factory=list)  # (path, option)
    no_new_privileges: bool = False
    user: tuple[str, str] = ("User", "")
    read_only_rootfs: bool = False
    sysctls: list[tuple[str, str]] = field(default_factory=list)
    base: str = "HostConfig"  # where the hardening fields live, for messages


def _get(obj: Any, key: str) -> Any:
    if not isinstance(obj, dict):
        return None
    if key in obj:
        return obj[key]
    folded = key.lower()
    return next((v for k, v in obj.items() if isinstance(k, str) and k.lower() == folded), None)


def _cap(name: Any) -> str:
    text = str(name).strip().upper()
    return text[4:] if text.startswith("CAP_") else text


def _is_root(user: str) -> bool:
    name = user.split(":", 1)[0].strip()
    return name in ("", "root", "0")


def _security_opts(view: RuntimeView, opts: Any, where: str) -> None:
    for i, opt in enumerate(opts or []):
        text = str(opt).strip().lower().replace(" ", "")
        key, _, value = text.replace(":", "=", 1).partition("=")
        if (key in ("seccomp", "apparmor") and value == "unconfined") or (
            key == "label" and value == "disable"
        ):
            view.unconfined.append((f"{where}[{i}]", text))
        elif key == "no-new-privileges" and value in ("", "true", "1"):
            view.no_new_privileges = True


def view_container(body: Any) -> RuntimeView:
    """The view of a ``POST /containers/create`` body."""
    v = RuntimeView()
    host = _get(body, "HostConfig")
    host = host if isinstance(host, dict) else {}
    if _get(host, "Privileged"):
        v.privileged.append("HostConfig.Privileged")
    for i, c in enumerate(_get(host, "CapAdd") or []):
        v.cap_add.append((f"HostConfig.CapAdd[{i}]", _cap(c)))
    v.cap_drop = {_cap(c) for c in _get(host, "CapDrop") or []}
    for name in ("PidMode", "IpcMode", "UTSMode", "NetworkMode", "UsernsMode", "CgroupnsMode"):
        mode = str(_get(host, name) or "").strip().lower()
        if mode == "host":
            v.host_namespaces.append((f"HostConfig.{name}", name[:-4].lower()))
    for i, bind in enumerate(_get(host, "Binds") or []):
        src = str(bind).split(":", 1)[0]
        if src.startswith("/"):
            v.host_paths.append((f"HostConfig.Binds[{i}]", src))
    for i, m in enumerate(_get(host, "Mounts") or []):
        if str(_get(m, "Type") or "").lower() == "bind":
            v.host_paths.append((f"HostConfig.Mounts[{i}].Source", str(_get(m, "Source") or "")))
    for i, d in enumerate(_get(host, "Devices") or []):
        v.devices.append((f"HostConfig.Devices[{i}]", d))
    for i, r in enumerate(_get(host, "DeviceCgroupRules") or []):
        v.devices.append((f"HostConfig.DeviceCgroupRules[{i}]", r))
    _security_opts(v, _get(host, "SecurityOpt"), "HostConfig.SecurityOpt")
    v.user = ("User", str(_get(body, "User") or ""))
    v.read_only_rootfs = bool(_get(host, "ReadonlyRootfs"))
    for key, value in (_get(host, "Sysctls") or {}).items():
        v.sysctls.append((f"HostConfig.Sysctls.{key}", str(key)))
        del value
    return v


def view_exec(body: Any) -> RuntimeView:
    """The view of a ``POST /containers/{id}/exec`` body."""
    v = RuntimeView(no_new_privileges=True, read_only_rootfs=True)  # inherited from the container
    if _get(body, "Privileged"):
        v.privileged.append("Privileged")
    v.user = ("User", str(_get(body, "User") or ""))
    return v


def view_service(spec: Any) -> RuntimeView:
    """The view of a service spec's ``TaskTemplate.ContainerSpec``."""
    v = RuntimeView(base="TaskTemplate.ContainerSpec")
    cs = _get(_get(spec, "TaskTemplate"), "ContainerSpec")
    cs = cs if isinstance(cs, dict) else {}
    where = "TaskTemplate.ContainerSpec"
    for i, c in enumerate(_get(cs, "CapabilityAdd") or []):
        v.cap_add.append((f"{where}.CapabilityAdd[{i}]", _cap(c)))
    v.cap_drop = {_cap(c) for c in _get(cs, "CapabilityDrop") or []}
    for i, m in enumerate(_get(cs, "Mounts") or []):
        if str(_get(m, "Type") or "").lower() == "bind":
            v.host_paths.append((f"{where}.Mounts[{i}].Source", str(_get(m, "Source") or "")))
    privileges = _get(cs, "Privileges")
    seccomp = str(_get(_get(privileges, "Seccomp"), "Mode") or "").lower()
    if seccomp == "unconfined":
        v.unconfined.append((f"{where}.Privileges.Seccomp.Mode", "seccomp=unconfined"))
    apparmor = str(_get(_get(privileges, "AppArmor"), "Mode") or "").lower()
    if apparmor == "disabled":
        v.unconfined.append((f"{where}.Privileges.AppArmor.Mode", "apparmor=unconfined"))
    v.no_new_privileges = bool(_get(privileges, "NoNewPrivileges"))
    v.user = (f"{where}.User", str(_get(cs, "User") or ""))
    v.read_only_rootfs = bool(_get(cs, "ReadOnly"))
    for key in _get(cs, "Sysctls") or {}:
        v.sysctls.append((f"{where}.Sysctls.{key}", str(key)))
    return v


def view_build(query: dict[str, list[str]]) -> RuntimeView:
    """The view of ``POST /build``: ``RUN`` steps get the build's network mode."""
    v = RuntimeView(no_new_privileges=True, read_only_rootfs=True, user=("User", "build"), cap_drop={"ALL"})
    for key, values in query.items():
        if key.lower() == "networkmode" and any(x.strip().lower() == "host" for x in values):
            v.host_namespaces.append(("networkmode", "network"))
    return v


def view_volume(body: Any) -> RuntimeView:
    """The view of ``POST /volumes/create``: the ``local`` driver with ``o=bind`` (or
    ``type=none``) and a ``device`` mounts a host path into every container using it."""
    v = RuntimeView(no_new_privileges=True, read_only_rootfs=True, user=("User", "volume"))
    driver = str(_get(body, "Driver") or "local").lower()
    opts = _get(body, "DriverOpts")
    opts = opts if isinstance(opts, dict) else {}
    device = str(_get(opts, "device") or "")
    binding = (
        "bind" in str(_get(opts, "o") or "").lower().split(",")
        or str(_get(opts, "type") or "").lower() == "none"
    )
    if driver == "local" and binding and device.startswith("/"):
        v.host_paths.append(("DriverOpts.device", device))
    v.cap_drop = {"ALL"}
    return v


def check(view: RuntimeView, pack: str) -> list[Finding]:
    """Findings of ``baseline`` (no host-level escape) or ``restricted`` (baseline plus
    least privilege), mirroring Kubernetes' Pod Security Standards."""
    if pack not in ("baseline", "restricted"):
        raise ValueError(f"unknown pack {pack!r}: use baseline or restricted")
    out: list[Finding] = []

    def add(rule: str, path: str, value: Any, message: str, fix: str) -> None:
        out.append(Finding(f"runtime.{rule}", path, value, message, fix))

    for path in view.privileged:
        add("privileged", path, True, "privileged mode gives the workload the host",
            "remove --privileged; add only the capability you need")  # fmt: skip
    allowed = {"NET_BIND_SERVICE"} if pack == "restricted" else DEFAULT_CAPS
    for path, cap in view.cap_add:
        if cap == "ALL" or cap not in allowed:
            add("capabilities", path, cap, f"capability {cap} is not allowed in {pack}",
                f"remove --cap-add {cap.lower()}")  # fmt: skip
    if pack == "restricted" and "ALL" not in view.cap_drop:
        drop = "CapabilityDrop" if view.base != "HostConfig" else "CapDrop"
        add("capabilities.drop-all", f"{view.base}.{drop}", sorted(view.cap_drop),
            "restricted requires dropping all capabilities", "add --cap-drop ALL")  # fmt: skip
    for path, ns in view.host_namespaces:
        add("host-namespace", path, "host", f"sharing the host's {ns} namespace", f"remove --{ns} host")
    for path, src in view.host_paths:
        clean = "/" + "/".join(p for p in src.split("/") if p not in ("", "."))
        if clean in ("/var/run", "/run") or any(
            clean == s or clean.startswith(s + "/") for s in DOCKER_SOCKETS
        ):
            add("docker-socket", path, src, "the Docker socket controls the host",
                "never mount the Docker socket; talk to Moorage instead")  # fmt: skip
        else:
            add("host-path", path, src, f"host path {src} is mounted", "use a named volume instead")
    for path, dev in view.devices:
        add("devices", path, dev, "host devices are exposed", "remove --device / --device-cgroup-rule")
    for path, opt in view.unconfined:
        add("unconfined", path, opt, f"{opt} turns off a kernel confinement", "remove the --security-opt")
    for path, key in view.sysctls:
        if key not in SAFE_SYSCTLS:
            add("sysctls", path, key, f"sysctl {key} is not in the safe set", f"remove --sysctl {key}")
    if pack == "restricted":
        if not view.no_new_privileges:
            nnp = "Privileges.NoNewPrivileges" if view.base != "HostConfig" else "SecurityOpt"
            add("no-new-privileges", f"{view.base}.{nnp}", None, "no-new-privileges is required",
                "add --security-opt no-new-privileges")  # fmt: skip
        if _is_root(view.user[1]):
            add("non-root", view.user[0], view.user[1] or "(image default)",
                "the workload must not run as root", "set --user to a non-zero uid")  # fmt: skip
        if not view.read_only_rootfs:
            add(
                "read-only-rootfs",
                f"{view.base}.{'ReadOnly' if view.base != 'HostConfig' else 'ReadonlyRootfs'}",
                False,
                "the root filesystem must be read-only",
                "add --read-only, with a tmpfs where needed",
            )
    return out
