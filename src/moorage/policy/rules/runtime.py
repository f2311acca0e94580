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

import json
from collections.abc import Callable

from moorage.policy.hostopts import (
    seccomp_digest,
)
from moorage.policy.rules.base import Finding, _dict
from moorage.policy.rules.runtime_allow import (
    DEFAULT_ALLOW,
    DEFAULT_CAPS,
    DOCKER_SOCKETS,
    LOG_DRIVERS,
    LOG_OPTIONS,
    SAFE_SYSCTLS,
    RuntimeAllow,
)
from moorage.policy.rules.runtime_read import RuntimeView, _is_root

__all__ = [
    "BASELINE_CHECKS",
    "MOUNTS",
    "READ",
    "RESTRICTED_CHECKS",
    "VIEW_FIELDS",
    "RuntimeCheck",
    "check",
    "docker_socket",
    "host_path",
]


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


RuntimeCheck = Callable[[RuntimeView, str, RuntimeAllow], list[Finding]]
"""One runtime rule's check: the view, the pack (``baseline`` or ``restricted``) and
what the policy adds to the allow-lists."""


def _rf(rule: str, path: str, value: object, message: str, fix: str) -> Finding:
    return Finding(f"runtime.{rule}", path, value, message, fix)


def _privileged(view: RuntimeView, pack: str, allow: RuntimeAllow) -> list[Finding]:
    if not view.privileged:
        return []
    return [
        _rf("privileged", path, True, "privileged mode gives the workload the host",
           "remove --privileged; add only the capability you need")
        for path in view.privileged
    ]  # fmt: skip


def _capabilities(view: RuntimeView, pack: str, allow: RuntimeAllow) -> list[Finding]:
    if not view.cap_add:
        return []
    out: list[Finding] = []
    allowed = {"NET_BIND_SERVICE"} if pack == "restricted" else DEFAULT_CAPS
    for path, cap in view.cap_add:
        if cap == "ALL" or cap not in allowed:
            fix = (
                "remove HostConfig.Capabilities (it replaces the default set)"
                if ".Capabilities[" in path
                else f"remove --cap-add {cap.lower()}"
            )
            out.append(_rf("capabilities", path, cap, f"capability {cap} is not allowed in {pack}", fix))
    return out


def _drop_all(view: RuntimeView, pack: str, allow: RuntimeAllow) -> list[Finding]:
    if "ALL" in view.cap_drop:
        return []
    drop = "CapabilityDrop" if view.base != "HostConfig" else "CapDrop"
    return [_rf("capabilities.drop-all", f"{view.base}.{drop}", sorted(view.cap_drop),
               "restricted requires dropping all capabilities", "add --cap-drop ALL")]  # fmt: skip


def _host_namespace(view: RuntimeView, pack: str, allow: RuntimeAllow) -> list[Finding]:
    if not view.host_namespaces:
        return []
    return [
        _rf("host-namespace", path, "host", f"sharing the host's {ns} namespace", f"remove --{ns} host")
        for path, ns in view.host_namespaces
    ]


def _is_socket(src: str) -> bool:
    clean = "/" + "/".join(p for p in src.split("/") if p not in ("", "."))
    return clean in ("/var/run", "/run") or any(
        clean == s or clean.startswith(s + "/") for s in DOCKER_SOCKETS
    )


def docker_socket(path: str, src: str) -> list[Finding]:
    """``runtime.docker-socket`` on one host path mounted at ``path``: the Docker
    socket, or a folder that holds it."""
    if not _is_socket(src):
        return []
    return [_rf("docker-socket", path, src, "the Docker socket controls the host",
               "never mount the Docker socket; talk to Moorage instead")]  # fmt: skip


def host_path(path: str, src: str) -> list[Finding]:
    """``runtime.host-path`` on one host path mounted at ``path`` (the Docker socket is
    :func:`docker_socket`'s)."""
    if _is_socket(src):
        return []
    return [_rf("host-path", path, src, f"host path {src} is mounted", "use a named volume instead")]


def _host_paths(view: RuntimeView, pack: str, allow: RuntimeAllow) -> list[Finding]:
    if not view.host_paths:
        return []
    out: list[Finding] = []
    for path, src in view.host_paths:
        out += docker_socket(path, src) + host_path(path, src)
    return out


