"""One :class:`~moorage.policy.rules.runtime_read.RuntimeView` per kind of request:
a container create, an exec, a service spec, a build's query, a volume create.
Every spelling the engine accepts is read, so a rule sees what the engine applies.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Mapping
from functools import partial

from moorage.engine_api.gojson import Struct
from moorage.policy.hostopts import (
    DEFAULT_MASKED_PATHS,
    DEFAULT_READONLY_PATHS,
    cap_name,
    tmpfs_option_problem,
)
from moorage.policy.rules.base import _dict, _get, _list, _text
from moorage.policy.rules.runtime_read import (
    RuntimeView,
    _caps,
    _isolation,
    _local_options,
    _log_config,
    _mounts,
    _oom_score,
    _security_opts,
    _sysctls,
    _volume_driver,
)

__all__ = [
    "view_build",
    "view_container",
    "view_exec",
    "view_service",
    "view_volume",
]


# ---------------------------------------------------------------------- views
# Namespace modes: (namespace, values allowed, prefixes allowed). "host" is the escape;
# anything else not listed is refused too.
_MODES: dict[str, tuple[str, frozenset[str], tuple[str, ...]]] = {
    "PidMode": ("pid", frozenset({""}), ("container:",)),
    "IpcMode": ("ipc", frozenset({"", "none", "private", "shareable"}), ("container:",)),
    "UTSMode": ("uts", frozenset({""}), ()),
    "UsernsMode": ("user", frozenset({""}), ()),
    "CgroupnsMode": ("cgroup", frozenset({"", "private"}), ()),
}


def view_container(body: object) -> RuntimeView:
    """The view of a ``POST /containers/create`` body."""
    v = RuntimeView()
    host = _dict(_get(body, "HostConfig"))
    # a decoded body has the engine's field names: read it directly (the hot path)
    get: Callable[[str], object] = host.get if type(host) is Struct else partial(_get, host)
    if get("Privileged"):
        v.privileged.append("HostConfig.Privileged")
    _caps(v, get("CapAdd"), "HostConfig.CapAdd")
    # API 1.40 (19.03) only: a list that replaces the default set; checked the same way.
    _caps(v, get("Capabilities"), "HostConfig.Capabilities")
    v.cap_drop = {cap_name(c) for c in _list(get("CapDrop"))}
    if _text(get("NetworkMode")).lower() == "host":
        v.host_namespaces.append(("HostConfig.NetworkMode", "network"))
    for name, (ns, allowed, prefixes) in _MODES.items():
        mode = _text(get(name))
        if mode.lower() == "host":
            v.host_namespaces.append((f"HostConfig.{name}", ns))
        elif mode not in allowed and not (prefixes and mode.startswith(prefixes)):
            v.refuse(
                "host-namespace",
                f"HostConfig.{name}",
                mode,
                f"{name} {mode!r} is not a mode baseline allows",
                f"remove --{ns}",
            )
    for i, bind in enumerate(_list(get("Binds"))):
        src = str(bind).split(":", 1)[0]
        if src.startswith("/"):
            v.host_paths.append((f"HostConfig.Binds[{i}]", src))
    _mounts(v, get("Mounts"), "HostConfig.Mounts")
    _volume_driver(v, get("VolumeDriver"), "HostConfig.VolumeDriver")
    for dest, opts in _dict(get("Tmpfs")).items():
        for option in _text(opts).split(",") if opts else []:
            reason = tmpfs_option_problem(option)
            if reason is not None:
                v.refuse(
                    "mount",
                    f'HostConfig.Tmpfs["{dest}"]',
                    opts,
                    reason,
                    "use size, mode, uid, gid and the noexec/nosuid/nodev flags",
                )
    for name in ("Devices", "DeviceCgroupRules", "DeviceRequests"):
        for i, d in enumerate(_list(get(name))):
            v.devices.append((f"HostConfig.{name}[{i}]", d))
    _security_opts(v, get("SecurityOpt"), "HostConfig.SecurityOpt")
    for name, defaults in (("MaskedPaths", DEFAULT_MASKED_PATHS), ("ReadonlyPaths", DEFAULT_READONLY_PATHS)):
        paths = get(name)
        if paths is None:
            continue  # absent or null: the engine applies its defaults
        listed = {p for p in paths if isinstance(p, str)} if isinstance(paths, list) else set()
        missing = [p for p in defaults if p not in listed]
        if missing:
            v.refuse(
                "masked-paths",
                f"HostConfig.{name}",
                paths,
                f"{name} leaves out {', '.join(missing)}, which the engine protects by default",
                f"remove {name} (and --security-opt systempaths=unconfined)",
            )
    for name in ("CgroupParent", "Cgroup"):
        value = _text(get(name))
        if value:
            v.refuse(
                "cgroup",
                f"HostConfig.{name}",
                value,
                f"{name} places the workload in a cgroup of the host's choosing rather than its own",
                f"remove {name} (--cgroup-parent)",
            )
    runtime = _text(get("Runtime"))
    if runtime:
        v.runtimes.append(("HostConfig.Runtime", runtime))
    _isolation(v, get("Isolation"), "HostConfig.Isolation")
    annotations = get("Annotations")
    if annotations:
        v.refuse(
            "oci-runtime",
            "HostConfig.Annotations",
            annotations,
            "annotations are read by the OCI runtime and its cgroup manager on the host",
            "remove --annotation",
        )
    _oom_score(v, get("OomScoreAdj"), "HostConfig.OomScoreAdj")
    log = get("LogConfig")
    if log is not None:
        _log_config(v, _get(log, "Type"), _get(log, "Config"), "HostConfig.LogConfig")
    v.user = ("User", _text(_get(body, "User")))
    v.read_only_rootfs = bool(get("ReadonlyRootfs"))
    _sysctls(v, get("Sysctls"), "HostConfig.Sysctls")
    return v


def view_exec(body: object) -> RuntimeView:
    """The view of a ``POST /containers/{id}/exec`` body."""
    v = RuntimeView(no_new_privileges=True, read_only_rootfs=True)  # inherited from the container
    if _get(body, "Privileged"):
        v.privileged.append("Privileged")
    v.user = ("User", _text(_get(body, "User")))
    return v


def view_service(spec: object) -> RuntimeView:
    """The view of a service spec's ``TaskTemplate`` and its ``ContainerSpec``."""
    v = RuntimeView(base="TaskTemplate.ContainerSpec")
    task = _dict(_get(spec, "TaskTemplate"))
    cs = _dict(_get(task, "ContainerSpec"))
    where = "TaskTemplate.ContainerSpec"
    _caps(v, _get(cs, "CapabilityAdd"), f"{where}.CapabilityAdd")
    v.cap_drop = {cap_name(c) for c in _list(_get(cs, "CapabilityDrop"))}
    _mounts(v, _get(cs, "Mounts"), f"{where}.Mounts")
    _privileges(v, _get(cs, "Privileges"), f"{where}.Privileges")
    v.user = (f"{where}.User", _text(_get(cs, "User")))
    v.read_only_rootfs = bool(_get(cs, "ReadOnly"))
    _sysctls(v, _get(cs, "Sysctls"), f"{where}.Sysctls")
    _isolation(v, _get(cs, "Isolation"), f"{where}.Isolation")
    _oom_score(v, _get(cs, "OomScoreAdj"), f"{where}.OomScoreAdj")
    runtime = _text(_get(task, "Runtime"))
    if runtime.lower() not in ("", "container"):
        v.refuse(
            "oci-runtime",
            "TaskTemplate.Runtime",
            runtime,
            f"task runtime {runtime!r} is not a container (a plugin runtime installs a plugin on every node)",
            "remove TaskTemplate.Runtime",
        )
    if _get(task, "PluginSpec") is not None:
        v.refuse(
            "oci-runtime",
            "TaskTemplate.PluginSpec",
            "(plugin)",
            "a plugin service installs a plugin, with its privileges, on every node",
            "install plugins as an operator",
        )
    log = _get(task, "LogDriver")
    if log is not None:
        _log_config(v, _get(log, "Name"), _get(log, "Options"), "TaskTemplate.LogDriver")
    return v


