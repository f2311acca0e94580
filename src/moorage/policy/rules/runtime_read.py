"""Reading the runtime fields of a request into a :class:`RuntimeView`: security
options, capabilities, sysctls, mounts, volume drivers and options, log config.
One reader per field family, shared by the container, exec and service views.
"""

from __future__ import annotations

import msgspec

from moorage.policy.hostopts import (
    cap_name,
    go_bool,
    local_volume_problems,
    parse_security_opt,
    tmpfs_option_problem,
)
from moorage.policy.rules.base import Finding, _dict, _get, _list, _text

__all__ = [
    "REFUSED_WHILE_READING",
    "RuntimeView",
]

REFUSED_WHILE_READING = (
    "runtime.security-opt",
    "runtime.selinux-label",
    "runtime.oom-score",
    "runtime.volume-driver",
    "runtime.volume-options",
    "runtime.mount",
    "runtime.masked-paths",
    "runtime.cgroup",
    "runtime.host-namespace",
    "runtime.oci-runtime",
    "runtime.seccomp-profile",
    "runtime.apparmor-profile",
)
"""The rules under which the reader refuses what only it can see (an option spelled
in a way no view field holds, a mount type, an unknown security option), through
:meth:`RuntimeView.refuse`."""


class RuntimeView(msgspec.Struct):
    """What a request asks of the host, folded from every field that can express it.
    (A struct, not a dataclass: one is made per request, in a fifth of the time.)"""

    privileged: list[str] = msgspec.field(default_factory=list)  # field paths that grant it
    cap_add: list[tuple[str, str]] = msgspec.field(default_factory=list)  # (path, CAPABILITY)
    cap_drop: set[str] = msgspec.field(default_factory=set)
    host_namespaces: list[tuple[str, str]] = msgspec.field(default_factory=list)  # (path, namespace)
    host_paths: list[tuple[str, str]] = msgspec.field(default_factory=list)  # (path, host source)
    devices: list[tuple[str, object]] = msgspec.field(default_factory=list)
    unconfined: list[tuple[str, str]] = msgspec.field(default_factory=list)  # (path, option)
    no_new_privileges: bool = False
    user: tuple[str, str] = ("User", "")
    read_only_rootfs: bool = False
    sysctls: list[tuple[str, str]] = msgspec.field(default_factory=list)
    base: str = "HostConfig"  # where the hardening fields live, for messages
    # Checked against the policy's RuntimeAllow:
    # (path, custom profile text)
    seccomp: list[tuple[str, str | bytes]] = msgspec.field(default_factory=list)
    apparmor: list[tuple[str, str]] = msgspec.field(default_factory=list)  # (path, named profile)
    selinux: list[tuple[str, str]] = msgspec.field(default_factory=list)  # (path, SELinux type)
    runtimes: list[tuple[str, str]] = msgspec.field(default_factory=list)  # (path, OCI runtime name)
    # (path, driver, options)
    log_drivers: list[tuple[str, str, object]] = msgspec.field(default_factory=list)
    # Allow-list misses found while reading, refused by every pack.
    refused: list[Finding] = msgspec.field(default_factory=list)

    def refuse(self, rule: str, path: str, value: object, message: str, fix: str) -> None:
        """Record an allow-list miss found while reading, refused by every pack."""
        self.refused.append(Finding(f"runtime.{rule}", path, value, message, fix))


def _is_root(user: str) -> bool:
    name = user.split(":", 1)[0].strip()
    return name in ("", "root", "0")


# ------------------------------------------------------------- shared readers
_SECOPT_FIX = (
    "use only no-new-privileges, apparmor=docker-default, label=level:/user:/role:/type:, or seccomp=PROFILE"
)


def _security_opts(v: RuntimeView, opts: object, where: str) -> None:
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


def _caps(v: RuntimeView, caps: object, where: str) -> None:
    for i, c in enumerate(_list(caps)):
        v.cap_add.append((f"{where}[{i}]", cap_name(c)))


def _sysctls(v: RuntimeView, sysctls: object, where: str) -> None:
    for key in _dict(sysctls):
        v.sysctls.append((f"{where}.{key}", str(key)))


def _oom_score(v: RuntimeView, value: object, where: str) -> None:
    # A negative score makes the kernel kill the host's processes before this one.
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        v.refuse(
            "oom-score",
            where,
            value,
            "a negative OOM score adjustment protects the workload at the host's expense",
            "remove --oom-score-adj (or use a value from 0 to 1000)",
        )


def _isolation(v: RuntimeView, value: object, where: str) -> None:
    text = _text(value)
    if text and text.lower() != "default":
        v.refuse("oci-runtime", where, text, f"isolation {text!r} is not the default", "remove --isolation")


_LOCAL_FIX = (
    "use a named volume without driver options, or a tmpfs volume: type=tmpfs,device=tmpfs,"
    "o=size=...,mode=...,uid=...,gid=..."
)


def _local_options(v: RuntimeView, opts: object, where: str) -> None:
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


def _volume_driver(v: RuntimeView, name: object, where: str) -> None:
    text = _text(name)
    if text not in ("", "local"):
        v.refuse(
            "volume-driver",
            where,
            text,
            f"volume driver {text!r} is not the local driver",
            "use the local driver (remove --volume-driver / the driver name)",
        )


def _mounts(v: RuntimeView, mounts: object, where: str) -> None:
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


def _log_config(v: RuntimeView, driver: object, options: object, where: str) -> None:
    v.log_drivers.append((where, _text(driver), options))
