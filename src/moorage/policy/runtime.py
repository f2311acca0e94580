"""Runtime hardening checks: one normalised view of a workload, whatever field or
spelling expressed it, and the ``baseline`` / ``restricted`` rules over it. Pure.

The rules are allow-lists, as the Pod Security Standards are: each field that can
reach the host is allowed at its safe default or at a value named here (or by the
policy, through :class:`RuntimeAllow`) as safe. Anything else, an option nobody has
seen yet included, is refused. Option strings are read as the engine reads them
(:mod:`moorage.policy.hostopts`), so a rule sees what the engine will apply.

The gateway hands admission a canonical body (the engine's field names, duplicates
merged, the deprecated top-level host config moved into ``HostConfig``). Fields are
still read with :func:`_get`, which also folds case, so a hand-written body in tests
or ``moorage policy check`` is read the same way.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar

from moorage.engine_api.gojson import Struct
from moorage.policy.hostopts import (
    DEFAULT_MASKED_PATHS,
    DEFAULT_READONLY_PATHS,
    cap_name,
    go_bool,
    local_volume_problems,
    parse_security_opt,
    seccomp_digest,
    tmpfs_option_problem,
)

__all__ = [
    "DEFAULT_ALLOW",
    "Finding",
    "RuntimeAllow",
    "RuntimeView",
    "check",
    "view_build",
    "view_container",
    "view_exec",
    "view_service",
    "view_volume",
]

# Docker's default capability set; Kubernetes' baseline allows adding only these.
DEFAULT_CAPS = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "NET_RAW",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
    }
)
DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock", "/var/run/docker", "/run/docker")
# SELinux types that keep a container confined (process and file types).
SELINUX_TYPES = frozenset(
    {"container_t", "container_init_t", "svirt_lxc_net_t", "container_file_t", "svirt_sandbox_file_t"}
)
# Log drivers that write on the host without reaching anything else, and the options
# every driver shares. A daemon-side driver that sends logs somewhere (syslog, gelf,
# fluentd, splunk, ...) connects from the host, so it must be allow-listed by policy.
LOG_DRIVERS = frozenset({"json-file", "local", "journald", "none"})
LOG_OPTIONS = frozenset(
    {
        "max-size",
        "max-file",
        "compress",
        "labels",
        "labels-regex",
        "env",
        "env-regex",
        "tag",
        "mode",
        "max-buffer-size",
    }
)
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-/]*")


@dataclass(frozen=True)
class Finding:
    """One violation: the rule, where in the request, what was found, how to fix it."""

    rule: str
    path: str
    value: Any
    message: str
    fix: str


@dataclass(frozen=True)
class RuntimeAllow:
    """What a policy adds to the packs' allow-lists (``spec.runtime`` of a document).
    Each set adds to the built-in one; nothing here can turn a confinement off."""

    seccomp_profiles: frozenset[str] = frozenset()  # sha256:<hex> of a profile (see seccomp_digest)
    apparmor_profiles: frozenset[str] = frozenset({"docker-default"})
    selinux_types: frozenset[str] = SELINUX_TYPES
    runtimes: frozenset[str] = frozenset({"runc", "io.containerd.runc.v2"})
    log_drivers: frozenset[str] = frozenset()  # beyond LOG_DRIVERS; their options are not checked

    _KEYS: ClassVar[dict[str, str]] = {
        "seccompProfiles": "seccomp_profiles",
        "appArmorProfiles": "apparmor_profiles",
        "selinuxTypes": "selinux_types",
        "runtimes": "runtimes",
        "logDrivers": "log_drivers",
    }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | None) -> RuntimeAllow:
        """Read ``spec.runtime`` (camelCase keys, lists of strings); raise ValueError
        naming the field when a value is not allowed."""
        if not spec:
            return DEFAULT_ALLOW
        unknown = sorted(set(spec) - set(cls._KEYS))
        if unknown:
            raise ValueError(
                f"runtime.{unknown[0]}: unknown field; allowed here: {', '.join(sorted(cls._KEYS))}"
            )
        base = DEFAULT_ALLOW
        values: dict[str, frozenset[str]] = {}
        for key, attr in cls._KEYS.items():
            items = spec.get(key) or []
            if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
                raise ValueError(f"runtime.{key}: must be a list of strings")
            for i, item in enumerate(items):
                good = _DIGEST.fullmatch(item) if key == "seccompProfiles" else _NAME.fullmatch(item)
                if not good:
                    shape = "sha256:<64 hex digits>" if key == "seccompProfiles" else "a name"
                    raise ValueError(f"runtime.{key}[{i}]: {item!r} is not {shape}")
                if item.lower() in ("unconfined", "disabled", "spc_t", "unconfined_t"):
                    raise ValueError(
                        f"runtime.{key}[{i}]: {item!r} turns confinement off; it can't be allowed"
                    )
            values[attr] = getattr(base, attr) | frozenset(items)
        return cls(**values)


DEFAULT_ALLOW = RuntimeAllow()


@dataclass
class RuntimeView:
    """What a request asks of the host, folded from every field that can express it."""

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
    # Checked against the policy's RuntimeAllow:
    seccomp: list[tuple[str, str | bytes]] = field(default_factory=list)  # (path, custom profile text)
    apparmor: list[tuple[str, str]] = field(default_factory=list)  # (path, named profile)
    selinux: list[tuple[str, str]] = field(default_factory=list)  # (path, SELinux type)
    runtimes: list[tuple[str, str]] = field(default_factory=list)  # (path, OCI runtime name)
    log_drivers: list[tuple[str, str, Any]] = field(default_factory=list)  # (path, driver, options)
    # Allow-list misses found while reading, refused by every pack.
    refused: list[Finding] = field(default_factory=list)

    def refuse(self, rule: str, path: str, value: Any, message: str, fix: str) -> None:
        self.refused.append(Finding(f"runtime.{rule}", path, value, message, fix))


def _get(obj: Any, key: str) -> Any:
    """A field as the engine finds it. A body the gateway decoded (a Struct) already
    has the engine's field names; anything else (a compose file, a test, a policy
    test case) is matched case-insensitively, as the engine would."""
    if type(obj) is Struct:
        return obj.get(key)
    if not isinstance(obj, dict):
        return None
    if key in obj:
        return obj[key]
    folded = key.lower()
    return next((v for k, v in obj.items() if isinstance(k, str) and k.lower() == folded), None)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    """A list field; a lone string is a one-item list, as the engine's StrSlice reads it."""
    if isinstance(value, list):
        return value
    return [value] if isinstance(value, str) else []


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _is_root(user: str) -> bool:
    name = user.split(":", 1)[0].strip()
    return name in ("", "root", "0")


