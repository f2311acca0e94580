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
    "check",
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


def check(view: RuntimeView, pack: str, allow: RuntimeAllow | None = None) -> list[Finding]:
    """Findings of ``baseline`` (no host-level escape) or ``restricted`` (baseline plus
    least privilege), mirroring Kubernetes' Pod Security Standards. ``allow`` is what
    the policy adds to the allow-lists (seccomp profiles, AppArmor profiles, ...)."""
    if pack not in ("baseline", "restricted"):
        raise ValueError(f"unknown pack {pack!r}: use baseline or restricted")
    allow = DEFAULT_ALLOW if allow is None else allow
    out: list[Finding] = []

    def add(rule: str, path: str, value: object, message: str, fix: str) -> None:
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