def _privileges(v: RuntimeView, privileges: object, where: str) -> None:
    """A service's ``Privileges``, as the swarm executor turns them into security options."""
    credential = _get(privileges, "CredentialSpec")
    if isinstance(credential, dict) and any(credential.values()):
        v.refuse(
            "security-opt",
            f"{where}.CredentialSpec",
            credential,
            "credential specs are for Windows services",
            "remove --credential-spec",
        )
    selinux = _get(privileges, "SELinuxContext")
    if _get(selinux, "Disable"):
        v.unconfined.append((f"{where}.SELinuxContext.Disable", "label=disable"))
    selinux_type = _text(_get(selinux, "Type"))
    if selinux_type:
        v.selinux.append((f"{where}.SELinuxContext.Type", selinux_type))
    seccomp = _get(privileges, "Seccomp")
    mode = _text(_get(seccomp, "Mode"))
    if mode == "unconfined":
        v.unconfined.append((f"{where}.Seccomp.Mode", "seccomp=unconfined"))
    elif mode == "custom":
        profile = _get(seccomp, "Profile")
        # Go decodes []byte from base64; a profile that isn't base64 is refused by the engine too.
        try:
            raw = profile if isinstance(profile, bytes) else base64.b64decode(_text(profile), validate=True)
        except (binascii.Error, ValueError):
            v.refuse(
                "seccomp-profile",
                f"{where}.Seccomp.Profile",
                profile,
                "the profile is not base64, as the engine expects",
                "send the profile's JSON base64-encoded",
            )
        else:
            v.seccomp.append((f"{where}.Seccomp.Profile", raw))
    elif mode not in ("", "default"):
        v.refuse(
            "seccomp-profile",
            f"{where}.Seccomp.Mode",
            mode,
            f"seccomp mode {mode!r} is not allowed",
            "use the default seccomp mode",
        )
    apparmor = _text(_get(_get(privileges, "AppArmor"), "Mode"))
    if apparmor == "disabled":
        v.unconfined.append((f"{where}.AppArmor.Mode", "apparmor=unconfined"))
    elif apparmor not in ("", "default"):
        v.refuse(
            "apparmor-profile",
            f"{where}.AppArmor.Mode",
            apparmor,
            f"AppArmor mode {apparmor!r} is not allowed",
            "use the default AppArmor mode",
        )
    v.no_new_privileges = bool(_get(privileges, "NoNewPrivileges"))


