"""Baseline as an allow-list: every option that reaches the host is refused unless it is
named as safe, in the form the engine reads it; what real clients send stays allowed.

The real-client bodies in data/ were captured from the docker CLI (28 and Debian's
20.10) and docker-compose 1.29 (see the scripts beside them).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moorage.policy.hostopts import (
    DEFAULT_MASKED_PATHS,
    DEFAULT_READONLY_PATHS,
    cap_name,
    go_json_compact,
    parse_security_opt,
    seccomp_digest,
)
from moorage.policy.rules import RULES
from moorage.policy.rules.base import Finding
from moorage.policy.rules.runtime import check
from moorage.policy.rules.runtime_allow import DEFAULT_CAPS, RuntimeAllow
from moorage.policy.rules.runtime_read import RuntimeView
from moorage.policy.rules.runtime_views import (
    view_build,
    view_container,
    view_exec,
    view_service,
    view_volume,
)

DATA = Path(__file__).parent.parent / "data"
VIEWS = {"container.create": view_container, "volume.create": view_volume, "service.create": view_service,
         "exec.create": view_exec}  # fmt: skip
LONG_S = "\u017f"
ALLOW_ALL_PROFILE = (DATA / "allow-all-seccomp.json").read_text()


def captured() -> list[dict[str, Any]]:
    entries = json.loads((DATA / "cli_bodies.json").read_text()) + json.loads(
        (DATA / "compose_bodies.json").read_text()
    )
    return [e for e in entries if e["kind"] in VIEWS]


def rules(view: RuntimeView, pack: str = "baseline", allow: RuntimeAllow | None = None) -> set[str]:
    return {f.rule for f in check(view, pack, allow)}


def create(**host: Any) -> dict[str, Any]:
    return {"Image": "busybox", "HostConfig": host}


def service(**cs: Any) -> dict[str, Any]:
    return {"Name": "s", "TaskTemplate": {"ContainerSpec": {"Image": "busybox", **cs}}}


# ------------------------------------------------------------ real clients
ENTRIES = captured()


@pytest.mark.parametrize(
    "entry",
    [e for e in ENTRIES if e.get("refused_by") is None],
    ids=lambda e: f"{e['cli']}: {e['command']}",
)
def test_what_real_clients_send_for_ordinary_workloads_passes_baseline(entry: dict[str, Any]) -> None:
    assert check(VIEWS[entry["kind"]](entry["body"]), "baseline") == []


@pytest.mark.parametrize(
    "entry",
    [e for e in ENTRIES if e.get("refused_by")],
    ids=lambda e: f"{e['cli']}: {e['command']}",
)
def test_what_real_clients_send_for_escapes_is_refused_by_the_named_rule(entry: dict[str, Any]) -> None:
    for pack in ("baseline", "restricted"):
        findings = check(VIEWS[entry["kind"]](entry["body"]), pack)
        assert entry["refused_by"] in {f.rule for f in findings}, findings


def test_the_captures_cover_both_clis_compose_and_at_least_thirty_workloads() -> None:
    ordinary = [e for e in ENTRIES if e.get("refused_by") is None]
    assert {e["cli"] for e in ordinary} == {"cli-28", "cli-20.10", "docker-compose 1.29"}
    assert len({e["command"] for e in ordinary}) >= 30
    assert len({e["command"] for e in ENTRIES if e.get("refused_by")}) >= 35


# ------------------------------------------------------------ security options
@pytest.mark.parametrize(
    ("opt", "rule"),
    [
        ("systempaths=unconfined", "runtime.unconfined"),
        ("seccomp:unconfined", "runtime.unconfined"),
        ("seccomp=unconfined", "runtime.unconfined"),
        ("apparmor:unconfined", "runtime.unconfined"),
        ("label=disable", "runtime.unconfined"),
        ("label:disable", "runtime.unconfined"),
        ("disable", "runtime.unconfined"),  # the engine reads the bare word as label=disable
        ("label=type:spc_t", "runtime.selinux-label"),
        ("label=filetype:unconfined_t", "runtime.selinux-label"),
        ("label=nonsense", "runtime.selinux-label"),
        ("apparmor=my-profile", "runtime.apparmor-profile"),
        ("seccomp=default", "runtime.seccomp-profile"),  # not a name the engine knows: a (bad) profile
        ("Seccomp=unconfined", "runtime.security-opt"),  # keys are exact
        ("SECCOMP:UNCONFINED", "runtime.security-opt"),
        ("credentialspec=file://x.json", "runtime.security-opt"),
        ("no-new-privileges=maybe", "runtime.security-opt"),
        ("no-new-privileges ", "runtime.security-opt"),  # neither the bare word nor key=value
        ("mask=/proc", "runtime.security-opt"),
    ],
)
def test_security_options_outside_the_allow_list_are_refused(opt: str, rule: str) -> None:
    (f,) = check(view_container(create(SecurityOpt=["no-new-privileges", opt])), "baseline")
    assert (f.rule, f.path) == (rule, "HostConfig.SecurityOpt[1]")
    assert f.value and f.message and f.fix


@pytest.mark.parametrize(
    "opt",
    ["no-new-privileges", "no-new-privileges=true", "no-new-privileges:true", "no-new-privileges=0",
     "no-new-privileges=T", "apparmor=docker-default", "apparmor:docker-default", "apparmor=", "seccomp=",
     "seccomp=builtin", "label=level:s0:c100,c200", "label:user:system_u", "label=role:system_r",
     "label=type:container_t"],
)  # fmt: skip
def test_security_options_on_the_allow_list_pass(opt: str) -> None:
    assert check(view_container(create(SecurityOpt=[opt])), "baseline") == []


def test_the_last_no_new_privileges_wins_as_in_the_engine() -> None:
    on = view_container(create(SecurityOpt=["no-new-privileges=false", "no-new-privileges:true"]))
    off = view_container(create(SecurityOpt=["no-new-privileges", "no-new-privileges=false"]))
    assert on.no_new_privileges and not off.no_new_privileges
    assert "runtime.no-new-privileges" in rules(off, "restricted")


def test_a_seccomp_profile_that_allows_everything_is_refused_unless_its_digest_is_listed() -> None:
    sent = go_json_compact(ALLOW_ALL_PROFILE)  # what `--security-opt seccomp=FILE` sends
    view = view_container(create(SecurityOpt=[f"seccomp={sent}"]))
    (f,) = check(view, "baseline")
    assert f.rule == "runtime.seccomp-profile" and f.value == seccomp_digest(ALLOW_ALL_PROFILE)
    assert "SCMP_ACT_ALLOW" in f.message and "runtime.seccompProfiles" in f.fix
    allow = RuntimeAllow.from_spec({"seccompProfiles": [seccomp_digest(ALLOW_ALL_PROFILE)]})
    assert check(view, "baseline", allow) == []
    # The colon form carries the profile the same way.
    assert rules(view_container(create(SecurityOpt=[f"seccomp:{sent}"]))) == {"runtime.seccomp-profile"}


def test_the_digest_of_a_profile_file_matches_what_the_cli_sent() -> None:
    (entry,) = [e for e in ENTRIES if "allow-all-seccomp.json" in e["command"] and e["cli"] == "cli-28"]
    (opt,) = [o for o in entry["body"]["HostConfig"]["SecurityOpt"] if o.startswith("seccomp=")]
    assert seccomp_digest(opt.removeprefix("seccomp=")) == seccomp_digest(ALLOW_ALL_PROFILE)
    assert go_json_compact(ALLOW_ALL_PROFILE) == opt.removeprefix("seccomp=")


def test_a_policy_may_allow_apparmor_profiles_and_selinux_types_but_never_unconfined() -> None:
    allow = RuntimeAllow.from_spec({"appArmorProfiles": ["my-profile"], "selinuxTypes": ["my_container_t"]})
    view = view_container(create(SecurityOpt=["apparmor=my-profile", "label=type:my_container_t"]))
    assert check(view, "baseline", allow) == []
    assert rules(view) == {"runtime.apparmor-profile", "runtime.selinux-label"}
    for spec in ({"appArmorProfiles": ["unconfined"]}, {"selinuxTypes": ["spc_t"]},
                 {"seccompProfiles": ["sha256:abc"]}, {"runtimes": ["kata; rm"]}, {"seccomp": []},
                 {"runtimes": "runc"}):  # fmt: skip
        with pytest.raises(ValueError, match=r"runtime\."):
            RuntimeAllow.from_spec(spec)


def _go_security_opt(opt: str) -> tuple[str, str] | None:
    """An independent reading of daemon_unix.go parseSecurityOpt, for the property test."""
    if opt == "no-new-privileges":
        return ("no-new-privileges", "true")
    if opt == "disable":
        return ("label", "disable")
    if "=" in opt:
        k, v = opt.split("=", 1)
    elif ":" in opt:
        k, v = opt.split(":", 1)
    else:
        return None
    return (k, v)


SECOPT_PIECES = ["seccomp", "apparmor", "label", "no-new-privileges", "systempaths", "disable", "Seccomp", "=",
                 ":", "unconfined", "docker-default", "builtin", "type", "spc_t", "level", "s0", "true", "false",
                 "{}", "disable", "", " "]  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(SECOPT_PIECES), min_size=1, max_size=5).map("".join))
def test_any_security_option_that_passes_reads_as_a_safe_one_to_the_engine(opt: str) -> None:
    passed = check(view_container(create(SecurityOpt=[opt])), "baseline") == []
    engine = _go_security_opt(opt)
    assert parse_security_opt(opt).key == (engine[0] if engine else None)
    if not passed:
        return
    assert engine is not None, opt
    key, value = engine
    if key == "no-new-privileges":
        assert value in {"1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"}
    elif key == "apparmor":
        assert value in ("", "docker-default")
    elif key == "seccomp":
        assert value in ("", "builtin")
    else:
        assert (
            key == "label"
            and value != "disable"
            and value.split(":", 1)[0] in ("user", "role", "level", "type")
        )
        if value.startswith("type:"):
            assert value in ("type:container_t", "type:container_init_t", "type:svirt_lxc_net_t")


# ------------------------------------------------------------ masked paths
@pytest.mark.parametrize("name", ["MaskedPaths", "ReadonlyPaths"])
def test_empty_masked_or_read_only_paths_are_refused_absent_and_null_pass(name: str) -> None:
    (f,) = check(view_container(create(**{name: []})), "baseline")
    assert (f.rule, f.path, f.value) == ("runtime.masked-paths", f"HostConfig.{name}", [])
    assert check(view_container(create(**{name: None})), "baseline") == []
    assert check(view_container(create()), "baseline") == []


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([("MaskedPaths", DEFAULT_MASKED_PATHS), ("ReadonlyPaths", DEFAULT_READONLY_PATHS)]),
    st.data(),
)
def test_a_path_list_passes_only_when_it_keeps_every_default(
    which: tuple[str, tuple[str, ...]], data: st.DataObject
) -> None:
    name, defaults = which
    kept = data.draw(st.lists(st.sampled_from(defaults), unique=True))
    extra = data.draw(st.lists(st.sampled_from(["/proc/cpuinfo", "/data", "/proc/kcore/", "/proc//keys"])))
    paths = data.draw(st.permutations(kept + extra))
    passed = check(view_container(create(**{name: paths})), "baseline") == []
    assert passed == set(defaults).issubset(paths)


# ------------------------------------------------------------ capabilities
DANGEROUS = ["SYS_ADMIN", "SYS_PTRACE", "SYS_MODULE", "NET_ADMIN", "DAC_READ_SEARCH", "SYS_RAWIO", "BPF", "ALL",
             "PERFMON", "SYS_BOOT", "SYSLOG", "MAC_ADMIN", "LINUX_IMMUTABLE", "SYS_TIME"]  # fmt: skip


def spellings(cap: str) -> st.SearchStrategy[str]:
    # LONG S (U+017F) upper-cases to S in Go as in Python, so it is one more spelling of S.
    return st.sampled_from([cap, cap.lower(), f"CAP_{cap}", f"cap_{cap.lower()}", cap.title(),
                            f"CAP_{cap}".replace("S", LONG_S)])  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(DANGEROUS).flatmap(spellings), st.sampled_from(["CapAdd", "Capabilities"]))
def test_dangerous_capabilities_in_any_spelling_and_field_are_refused(cap: str, field: str) -> None:
    (f,) = check(view_container(create(**{field: [cap]})), "baseline")
    assert (f.rule, f.path) == ("runtime.capabilities", f"HostConfig.{field}[0]")


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(DEFAULT_CAPS)).flatmap(spellings))
def test_default_capabilities_in_any_spelling_pass_baseline(cap: str) -> None:
    assert check(view_container(create(CapAdd=[cap])), "baseline") == []
    assert check(view_service(service(CapabilityAdd=[cap])), "baseline") == []


def test_capabilities_replacing_the_default_set_are_checked_too() -> None:
    (f,) = check(view_container(create(Capabilities=["CAP_SYS_ADMIN"])), "baseline")
    assert (f.path, f.value) == ("HostConfig.Capabilities[0]", "SYS_ADMIN")
    assert "replaces the default set" in f.fix
    assert check(view_container(create(Capabilities=["CAP_CHOWN", "CAP_KILL"])), "baseline") == []


def test_capability_names_are_normalised_as_the_engine_does() -> None:
    assert cap_name("cap_sys_admin") == "SYS_ADMIN"
    assert cap_name(f"{LONG_S}ys_admin") == "SYS_ADMIN"  # Go's ToUpper maps LONG S to S
    assert cap_name("ßYS_ADMIN") == "ßYS_ADMIN"  # ...but leaves ß alone, unlike Python's upper()
    assert cap_name(" CHOWN") == " CHOWN"  # the engine doesn't trim: no capability
    assert rules(view_container(create(CapAdd=[" CHOWN"]))) == {"runtime.capabilities"}


# ------------------------------------------------------------ devices
@pytest.mark.parametrize(
    ("name", "value"),
    [("Devices", {"PathOnHost": "/dev/sda", "PathInContainer": "/dev/sda", "CgroupPermissions": "rwm"}),
     ("DeviceCgroupRules", "c *:* rwm"),
     ("DeviceRequests", {"Driver": "", "Count": -1, "DeviceIDs": None, "Capabilities": [["gpu"]]})],
)  # fmt: skip
def test_devices_cgroup_rules_and_gpus_are_refused(name: str, value: Any) -> None:
    (f,) = check(view_container(create(**{name: [value]})), "baseline")
    assert (f.rule, f.path, f.value) == ("runtime.devices", f"HostConfig.{name}[0]", value)


# ------------------------------------------------------------ mounts and volumes
def mount(**m: Any) -> dict[str, Any]:
    return {"Target": "/m", **m}


@pytest.mark.parametrize(
    ("m", "rule", "path"),
    [
        (mount(Type="npipe", Source=r"\\.\pipe\docker_engine"), "runtime.mount", "Type"),
        (mount(Type="cluster", Source="csi"), "runtime.mount", "Type"),
        (mount(Type="image", Source="busybox"), "runtime.mount", "Type"),
        (mount(Type="", Source="x"), "runtime.mount", "Type"),
        (mount(Source="x"), "runtime.mount", "Type"),
        (mount(Type="volume", Source="x", BindOptions={"Propagation": "rshared"}), "runtime.mount", "BindOptions"),
        (mount(Type="tmpfs", BindOptions={}), "runtime.mount", "BindOptions"),
        (mount(Type="tmpfs", TmpfsOptions={"Options": [["bind"]]}), "runtime.mount", "TmpfsOptions.Options[0]"),
        (mount(Type="volume", Source="x", VolumeOptions={"DriverConfig": {"Name": "convoy"}}),
         "runtime.volume-driver", "VolumeOptions.DriverConfig.Name"),
        (mount(Type="volume", Source="x", VolumeOptions={"DriverConfig": {"Options": {
            "type": "ext4", "device": "/dev/sda1"}}}), "runtime.volume-options", "VolumeOptions.DriverConfig.Options.type"),
        (mount(Type="volume", Source="x", VolumeOptions={"DriverConfig": {"Name": "local", "Options": {
            "type": "none", "o": "bind", "device": "/"}}}), "runtime.host-path", "VolumeOptions.DriverConfig.Options.device"),
        (mount(Type="volume", Source="x", VolumeOptions={"DriverConfig": {"Options": {
            "type": "tmpfs", "device": "tmpfs", "o": "size=1m,bind"}}}), "runtime.volume-options",
         "VolumeOptions.DriverConfig.Options.o"),
        (mount(Type="volume", Source="x", VolumeOptions={"DriverConfig": {"Options": {"O": "bind"}}}),
         "runtime.volume-options", "VolumeOptions.DriverConfig.Options.O"),
        (mount(Type="bind", Source="/"), "runtime.host-path", "Source"),
    ],
)  # fmt: skip
def test_container_and_service_mounts_outside_the_allow_list_are_refused(
    m: dict[str, Any], rule: str, path: str
) -> None:
    for view, where in ((view_container(create(Mounts=[m])), "HostConfig.Mounts[0]"),
                        (view_service(service(Mounts=[m])), "TaskTemplate.ContainerSpec.Mounts[0]")):  # fmt: skip
        findings = check(view, "baseline")
        assert (rule, f"{where}.{path}") in {(f.rule, f.path) for f in findings}, findings


@pytest.mark.parametrize(
    "m",
    [mount(Type="volume", Source="data"), mount(Type="volume"), mount(Type="VOLUME", Source="data"),
     mount(Type="volume", Source="data", ReadOnly=True, VolumeOptions={"NoCopy": True, "Labels": {"a": "b"}}),
     mount(Type="volume", Source="d", VolumeOptions={"DriverConfig": {"Name": "local", "Options": {
         "type": "tmpfs", "device": "tmpfs", "o": "size=100m,mode=1777,uid=1000,gid=1000,nr_inodes=1k"}}}),
     mount(Type="volume", Source="d", VolumeOptions={"DriverConfig": {"Name": "", "Options": None}}),
     mount(Type="tmpfs", TmpfsOptions={"SizeBytes": 1 << 20, "Mode": 0o1777}),
     mount(Type="tmpfs", TmpfsOptions={"Options": [["noexec"], ["size", "1m"]]})],
)  # fmt: skip
def test_volume_and_tmpfs_mounts_with_safe_options_pass(m: dict[str, Any]) -> None:
    assert check(view_container(create(Mounts=[m])), "baseline") == []
    assert check(view_service(service(Mounts=[m])), "baseline") == []


@pytest.mark.parametrize(
    ("body", "rule", "path"),
    [
        ({"Name": "v", "DriverOpts": {"type": "ext4", "device": "/dev/sda1"}}, "runtime.volume-options", "DriverOpts.type"),
        ({"Name": "v", "DriverOpts": {"type": "nfs", "o": "addr=127.0.0.1", "device": ":/"}}, "runtime.volume-options",
         "DriverOpts.type"),
        ({"Name": "v", "DriverOpts": {"type": "none", "o": "bind", "device": "/etc"}}, "runtime.host-path", "DriverOpts.device"),
        ({"Name": "v", "DriverOpts": {"type": "none", "o": "rbind", "device": "/var/run/docker.sock"}},
         "runtime.docker-socket", "DriverOpts.device"),
        ({"Name": "v", "DriverOpts": {"Type": "none", "O": "bind", "Device": "/etc"}}, "runtime.volume-options",
         "DriverOpts.Type"),
        ({"Name": "v", "DriverOpts": {"type": "tmpfs", "device": "tmpfs", "o": "remount,size=1m"}},
         "runtime.volume-options", "DriverOpts.o"),
        ({"Name": "v", "DriverOpts": {"type": "tmpfs", "device": "/dev/sda1"}}, "runtime.volume-options",
         "DriverOpts.device"),
        ({"Name": "v", "DriverOpts": {"size": "lots"}}, "runtime.volume-options", "DriverOpts.size"),
        ({"Name": "v", "DriverOpts": {"o": "bind"}}, "runtime.volume-options", "DriverOpts.type"),
        ({"Name": "v", "Driver": "convoy"}, "runtime.volume-driver", "Driver"),
        ({"Name": "v", "Driver": "Local"}, "runtime.volume-driver", "Driver"),
        ({"Name": "v", "ClusterVolumeSpec": {}}, "runtime.volume-driver", "ClusterVolumeSpec"),
    ],
)  # fmt: skip
def test_volume_create_allows_only_plain_and_tmpfs_local_volumes(
    body: dict[str, Any], rule: str, path: str
) -> None:
    findings = check(view_volume(body), "baseline")
    assert (rule, path) in {(f.rule, f.path) for f in findings}, findings


@pytest.mark.parametrize(
    "body",
    [{"Name": "v"}, {"Name": "v", "Driver": "local", "DriverOpts": {}}, {"Name": "v", "DriverOpts": None},
     {"Name": "v", "DriverOpts": {"size": "10g"}},
     {"Name": "v", "DriverOpts": {"type": "tmpfs", "device": "tmpfs"}},
     {"Name": "v", "DriverOpts": {"type": "tmpfs", "device": "tmpfs", "o": "size=64m,noexec,nosuid,nodev"}}],
)  # fmt: skip
def test_plain_and_tmpfs_local_volumes_pass(body: dict[str, Any]) -> None:
    assert check(view_volume(body), "baseline") == []


LOCAL_KEYS = ["type", "device", "o", "size", "Type", "O", "DEVICE", "mountpoint"]
LOCAL_VALUES = ["tmpfs", "none", "bind", "rbind", "ext4", "nfs", "/etc", "/dev/sda1", ":/export", "size=1m",
                "size=1m,bind", "mode=1777,uid=0", "addr=127.0.0.1", "remount", "10g", "", "size=1m,,mode=1"]  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.sampled_from(LOCAL_KEYS), st.sampled_from(LOCAL_VALUES), max_size=4))
def test_any_local_volume_that_passes_mounts_nothing_but_a_sized_tmpfs(opts: dict[str, str]) -> None:
    passed = check(view_volume({"Name": "v", "DriverOpts": opts}), "baseline") == []
    if passed:
        assert set(opts) <= {"type", "device", "o", "size"}
        if {"type", "device", "o"} & set(opts):
            assert opts.get("type") == "tmpfs" and opts.get("device") == "tmpfs"
            items = opts.get("o", "").split(",") if opts.get("o") else []
            assert all(i.split("=")[0] in ("size", "mode", "uid", "gid", "nr_inodes", "ro", "rw", "noexec",
                                           "nosuid", "nodev", "noatime") for i in items), opts  # fmt: skip
    # The same options inline in a container's mount get the same verdict.
    inline = mount(
        Type="volume", Source="v", VolumeOptions={"DriverConfig": {"Name": "local", "Options": opts}}
    )
    assert (check(view_container(create(Mounts=[inline])), "baseline") == []) == passed


@pytest.mark.parametrize(
    ("tmpfs", "ok"),
    [({"/run": ""}, True), ({"/run": "rw,noexec,nosuid,size=65536k"}, True), ({"/t": "mode=1777,uid=1000"}, True),
     ({"/t": "bind"}, False), ({"/t": "size=1m,remount"}, False), ({"/t": "rbind,ro"}, False),
     ({"/t": "size=$(id)"}, False)],
)  # fmt: skip
def test_tmpfs_options_are_allow_listed(tmpfs: dict[str, str], ok: bool) -> None:
    findings = check(view_container(create(Tmpfs=tmpfs)), "baseline")
    assert (findings == []) == ok
    assert all(f.rule == "runtime.mount" for f in findings)


def test_volume_driver_of_a_container_must_be_local() -> None:
    assert check(view_container(create(VolumeDriver="local", Binds=["x:/x"])), "baseline") == []
    (f,) = check(view_container(create(VolumeDriver="convoy", Binds=["x:/x"])), "baseline")
    assert (f.rule, f.path, f.value) == ("runtime.volume-driver", "HostConfig.VolumeDriver", "convoy")


# ------------------------------------------------------------ other host fields
@pytest.mark.parametrize(
    ("host", "rule", "path"),
    [
        ({"CgroupParent": "/"}, "runtime.cgroup", "HostConfig.CgroupParent"),
        ({"CgroupParent": "system.slice"}, "runtime.cgroup", "HostConfig.CgroupParent"),
        ({"Cgroup": "container:abc"}, "runtime.cgroup", "HostConfig.Cgroup"),
        ({"Runtime": "kata"}, "runtime.oci-runtime", "HostConfig.Runtime"),
        ({"Runtime": "io.containerd.kata.v2"}, "runtime.oci-runtime", "HostConfig.Runtime"),
        ({"Isolation": "hyperv"}, "runtime.oci-runtime", "HostConfig.Isolation"),
        ({"Annotations": {"org.systemd.property.DeviceAllow": "'/dev/sda rwm'"}}, "runtime.oci-runtime",
         "HostConfig.Annotations"),
        ({"OomScoreAdj": -1000}, "runtime.oom-score", "HostConfig.OomScoreAdj"),
        ({"OomScoreAdj": -1}, "runtime.oom-score", "HostConfig.OomScoreAdj"),
        ({"UsernsMode": "host"}, "runtime.host-namespace", "HostConfig.UsernsMode"),
        ({"PidMode": "HOST"}, "runtime.host-namespace", "HostConfig.PidMode"),
        ({"IpcMode": "something"}, "runtime.host-namespace", "HostConfig.IpcMode"),
        ({"CgroupnsMode": "host"}, "runtime.host-namespace", "HostConfig.CgroupnsMode"),
        ({"UTSMode": "container:x"}, "runtime.host-namespace", "HostConfig.UTSMode"),
        ({"Privileged": True}, "runtime.privileged", "HostConfig.Privileged"),
        ({"Sysctls": {"kernel.core_pattern": "|/x"}}, "runtime.sysctls", "HostConfig.Sysctls.kernel.core_pattern"),
        ({"Sysctls": {"net/ipv4/ip_forward": "1"}}, "runtime.sysctls", "HostConfig.Sysctls.net/ipv4/ip_forward"),
        ({"LogConfig": {"Type": "syslog", "Config": {"syslog-address": "unix:///dev/log"}}}, "runtime.log-driver",
         "HostConfig.LogConfig"),
        ({"LogConfig": {"Type": "", "Config": {"fluentd-address": "127.0.0.1:24224"}}}, "runtime.log-driver",
         "HostConfig.LogConfig.Config.fluentd-address"),
        ({"LogConfig": {"Type": "gelf"}}, "runtime.log-driver", "HostConfig.LogConfig"),
    ],
)  # fmt: skip
def test_fields_that_reach_the_host_are_refused_unless_at_a_safe_value(
    host: dict[str, Any], rule: str, path: str
) -> None:
    for pack in ("baseline", "restricted"):
        findings = check(view_container(create(**host)), pack)
        assert (rule, path) in {(f.rule, f.path) for f in findings}, findings


@pytest.mark.parametrize(
    "host",
    [{"Runtime": "runc"}, {"Runtime": "io.containerd.runc.v2"}, {"Runtime": ""}, {"Isolation": "default"},
     {"Isolation": ""}, {"CgroupParent": "", "Cgroup": ""}, {"OomScoreAdj": 0}, {"OomScoreAdj": 1000},
     {"IpcMode": "shareable"}, {"IpcMode": "none"}, {"IpcMode": "container:db"}, {"PidMode": "container:db"},
     {"CgroupnsMode": "private"}, {"Annotations": {}}, {"Annotations": None},
     {"LogConfig": {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3", "compress": "true"}}},
     {"LogConfig": {"Type": "journald", "Config": {"tag": "{{.Name}}"}}}, {"LogConfig": {"Type": "none"}},
     {"MaskedPaths": [*DEFAULT_MASKED_PATHS, "/proc/cpuinfo"]}, {"ReadonlyPaths": list(DEFAULT_READONLY_PATHS)},
     {"Devices": [], "DeviceCgroupRules": None, "DeviceRequests": None, "Capabilities": None}],
)  # fmt: skip
def test_safe_values_of_those_fields_pass(host: dict[str, Any]) -> None:
    assert check(view_container(create(**host)), "baseline") == []


def test_a_policy_may_allow_a_runtime_and_a_log_driver() -> None:
    allow = RuntimeAllow.from_spec({"runtimes": ["runsc"], "logDrivers": ["fluentd"]})
    view = view_container(
        create(Runtime="runsc", LogConfig={"Type": "fluentd", "Config": {"fluentd-address": "x"}})
    )
    assert check(view, "baseline", allow) == []
    assert rules(view) == {"runtime.oci-runtime", "runtime.log-driver"}


# ------------------------------------------------------------ services, exec, build
@pytest.mark.parametrize(
    ("spec", "rule", "path"),
    [
        (service(Privileges={"Seccomp": {"Mode": "unconfined"}}), "runtime.unconfined",
         "TaskTemplate.ContainerSpec.Privileges.Seccomp.Mode"),
        (service(Privileges={"Seccomp": {"Mode": "custom", "Profile": base64.b64encode(ALLOW_ALL_PROFILE.encode()).decode()}}),
         "runtime.seccomp-profile", "TaskTemplate.ContainerSpec.Privileges.Seccomp.Profile"),
        (service(Privileges={"Seccomp": {"Mode": "custom", "Profile": ALLOW_ALL_PROFILE}}),
         "runtime.seccomp-profile", "TaskTemplate.ContainerSpec.Privileges.Seccomp.Profile"),
        (service(Privileges={"Seccomp": {"Mode": "Unconfined"}}), "runtime.seccomp-profile",
         "TaskTemplate.ContainerSpec.Privileges.Seccomp.Mode"),
        (service(Privileges={"AppArmor": {"Mode": "disabled"}}), "runtime.unconfined",
         "TaskTemplate.ContainerSpec.Privileges.AppArmor.Mode"),
        (service(Privileges={"AppArmor": {"Mode": "off"}}), "runtime.apparmor-profile",
         "TaskTemplate.ContainerSpec.Privileges.AppArmor.Mode"),
        (service(Privileges={"SELinuxContext": {"Disable": True}}), "runtime.unconfined",
         "TaskTemplate.ContainerSpec.Privileges.SELinuxContext.Disable"),
        (service(Privileges={"SELinuxContext": {"Type": "spc_t"}}), "runtime.selinux-label",
         "TaskTemplate.ContainerSpec.Privileges.SELinuxContext.Type"),
        (service(Privileges={"CredentialSpec": {"File": "spec.json"}}), "runtime.security-opt",
         "TaskTemplate.ContainerSpec.Privileges.CredentialSpec"),
        (service(CapabilityAdd=["CAP_SYS_ADMIN"]), "runtime.capabilities", "TaskTemplate.ContainerSpec.CapabilityAdd[0]"),
        (service(Isolation="process"), "runtime.oci-runtime", "TaskTemplate.ContainerSpec.Isolation"),
        (service(OomScoreAdj=-500), "runtime.oom-score", "TaskTemplate.ContainerSpec.OomScoreAdj"),
        (service(Sysctls={"kernel.modprobe": "/x"}), "runtime.sysctls", "TaskTemplate.ContainerSpec.Sysctls.kernel.modprobe"),
        ({"TaskTemplate": {"Runtime": "plugin", "PluginSpec": {"Name": "evil"}}}, "runtime.oci-runtime",
         "TaskTemplate.PluginSpec"),
        ({"TaskTemplate": {"ContainerSpec": {}, "LogDriver": {"Name": "gelf", "Options": {}}}}, "runtime.log-driver",
         "TaskTemplate.LogDriver"),
        ({"TaskTemplate": {"ContainerSpec": {}, "LogDriver": {"Name": "json-file", "Options": {"gelf-address": "x"}}}},
         "runtime.log-driver", "TaskTemplate.LogDriver.Options.gelf-address"),
    ],
)  # fmt: skip
def test_service_escapes_are_refused(spec: dict[str, Any], rule: str, path: str) -> None:
    findings = check(view_service(spec), "baseline")
    assert (rule, path) in {(f.rule, f.path) for f in findings}, findings


def test_a_service_may_use_a_custom_seccomp_profile_the_policy_lists() -> None:
    profile = base64.b64encode(ALLOW_ALL_PROFILE.encode()).decode()
    view = view_service(service(Privileges={"Seccomp": {"Mode": "custom", "Profile": profile}}))
    allow = RuntimeAllow.from_spec({"seccompProfiles": [seccomp_digest(ALLOW_ALL_PROFILE)]})
    assert check(view, "baseline", allow) == []
    ok = service(Privileges={"Seccomp": {"Mode": "default"}, "AppArmor": {"Mode": "default"}, "NoNewPrivileges": True,
                             "SELinuxContext": {"Level": "s0:c1", "Disable": False}, "CredentialSpec": None},
                 Isolation="default")  # fmt: skip
    assert check(view_service(ok), "baseline") == []


def test_exec_and_build() -> None:
    assert rules(view_exec({"Privileged": True, "Cmd": ["sh"]})) == {"runtime.privileged"}
    assert check(view_exec({"User": "0", "Cmd": ["sh"], "Tty": True}), "baseline") == []
    assert rules(view_build({"networkmode": ["container:abc"]})) == {"runtime.host-namespace"}
    assert rules(view_build({"networkmode": ["host"]})) == {"runtime.host-namespace"}
    assert rules(view_build({"cgroupparent": ["/"]})) == {"runtime.cgroup"}
    assert rules(view_build({"isolation": ["hyperv"]})) == {"runtime.oci-runtime"}
    assert (
        check(view_build({"networkmode": ["default"], "t": ["app:1"], "cgroupparent": [""]}), "baseline")
        == []
    )


# ------------------------------------------------------------ findings and docs
def test_every_finding_names_rule_path_value_message_and_fix_and_every_rule_is_documented() -> None:
    bodies = [
        create(SecurityOpt=["systempaths=unconfined", "seccomp:unconfined", "x"], MaskedPaths=[], ReadonlyPaths=[],
               Capabilities=["CAP_SYS_ADMIN"], DeviceRequests=[{"Count": -1}], CgroupParent="/", Runtime="kata",
               OomScoreAdj=-1, VolumeDriver="convoy", Tmpfs={"/t": "bind"}, LogConfig={"Type": "syslog"},
               Mounts=[mount(Type="npipe")]),
    ]  # fmt: skip
    findings: list[Finding] = []
    for body in bodies:
        findings += check(view_container(body), "restricted")
    findings += check(view_volume({"DriverOpts": {"type": "ext4", "device": "/dev/sda"}}), "baseline")
    findings += check(
        view_service(service(Privileges={"Seccomp": {"Mode": "custom", "Profile": "!"}})), "baseline"
    )
    assert len({f.rule for f in findings}) >= 14
    for f in findings:
        assert f.rule in RULES, f.rule
        assert f.path and f.message and f.fix, f
        assert "runtime" in RULES[f.rule].packs or RULES[f.rule].family == "runtime"