def _devices(view: RuntimeView, pack: str, allow: RuntimeAllow) -> list[Finding]:
    if not view.devices:
        return []
    return [
        _rf(
            "devices",
            path,
            dev,
            "host devices are exposed",
            "remove --device / --device-cgroup-rule / --gpus",
        )
        for path, dev in view.devices
    ]


def _unconfined(view: RuntimeView, pack: str, allow: RuntimeAllow) -> list[Finding]:
    if not view.unconfined:
        return []
    return [
        _rf("unconfined", path, opt, f"{opt} turns off a kernel confinement", "remove the --security-opt")
        for path, opt in view.unconfined
    ]


def _seccomp(view: RuntimeView, pack: str, allow: RuntimeAllow) -> list[Finding]:
    if not view.seccomp:
        return []
    out: list[Finding] = []
    for path, profile in view.seccomp:
        digest = seccomp_digest(profile)
        if digest not in allow.seccomp_profiles:
            out.append(_rf("seccomp-profile", path, digest, _seccomp_message(profile, digest),
                          "use the default profile, or have the policy list this digest in "
                          "runtime.seccompProfiles"))  # fmt: skip
    return out


def _apparmor(view: RuntimeView, pack: str, allow: RuntimeAllow) -> list[Finding]:
    if not view.apparmor:
        return []
    return [
        _rf("apparmor-profile", path, name, f"AppArmor profile {name!r} is not on the allow-list",
           "use apparmor=docker-default, or have the policy list it in runtime.appArmorProfiles")
        for path, name in view.apparmor
        if name not in allow.apparmor_profiles
    ]  # fmt: skip


def _selinux(view: RuntimeView, pack: str, allow: RuntimeAllow) -> list[Finding]:
    if not view.selinux:
        return []
    return [
        _rf("selinux-label", path, name, f"SELinux type {name!r} is not a confined container type",
           "use container_t, or have the policy list it in runtime.selinuxTypes")
        for path, name in view.selinux
        if name not in allow.selinux_types
    ]  # fmt: skip


def _runtimes(view: RuntimeView, pack: str, allow: RuntimeAllow) -> list[Finding]:
    if not view.runtimes:
        return []
    return [
        _rf("oci-runtime", path, name, f"runtime {name!r} is not on the allow-list",
           "remove --runtime (runc is the default), or have the policy list it in runtime.runtimes")
        for path, name in view.runtimes
        if name not in allow.runtimes
    ]  # fmt: skip


def _log_drivers(view: RuntimeView, pack: str, allow: RuntimeAllow) -> list[Finding]:
    if not view.log_drivers:
        return []
    out: list[Finding] = []
    for path, driver, options in view.log_drivers:
        if driver in allow.log_drivers:
            continue  # allowed by policy, options and all
        if driver and driver not in LOG_DRIVERS:
            out.append(_rf("log-driver", path, driver, f"log driver {driver!r} sends logs from the host",
                          "use json-file, local or journald, or have the policy list it in "
                          "runtime.logDrivers"))  # fmt: skip
            continue
        for key, value in _dict(options).items():
            if key not in LOG_OPTIONS:
                where = f"{path}.{'Config' if path.startswith('HostConfig') else 'Options'}.{key}"
                out.append(_rf("log-driver", where, value, f"log option {key!r} is not on the allow-list",
                              "use max-size, max-file, compress, tag, labels or env"))  # fmt: skip
    return out


def _sysctls(view: RuntimeView, pack: str, allow: RuntimeAllow) -> list[Finding]:
    if not view.sysctls:
        return []
    return [
        _rf("sysctls", path, key, f"sysctl {key} is not in the safe set", f"remove --sysctl {key}")
        for path, key in view.sysctls
        if key not in SAFE_SYSCTLS
    ]


def _refused(view: RuntimeView, pack: str, allow: RuntimeAllow) -> list[Finding]:
    # allow-list misses of several runtime rules, found (and ordered) while reading
    return list(view.refused) if view.refused else []


def _no_new_privileges(view: RuntimeView, pack: str, allow: RuntimeAllow) -> list[Finding]:
    if view.no_new_privileges:
        return []
    nnp = "Privileges.NoNewPrivileges" if view.base != "HostConfig" else "SecurityOpt"
    return [_rf("no-new-privileges", f"{view.base}.{nnp}", None, "no-new-privileges is required",
               "add --security-opt no-new-privileges")]  # fmt: skip


