"""Every host-level escape, in any field and spelling, is caught; ordinary workloads pass."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moorage.policy.rules.runtime import check
from moorage.policy.rules.runtime_views import view_container, view_exec, view_service


def spell(name: str) -> st.SearchStrategy[str]:
    """The spellings the engine accepts for a JSON field name (it folds case)."""
    return st.sampled_from([name, name.lower(), name.upper(), name[0].lower() + name[1:]])


def cap_spellings(cap: str) -> st.SearchStrategy[str]:
    return st.sampled_from([cap, cap.lower(), f"CAP_{cap}", f"cap_{cap.lower()}", f"Cap_{cap.title()}"])


DANGEROUS_CAPS = [
    "SYS_ADMIN",
    "SYS_PTRACE",
    "SYS_MODULE",
    "NET_ADMIN",
    "DAC_READ_SEARCH",
    "SYS_RAWIO",
    "BPF",
    "ALL",
]
HOST_PATHS = ["/", "/etc", "//etc/./", "/var/lib/docker", "/root/.ssh", "/proc", "/sys/fs/cgroup", "/home"]
SOCKETS = ["/var/run/docker.sock", "/run/docker.sock", "//var//run/docker.sock", "/var/run", "/run/docker"]
SECOPTS = ["seccomp=unconfined", "seccomp:unconfined", "SECCOMP=UNCONFINED", "apparmor=unconfined",
           "apparmor:unconfined", "label=disable", "label:disable"]  # fmt: skip
MODES = ["PidMode", "IpcMode", "UTSMode", "NetworkMode", "UsernsMode", "CgroupnsMode"]


@st.composite
def escape(draw: st.DrawFn) -> tuple[dict[str, Any], set[str]]:
    """A create body with one escape, and the rules any of which must fire."""
    kind = draw(st.sampled_from(["privileged", "cap", "ns", "bind", "mount", "socket", "device", "cgroup-rule",
                                 "secopt", "sysctl"]))  # fmt: skip
    host: dict[str, Any] = {}
    rules: set[str]
    if kind == "privileged":
        host[draw(spell("Privileged"))], rules = True, {"runtime.privileged"}
    elif kind == "cap":
        host[draw(spell("CapAdd"))] = [draw(cap_spellings(draw(st.sampled_from(DANGEROUS_CAPS))))]
        rules = {"runtime.capabilities"}
    elif kind == "ns":
        host[draw(spell(draw(st.sampled_from(MODES))))] = draw(st.sampled_from(["host", "HOST", "Host"]))
        rules = {"runtime.host-namespace"}
    elif kind == "bind":
        host[draw(spell("Binds"))] = [
            f"{draw(st.sampled_from(HOST_PATHS))}:/h" + draw(st.sampled_from(["", ":ro"]))
        ]
        rules = {"runtime.host-path"}
    elif kind == "mount":
        mount = {draw(spell("Type")): draw(st.sampled_from(["bind", "BIND"])),
                 draw(spell("Source")): draw(st.sampled_from(HOST_PATHS + SOCKETS)), "Target": "/h"}  # fmt: skip
        host[draw(spell("Mounts"))] = [mount]
        rules = {"runtime.host-path", "runtime.docker-socket"}
    elif kind == "socket":
        host["Binds"] = [f"{draw(st.sampled_from(SOCKETS))}:/s"]
        rules = {"runtime.docker-socket"}
    elif kind == "device":
        host[draw(spell("Devices"))] = [{"PathOnHost": "/dev/sda", "PathInContainer": "/dev/sda",
                                         "CgroupPermissions": "rwm"}]  # fmt: skip
        rules = {"runtime.devices"}
    elif kind == "cgroup-rule":
        host[draw(spell("DeviceCgroupRules"))] = ["b 8:* rmw"]
        rules = {"runtime.devices"}
    elif kind == "secopt":
        host[draw(spell("SecurityOpt"))] = [draw(st.sampled_from(SECOPTS))]
        # The engine's keys are exact: SECCOMP=... is an unknown option, refused as such.
        rules = {"runtime.unconfined", "runtime.security-opt"}
    else:
        host[draw(spell("Sysctls"))] = {draw(st.sampled_from(["kernel.core_pattern", "kernel.modprobe",
                                                              "net.ipv4.ip_forward"])): "1"}  # fmt: skip
        rules = {"runtime.sysctls"}
    body = {"Image": "app", draw(spell("HostConfig")): host}
    return body, rules


@settings(max_examples=400, deadline=None)
@given(escape())
def test_every_escape_is_denied_by_both_packs(case: tuple[dict[str, Any], set[str]]) -> None:
    body, rules = case
    for pack in ("baseline", "restricted"):
        fired = {f.rule for f in check(view_container(body), pack)}
        assert fired & rules, (pack, body, fired)


ORDINARY: list[dict[str, Any]] = [
    {"Image": "nginx:1.25", "Cmd": ["nginx", "-g", "daemon off;"]},
    {"Image": "app", "Env": ["A=1"], "HostConfig": {"Binds": ["data:/var/lib/app"], "PortBindings": {
        "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}}},
    {"Image": "app", "User": "1000:1000", "HostConfig": {"CapDrop": ["ALL"], "CapAdd": ["NET_BIND_SERVICE"],
                                                          "SecurityOpt": ["no-new-privileges"], "ReadonlyRootfs": True}},
    {"Image": "app", "HostConfig": {"NetworkMode": "bridge", "Memory": 268435456, "PidsLimit": 100,
                                    "Sysctls": {"net.ipv4.ip_unprivileged_port_start": "0"}}},
    {"Image": "app", "HostConfig": {"Mounts": [{"Type": "volume", "Source": "cache", "Target": "/c"},
                                               {"Type": "tmpfs", "Target": "/tmp"}], "CapAdd": ["chown", "CAP_SETUID"]}},
    {"Image": "db", "HostConfig": {"NetworkMode": "backend", "SecurityOpt": ["apparmor=docker-default"]}},
]  # fmt: skip


@pytest.mark.parametrize("body", ORDINARY)
def test_ordinary_workloads_pass_baseline(body: dict[str, Any]) -> None:
    assert check(view_container(body), "baseline") == []


def test_restricted_adds_least_privilege_with_fixes() -> None:
    findings = check(view_container({"Image": "app"}), "restricted")
    assert {f.rule for f in findings} == {"runtime.capabilities.drop-all", "runtime.no-new-privileges",
                                          "runtime.non-root", "runtime.read-only-rootfs"}  # fmt: skip
    assert all(f.fix for f in findings)
    assert check(view_container(ORDINARY[2]), "restricted") == []


def test_findings_name_the_field_and_value() -> None:
    (f,) = check(
        view_container({"Image": "x", "HostConfig": {"CapAdd": ["NET_BIND_SERVICE", "sys_admin"]}}),
        "baseline",
    )
    assert (f.rule, f.path, f.value) == ("runtime.capabilities", "HostConfig.CapAdd[1]", "SYS_ADMIN")
    assert f.fix == "remove --cap-add sys_admin"


def test_exec_and_service_escapes() -> None:
    assert {f.rule for f in check(view_exec({"Privileged": True, "User": "0"}), "restricted")} >= {
        "runtime.privileged", "runtime.non-root"}  # fmt: skip
    spec = {"TaskTemplate": {"ContainerSpec": {
        "CapabilityAdd": ["CAP_SYS_ADMIN"], "Mounts": [{"Type": "bind", "Source": "/var/run/docker.sock"}],
        "Privileges": {"Seccomp": {"Mode": "unconfined"}}}}}  # fmt: skip
    assert {f.rule for f in check(view_service(spec), "baseline")} == {
        "runtime.capabilities", "runtime.docker-socket", "runtime.unconfined"}  # fmt: skip


def test_unknown_pack_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown pack"):
        check(view_container({}), "lenient")