# ------------------------------------------------------------- shared readers
_SECOPT_FIX = (
    "use only no-new-privileges, apparmor=docker-default, label=level:/user:/role:/type:, or seccomp=PROFILE"
)


def _security_opts(v: RuntimeView, opts: Any, where: str) -> None:
    """``SecurityOpt`` entries, split as daemon_unix.go ``parseSecurityOpt`` does."""
    for i, opt in enumerate(_list(opts)):
        path = f"{where}[{i}]"
        if not isinstance(opt, str):
            v.refuse("security-opt", path, opt, "a security option must be a string", _SECOPT_FIX)
            continue
        parsed = parse_security_opt(opt)
        key, value = parsed.key, parsed.value
        if key == "no-new-privileges":
            flag = go_bool(value)
            if flag is None:
                v.refuse(
                    "security-opt",
                    path,
                    opt,
                    f"no-new-privileges={value} is not a boolean the engine reads",
                    "write no-new-privileges or no-new-privileges=true",
                )
            else:
                v.no_new_privileges = flag  # the engine keeps the last one
        elif key == "label":
            _label(v, path, opt, value)
        elif key in ("seccomp", "apparmor") and value == "unconfined":
            v.unconfined.append((path, opt))
        elif key == "seccomp":
            if value not in ("", "builtin"):  # empty and builtin are the engine's default profile
                v.seccomp.append((path, value))
        elif key == "apparmor":
            if value != "":  # empty is the engine's default profile
                v.apparmor.append((path, value))
        elif key == "systempaths" and value == "unconfined":
            v.unconfined.append((path, opt))
        elif key is None:
            v.refuse(
                "security-opt",
                path,
                opt,
                f"{opt!r} is not a security option the engine reads (key=value)",
                _SECOPT_FIX,
            )
        else:
            v.refuse(
                "security-opt",
                path,
                opt,
                f"security option {key!r} is not on baseline's allow-list",
                _SECOPT_FIX,
            )