def _non_root(view: RuntimeView, pack: str, allow: RuntimeAllow) -> list[Finding]:
    if not _is_root(view.user[1]):
        return []
    return [_rf("non-root", view.user[0], view.user[1] or "(image default)",
               "the workload must not run as root", "set --user to a non-zero uid")]  # fmt: skip


def _read_only_rootfs(view: RuntimeView, pack: str, allow: RuntimeAllow) -> list[Finding]:
    if view.read_only_rootfs:
        return []
    field = "ReadOnly" if view.base != "HostConfig" else "ReadonlyRootfs"
    return [_rf("read-only-rootfs", f"{view.base}.{field}", False, "the root filesystem must be read-only",
               "add --read-only, with a tmpfs where needed")]  # fmt: skip


MOUNTS = "runtime.docker-socket, runtime.host-path"
"""The key of the check that reads each host path once and reports it under
:func:`docker_socket` or :func:`host_path`."""

READ = "(read)"
"""The key of the allow-list misses the view found while reading, under several runtime ids."""

VIEW_FIELDS: dict[str, str] = {
    "runtime.privileged": "privileged",
    "runtime.capabilities": "cap_add",
    "runtime.host-namespace": "host_namespaces",
    MOUNTS: "host_paths",
    "runtime.devices": "devices",
    "runtime.unconfined": "unconfined",
    "runtime.seccomp-profile": "seccomp",
    "runtime.apparmor-profile": "apparmor",
    "runtime.selinux-label": "selinux",
    "runtime.oci-runtime": "runtimes",
    "runtime.log-driver": "log_drivers",
    "runtime.sysctls": "sysctls",
    READ: "refused",
}
"""The field of the view each check reads its items from: while it is empty, the check
reports nothing (a pack may skip it)."""

_SHARED: tuple[tuple[str, RuntimeCheck], ...] = (
    ("runtime.host-namespace", _host_namespace),
    (MOUNTS, _host_paths),
    ("runtime.devices", _devices),
    ("runtime.unconfined", _unconfined),
    ("runtime.seccomp-profile", _seccomp),
    ("runtime.apparmor-profile", _apparmor),
    ("runtime.selinux-label", _selinux),
    ("runtime.oci-runtime", _runtimes),
    ("runtime.log-driver", _log_drivers),
    ("runtime.sysctls", _sysctls),
    (READ, _refused),
)

BASELINE_CHECKS: tuple[tuple[str, RuntimeCheck], ...] = (
    ("runtime.privileged", _privileged),
    ("runtime.capabilities", _capabilities),
    *_SHARED,
)
"""The checks of ``baseline``, by rule id (or :data:`MOUNTS`, :data:`READ`), in the
order their findings are reported."""

RESTRICTED_CHECKS: tuple[tuple[str, RuntimeCheck], ...] = (
    ("runtime.privileged", _privileged),
    ("runtime.capabilities", _capabilities),
    ("runtime.capabilities.drop-all", _drop_all),
    *_SHARED,
    ("runtime.no-new-privileges", _no_new_privileges),
    ("runtime.non-root", _non_root),
    ("runtime.read-only-rootfs", _read_only_rootfs),
)
"""The checks of ``restricted``: baseline's and least privilege's, in report order."""

_CHECKS = {"baseline": BASELINE_CHECKS, "restricted": RESTRICTED_CHECKS}


def check(view: RuntimeView, pack: str, allow: RuntimeAllow | None = None) -> list[Finding]:
    """Findings of ``baseline`` (no host-level escape) or ``restricted`` (baseline plus
    least privilege), mirroring Kubernetes' Pod Security Standards. ``allow`` is what
    the policy adds to the allow-lists (seccomp profiles, AppArmor profiles, ...)."""
    checks = _CHECKS.get(pack)
    if checks is None:
        raise ValueError(f"unknown pack {pack!r}: use baseline or restricted")
    allow = DEFAULT_ALLOW if allow is None else allow
    out: list[Finding] = []
    for _, rule_check in checks:
        out += rule_check(view, pack, allow)
    return out