def view_build(query: Mapping[str, Iterable[str]]) -> RuntimeView:
    """The view of ``POST /build``: ``RUN`` steps get the build's network mode, cgroup
    parent and isolation. Every value of a repeated parameter is checked."""
    v = RuntimeView(no_new_privileges=True, read_only_rootfs=True, user=("User", "build"), cap_drop={"ALL"})
    for key, values in query.items():
        name = key.lower()
        for value in values:
            if name == "networkmode" and value.strip().lower() == "host":
                v.host_namespaces.append(("networkmode", "network"))
            elif name == "networkmode" and value.startswith("container:"):
                v.refuse(
                    "host-namespace",
                    "networkmode",
                    value,
                    "a build may not join another container's network namespace",
                    "build on the default network",
                )
            elif name == "cgroupparent" and value:
                v.refuse(
                    "cgroup",
                    "cgroupparent",
                    value,
                    "the build's cgroup parent is chosen by the engine",
                    "remove --cgroup-parent",
                )
            elif name == "isolation":
                _isolation(v, value, "isolation")
    return v


def view_volume(body: object) -> RuntimeView:
    """The view of ``POST /volumes/create``: the local driver with allow-listed
    options only. Its ``type``/``device``/``o`` are a mount(2) the engine runs on the
    host, so only a sized tmpfs is allowed."""
    v = RuntimeView(no_new_privileges=True, read_only_rootfs=True, user=("User", "volume"), cap_drop={"ALL"})
    _volume_driver(v, _get(body, "Driver"), "Driver")
    _local_options(v, _get(body, "DriverOpts"), "DriverOpts")
    if _get(body, "ClusterVolumeSpec") is not None:
        v.refuse(
            "volume-driver",
            "ClusterVolumeSpec",
            "(cluster volume)",
            "cluster volumes need a CSI plugin",
            "create a local volume",
        )
    return v