def _label(v: RuntimeView, path: str, opt: str, value: str) -> None:
    """``label=...``: SELinux options, as go-selinux's ``InitLabels`` reads them."""
    if value == "disable":
        v.unconfined.append((path, opt))
        return
    kind, sep, setting = value.partition(":")
    if not sep or kind not in ("user", "role", "level", "type", "filetype"):
        v.refuse(
            "selinux-label",
            path,
            opt,
            f"{value!r} is not an SELinux label option (user:, role:, level:, type:, filetype:)",
            "write label=level:s0:c1,c2 (or user:, role:, type:)",
        )
    elif kind in ("type", "filetype"):
        v.selinux.append((path, setting))


def _caps(v: RuntimeView, caps: Any, where: str) -> None:
    for i, c in enumerate(_list(caps)):
        v.cap_add.append((f"{where}[{i}]", cap_name(c)))


def _sysctls(v: RuntimeView, sysctls: Any, where: str) -> None:
    for key in _dict(sysctls):
        v.sysctls.append((f"{where}.{key}", str(key)))


def _oom_score(v: RuntimeView, value: Any, where: str) -> None:
    # A negative score makes the kernel kill the host's processes before this one.
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        v.refuse(
            "oom-score",
            where,
            value,
            "a negative OOM score adjustment protects the workload at the host's expense",
            "remove --oom-score-adj (or use a value from 0 to 1000)",
        )


def _isolation(v: RuntimeView, value: Any, where: str) -> None:
    text = _text(value)
    if text and text.lower() != "default":
        v.refuse("oci-runtime", where, text, f"isolation {text!r} is not the default", "remove --isolation")


_LOCAL_FIX = (
    "use a named volume without driver options, or a tmpfs volume: type=tmpfs,device=tmpfs,"
    "o=size=...,mode=...,uid=...,gid=..."
)


def _local_options(v: RuntimeView, opts: Any, where: str) -> None:
    """The local driver's options (DriverOpts, or a mount's DriverConfig.Options). A
    bind of a host path is reported as that (host-path / docker-socket), alone."""
    named = _dict(opts)
    device, o = named.get("device"), named.get("o")
    binds = isinstance(o, str) and bool({"bind", "rbind"} & set(o.split(",")))
    host_bind = isinstance(device, str) and device.startswith("/") and (binds or named.get("type") == "none")
    if host_bind:
        v.host_paths.append((f"{where}.device", str(device)))
    for key, value, reason in local_volume_problems(opts):
        if host_bind and key in ("type", "device", "o"):
            continue
        path = f"{where}.{key}" if key else where
        v.refuse("volume-options", path, value, f"local volume option {reason}", _LOCAL_FIX)


def _volume_driver(v: RuntimeView, name: Any, where: str) -> None:
    text = _text(name)
    if text not in ("", "local"):
        v.refuse(
            "volume-driver",
            where,
            text,
            f"volume driver {text!r} is not the local driver",
            "use the local driver (remove --volume-driver / the driver name)",
        )


