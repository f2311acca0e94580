"""The runtime allow-lists: what the packs allow by default (capabilities, sysctls,
SELinux types, log drivers) and what a policy document adds (:class:`RuntimeAllow`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

__all__ = [
    "DEFAULT_ALLOW",
    "DEFAULT_CAPS",
    "DOCKER_SOCKETS",
    "LOG_DRIVERS",
    "LOG_OPTIONS",
    "SAFE_SYSCTLS",
    "SELINUX_TYPES",
    "RuntimeAllow",
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
    def from_spec(cls, spec: Mapping[str, object] | None) -> RuntimeAllow:
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