def _mounts(v: RuntimeView, mounts: Any, where: str) -> None:
    """``Mounts[]`` of a container or a service: bind is a host path; volume and tmpfs
    are allowed with safe options; every other type (npipe, cluster, ...) is refused."""
    for i, m in enumerate(mounts if isinstance(mounts, list) else []):
        path = f"{where}[{i}]"
        kind = _text(_get(m, "Type")).lower()  # swarm upper-cases the type, so fold it
        if kind == "bind":
            v.host_paths.append((f"{path}.Source", _text(_get(m, "Source"))))
            continue
        if kind not in ("volume", "tmpfs"):
            v.refuse(
                "mount",
                f"{path}.Type",
                _get(m, "Type"),
                f"mount type {_get(m, 'Type')!r} is not allowed",
                "use --mount type=volume or type=tmpfs",
            )
            continue
        if _get(m, "BindOptions") is not None:
            v.refuse(
                "mount",
                f"{path}.BindOptions",
                _get(m, "BindOptions"),
                f"bind options on a {kind} mount",
                "remove the bind options",
            )
        if kind == "volume":
            driver = _get(_get(m, "VolumeOptions"), "DriverConfig")
            if driver is not None:
                where_driver = f"{path}.VolumeOptions.DriverConfig"
                _volume_driver(v, _get(driver, "Name"), f"{where_driver}.Name")
                _local_options(v, _get(driver, "Options"), f"{where_driver}.Options")
        else:
            tmpfs = _get(m, "TmpfsOptions")
            for j, item in enumerate(_list(_get(tmpfs, "Options"))):
                text = "=".join(str(x) for x in item) if isinstance(item, list) else str(item)
                reason = tmpfs_option_problem(text)
                if reason is not None:
                    v.refuse(
                        "mount",
                        f"{path}.TmpfsOptions.Options[{j}]",
                        item,
                        reason,
                        "use size, mode, uid, gid and the noexec/nosuid/nodev flags",
                    )


def _log_config(v: RuntimeView, driver: Any, options: Any, where: str) -> None:
    v.log_drivers.append((where, _text(driver), options))


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


def view_container(body: Any) -> RuntimeView:
    """The view of a ``POST /containers/create`` body."""
    v = RuntimeView()
    host = _dict(_get(body, "HostConfig"))
    # a decoded body has the engine's field names: read it directly (the hot path)
    get: Callable[[str], Any] = host.get if type(host) is Struct else partial(_get, host)
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


def view_exec(body: Any) -> RuntimeView:
    """The view of a ``POST /containers/{id}/exec`` body."""
    v = RuntimeView(no_new_privileges=True, read_only_rootfs=True)  # inherited from the container
    if _get(body, "Privileged"):
        v.privileged.append("Privileged")
    v.user = ("User", _text(_get(body, "User")))
    return v


def view_service(spec: Any) -> RuntimeView:
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


def _privileges(v: RuntimeView, privileges: Any, where: str) -> None:
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


def view_volume(body: Any) -> RuntimeView:
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


# ---------------------------------------------------------------------- check
def _seccomp_message(profile: str | bytes, digest: str) -> str:
    message = f"the custom seccomp profile {digest} is not on the policy's allow-list"
    try:
        action = json.loads(profile).get("defaultAction")
    except (ValueError, AttributeError):
        return message
    if action in ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG"):
        message += f"; its defaultAction {action} lets through every system call it doesn't name"
    return message


def check(view: RuntimeView, pack: str, allow: RuntimeAllow | None = None) -> list[Finding]:
    """Findings of ``baseline`` (no host-level escape) or ``restricted`` (baseline plus
    least privilege), mirroring Kubernetes' Pod Security Standards. ``allow`` is what
    the policy adds to the allow-lists (seccomp profiles, AppArmor profiles, ...)."""
    if pack not in ("baseline", "restricted"):
        raise ValueError(f"unknown pack {pack!r}: use baseline or restricted")
    allow = DEFAULT_ALLOW if allow is None else allow
    out: list[Finding] = []

    def add(rule: str, path: str, value: Any, message: str, fix: str) -> None:
        out.append(Finding(f"runtime.{rule}", path, value, message, fix))

    for path in view.privileged:
        add(
            "privileged",
            path,
            True,
            "privileged mode gives the workload the host",
            "remove --privileged; add only the capability you need",
        )
    allowed = {"NET_BIND_SERVICE"} if pack == "restricted" else DEFAULT_CAPS
    for path, cap in view.cap_add:
        if cap == "ALL" or cap not in allowed:
            fix = (
                "remove HostConfig.Capabilities (it replaces the default set)"
                if ".Capabilities[" in path
                else f"remove --cap-add {cap.lower()}"
            )
            add("capabilities", path, cap, f"capability {cap} is not allowed in {pack}", fix)
    if pack == "restricted" and "ALL" not in view.cap_drop:
        drop = "CapabilityDrop" if view.base != "HostConfig" else "CapDrop"
        add(
            "capabilities.drop-all",
            f"{view.base}.{drop}",
            sorted(view.cap_drop),
            "restricted requires dropping all capabilities",
            "add --cap-drop ALL",
        )
    for path, ns in view.host_namespaces:
        add("host-namespace", path, "host", f"sharing the host's {ns} namespace", f"remove --{ns} host")
    for path, src in view.host_paths:
        clean = "/" + "/".join(p for p in src.split("/") if p not in ("", "."))
        if clean in ("/var/run", "/run") or any(
            clean == s or clean.startswith(s + "/") for s in DOCKER_SOCKETS
        ):
            add(
                "docker-socket",
                path,
                src,
                "the Docker socket controls the host",
                "never mount the Docker socket; talk to Moorage instead",
            )
        else:
            add("host-path", path, src, f"host path {src} is mounted", "use a named volume instead")
    for path, dev in view.devices:
        add(
            "devices",
            path,
            dev,
            "host devices are exposed",
            "remove --device / --device-cgroup-rule / --gpus",
        )
    for path, opt in view.unconfined:
        add("unconfined", path, opt, f"{opt} turns off a kernel confinement", "remove the --security-opt")
    for path, profile in view.seccomp:
        digest = seccomp_digest(profile)
        if digest not in allow.seccomp_profiles:
            add(
                "seccomp-profile",
                path,
                digest,
                _seccomp_message(profile, digest),
                "use the default profile, or have the policy list this digest in runtime.seccompProfiles",
            )
    for path, name in view.apparmor:
        if name not in allow.apparmor_profiles:
            add(
                "apparmor-profile",
                path,
                name,
                f"AppArmor profile {name!r} is not on the allow-list",
                "use apparmor=docker-default, or have the policy list it in runtime.appArmorProfiles",
            )
    for path, name in view.selinux:
        if name not in allow.selinux_types:
            add(
                "selinux-label",
                path,
                name,
                f"SELinux type {name!r} is not a confined container type",
                "use container_t, or have the policy list it in runtime.selinuxTypes",
            )
    for path, name in view.runtimes:
        if name not in allow.runtimes:
            add(
                "oci-runtime",
                path,
                name,
                f"runtime {name!r} is not on the allow-list",
                "remove --runtime (runc is the default), or have the policy list it in runtime.runtimes",
            )
    for path, driver, options in view.log_drivers:
        if driver in allow.log_drivers:
            continue  # allowed by policy, options and all
        if driver and driver not in LOG_DRIVERS:
            add(
                "log-driver",
                path,
                driver,
                f"log driver {driver!r} sends logs from the host",
                "use json-file, local or journald, or have the policy list it in runtime.logDrivers",
            )
            continue
        for key, value in _dict(options).items():
            if key not in LOG_OPTIONS:
                add(
                    "log-driver",
                    f"{path}.{'Config' if path.startswith('HostConfig') else 'Options'}.{key}",
                    value,
                    f"log option {key!r} is not on the allow-list",
                    "use max-size, max-file, compress, tag, labels or env",
                )
    for path, key in view.sysctls:
        if key not in SAFE_SYSCTLS:
            add("sysctls", path, key, f"sysctl {key} is not in the safe set", f"remove --sysctl {key}")
    out += view.refused
    if pack == "restricted":
        if not view.no_new_privileges:
            nnp = "Privileges.NoNewPrivileges" if view.base != "HostConfig" else "SecurityOpt"
            add(
                "no-new-privileges",
                f"{view.base}.{nnp}",
                None,
                "no-new-privileges is required",
                "add --security-opt no-new-privileges",
            )
        if _is_root(view.user[1]):
            add(
                "non-root",
                view.user[0],
                view.user[1] or "(image default)",
                "the workload must not run as root",
                "set --user to a non-zero uid",
            )
        if not view.read_only_rootfs:
            add(
                "read-only-rootfs",
                f"{view.base}.{'ReadOnly' if view.base != 'HostConfig' else 'ReadonlyRootfs'}",
                False,
                "the root filesystem must be read-only",
                "add --read-only, with a tmpfs where needed",
            )
    return out
