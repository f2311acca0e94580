"""The packs as allow-lists of operations: networks, builds, plugins, swarm, nodes,
container update, and operations nobody modelled. Pure: evaluate() on data."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from moorage.engine_api import endpoints
from moorage.policy.decision import Facts, Request, evaluate
from moorage.policy.loader import builtin_set, load_folder
from moorage.policy.rules.operations import check_operation
from moorage.policy.rules.operations_base import MODELLED, PLAIN, READS, OperationFacts

BASELINE = builtin_set("baseline", None)
RESTRICTED = builtin_set("restricted", None)
DEV = {"user": "alice", "teams": ("payments",), "roles": ("developer",)}
ADMIN = {"user": "root", "teams": ("ops",), "roles": ("admin",)}
HOST_NET_ID = "f" * 12 + "0" * 52


def denied(
    kind: str, body: Any = None, facts: Facts | None = None, pset: Any = BASELINE, **req: Any
) -> list[str]:
    """The rules that deny the request, the same for a developer and an admin."""
    out = []
    for who in (DEV, ADMIN):
        d = evaluate(pset, Request(kind, body, **req, **who), facts or Facts())
        out.append(sorted(v.finding.rule for v in d.denials))
    assert out[0] == out[1], out
    return out[0]


def table_kinds() -> dict[str, str]:
    """Every operation in the endpoint table, with its action class."""
    out: dict[str, str] = {}
    for _m, pattern, kind, cls, _o, _h in endpoints._TABLE:
        verbs = re.search(r"\(\?P<verb>([^)]*)\)", pattern)
        for verb in verbs.group(1).split("|") if verbs else [""]:
            out[kind.format(verb=verb)] = cls
    return out


def test_every_endpoint_is_classified_and_reads_are_reads() -> None:
    for kind, cls in table_kinds().items():
        if kind.startswith("moorage."):
            continue  # Moorage's own API: served by the gateway, decided by RBAC
        if cls in endpoints.READ_CLASSES:
            assert kind in READS, kind
        else:
            assert kind in MODELLED | PLAIN, kind
    assert not (MODELLED & PLAIN) and not (READS & (MODELLED | PLAIN))


@pytest.mark.parametrize("kind", ["unknown", "container.frobnicate", "plugin.teleport", "swarm.explode"])
def test_an_operation_nobody_modelled_is_refused(kind: str) -> None:
    assert denied(kind, {}) == ["runtime.unknown-operation"]
    assert denied(kind, {}, pset=RESTRICTED) == ["runtime.unknown-operation"]


@pytest.mark.parametrize("kind", sorted(PLAIN | READS))
def test_plain_operations_and_reads_pass(kind: str) -> None:
    assert denied(kind, None, object_ref="x") == []


# ---------------------------------------------------------------- networks
@pytest.mark.parametrize(
    ("kind", "body", "ref", "rule"),
    [
        ("container.create", {"Image": "a", "HostConfig": {"NetworkMode": "host"}}, None, "runtime.host-namespace"),
        ("container.create", {"Image": "a", "HostConfig": {"NetworkMode": "HOST"}}, None, "runtime.host-namespace"),
        ("container.create", {"Image": "a", "NetworkingConfig": {"EndpointsConfig": {"host": {}}}}, None, "network.host"),
        ("container.create", {"Image": "a", "NetworkingConfig": {"EndpointsConfig": {"Host": {}}}}, None, "network.host"),
        ("service.create", {"TaskTemplate": {"ContainerSpec": {"Image": "a"}, "Networks": [{"Target": "host"}]}}, None,
         "network.host"),
        ("service.update", {"TaskTemplate": {"ContainerSpec": {"Image": "a"}}, "Networks": [{"Target": "HOST"}]}, "s1",
         "network.host"),
        ("service.create", {"TaskTemplate": {"ContainerSpec": {"Image": "a"}, "Networks": [{"Target": HOST_NET_ID[:12]}]}},
         None, "network.host"),
        ("container.create", {"Image": "a", "NetworkingConfig": {"EndpointsConfig": {HOST_NET_ID: {}}}}, None,
         "network.host"),
        ("network.connect", {"Container": "c1"}, "host", "network.host"),
        ("network.connect", {"Container": "c1"}, HOST_NET_ID[:20], "network.host"),
    ],
)  # fmt: skip
def test_host_networking_is_refused_in_every_place(kind: str, body: Any, ref: str | None, rule: str) -> None:
    facts = Facts(host_networks=(HOST_NET_ID,))
    assert denied(kind, body, facts, object_ref=ref) == [rule]


@pytest.mark.parametrize(
    ("kind", "body", "ref"),
    [
        ("container.create", {"Image": "a", "HostConfig": {"NetworkMode": "container:abc"}}, None),
        ("container.create", {"Image": "a", "HostConfig": {"NetworkMode": "payments-net"},
                              "NetworkingConfig": {"EndpointsConfig": {"payments-net": {"Aliases": ["db"]}}}}, None),
        ("service.create", {"TaskTemplate": {"ContainerSpec": {"Image": "a"}, "Networks": [{"Target": "payments-ov"}]},
                            "EndpointSpec": {"Ports": [{"TargetPort": 80, "PublishMode": "host"}]}}, None),
        ("network.connect", {"Container": "c1"}, "payments-net"),
        ("network.create", {"Name": "payments-net", "Driver": "bridge", "Options": {
            "com.docker.network.bridge.enable_icc": "false", "com.docker.network.driver.mtu": "1400"},
            "IPAM": {"Driver": "default", "Config": [], "Options": {}}, "Internal": True}, None),
        ("network.create", {"Name": "payments-ov", "Driver": "overlay", "Attachable": True,
                            "Options": {"encrypted": ""}}, None),
    ],
)  # fmt: skip
def test_ordinary_networking_passes(kind: str, body: Any, ref: str | None) -> None:
    assert denied(kind, body, Facts(host_networks=(HOST_NET_ID,)), object_ref=ref) == []


@pytest.mark.parametrize(
    ("body", "rules"),
    [
        ({"Name": "n", "Driver": "macvlan", "Options": {"parent": "eth0"}}, ["network.driver", "network.driver-option"]),
        ({"Name": "n", "Driver": "ipvlan"}, ["network.driver"]),
        ({"Name": "n", "Options": {"com.docker.network.bridge.name": "docker0"}}, ["network.driver-option"]),
        ({"Name": "n", "IPAM": {"Driver": "some-plugin"}}, ["network.driver"]),
        ({"Name": "n", "ConfigFrom": {"Network": "lan-config"}}, ["network.driver"]),
        ({"Name": "n", "Driver": "overlay", "Ingress": True}, ["network.ingress"]),
    ],
)  # fmt: skip
def test_network_create_allows_only_engine_internal_drivers_and_options(body: Any, rules: list[str]) -> None:
    assert denied("network.create", body) == rules


POOLS = (
    "apiVersion: moorage.dev/v1\nkind: Policy\nmetadata: {name: p}\nspec:\n  packs: [PACK]\n"
    "  network: {subnets: ['10.200.0.0/16', 'fd00:1::/64']}\n"
)


def pools_set(tmp_path: Path, pack: str = "baseline") -> Any:
    (tmp_path / "p.yaml").write_text(POOLS.replace("PACK", pack))
    return load_folder(tmp_path)


def ipam(**entry: Any) -> dict[str, Any]:
    return {"Name": "n", "Driver": "bridge", "IPAM": {"Driver": "default", "Config": [entry]}}


# Explicit IPAM settings, each outside any pool a policy could sensibly declare: the
# host's DNS server as a /32 (libnetwork skips its host-route check for a chosen pool).
HOSTILE_IPAM = [
    {"Subnet": "192.168.1.1/32"},
    {"Subnet": "169.254.169.254/32"},
    {"Subnet": "10.0.0.0/8"},  # wider than the declared pool
    {"Subnet": "10.201.0.0/24"},
    {"Subnet": "fd00:2::/64"},
    {"Subnet": "fd00::/16"},  # wider than the declared IPv6 pool
    {"IPRange": "10.0.0.0/24"},
    {"Gateway": "127.0.0.1"},
    {"AuxiliaryAddresses": {"dns": "192.168.1.1"}},
    # spellings the engine and Python might read apart: refused unread
    {"Subnet": "::ffff:10.200.1.0/120"},
    {"Subnet": "010.200.1.0/24"},
    {"Subnet": "10.200.1.0/255.255.255.0"},
    {"Subnet": "fd00:1::%eth0/64"},
    {"Subnet": " 10.200.1.0/24"},
    {"Gateway": "::ffff:10.200.0.1"},
    {"subnet": "192.168.1.1/32"},  # a hand-made body: keys fold as the engine folds them
]


@pytest.mark.parametrize("entry", HOSTILE_IPAM)
def test_explicit_ipam_is_refused_without_declared_pools(entry: dict[str, Any]) -> None:
    assert denied("network.create", ipam(**entry)) == ["network.subnet"]
    assert denied("network.create", ipam(**entry), pset=RESTRICTED) == ["network.subnet"]
    assert denied("network.create", {**ipam(**entry), "Driver": "overlay"}) == ["network.subnet"]


@pytest.mark.parametrize("entry", HOSTILE_IPAM)
def test_explicit_ipam_outside_the_declared_pools_is_refused(entry: dict[str, Any], tmp_path: Path) -> None:
    assert denied("network.create", ipam(**entry), pset=pools_set(tmp_path)) == ["network.subnet"]


@pytest.mark.parametrize(
    "entry",
    [
        {"Subnet": "10.200.1.0/24"},
        {"Subnet": "10.200.1.7/24"},  # host bits set: the engine uses the network, 10.200.1.0/24
        {"Subnet": "10.200.0.0/16"},
        {"Subnet": "10.200.1.0/24", "IPRange": "10.200.1.128/25", "Gateway": "10.200.1.1",
         "AuxiliaryAddresses": {"router": "10.200.1.2", "dns": "10.200.1.3"}},
        {"Subnet": "fd00:1::/80", "Gateway": "fd00:1::1"},
        {"Subnet": "", "IPRange": "", "Gateway": "", "AuxiliaryAddresses": None},  # nothing set
    ],
)  # fmt: skip
def test_explicit_ipam_inside_the_declared_pools_passes(entry: dict[str, Any], tmp_path: Path) -> None:
    assert denied("network.create", ipam(**entry), pset=pools_set(tmp_path)) == []
    assert denied("network.create", ipam(**entry), pset=pools_set(tmp_path, "restricted")) == []


def test_each_ipam_value_outside_the_pools_is_named(tmp_path: Path) -> None:
    body = {"Name": "n", "IPAM": {"Config": [
        {"Subnet": "10.200.1.0/24", "Gateway": "10.200.1.1"},
        {"Subnet": "192.168.1.0/24", "IPRange": "192.168.1.0/25", "Gateway": "192.168.1.1",
         "AuxiliaryAddresses": {"dns": "192.168.1.53", "ok": "10.200.1.9"}},
    ]}}  # fmt: skip
    found = check_operation("network.create", body, {}, None, subnets=("10.200.0.0/16",))
    # aux "ok" lies in a declared pool (the engine itself refuses it: not in its subnet)
    assert [f.path for f in found] == [
        "IPAM.Config[1].Subnet",
        "IPAM.Config[1].IPRange",
        "IPAM.Config[1].Gateway",
        "IPAM.Config[1].AuxiliaryAddresses.dns",
    ]
    assert all(f.rule == "network.subnet" and "10.200.0.0/16" in f.message for f in found)
    none_declared = check_operation("network.create", body, {}, None)  # the default: 172.16.0.0/12
    assert len(none_declared) == 7
    assert "omit --subnet" in none_declared[0].fix and "172.16.0.0/12" in none_declared[0].fix
    assert check_operation("network.create", {"Name": "n", "IPAM": {"Config": [
        {"Subnet": "172.31.7.0/24", "Gateway": "172.31.7.1"}]}}, {}, None) == []  # fmt: skip


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("10.200.0.1/16", "spec.network.subnets[1]: not a CIDR pool: '10.200.0.1/16' has host bits set"),
        ("10.200.0.0", "spec.network.subnets[1]: not a CIDR block: '10.200.0.0'"),
        ("10.0.0.0/33", "spec.network.subnets[1]: not a CIDR block"),
        ("::ffff:10.0.0.0/104", "spec.network.subnets[1]: not a CIDR block"),
        ("eth0", "spec.network.subnets[1]: not a CIDR block"),
    ],
)
def test_declared_pools_are_validated_at_load(value: str, error: str, tmp_path: Path) -> None:
    from moorage.policy.documents import PolicyError

    (tmp_path / "p.yaml").write_text(
        "apiVersion: moorage.dev/v1\nkind: Policy\nmetadata: {name: p}\nspec:\n  packs: [baseline]\n"
        f"  network:\n    subnets:\n      - 10.200.0.0/16\n      - '{value}'\n"
    )
    with pytest.raises(PolicyError) as exc:
        load_folder(tmp_path)
    assert str(exc.value).startswith(f"{tmp_path / 'p.yaml'}:9: {error}"), str(exc.value)


def test_service_ports_in_host_mode_follow_the_publish_rules(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        "apiVersion: moorage.dev/v1\nkind: Policy\nmetadata: {name: p}\nspec:\n  packs: [baseline]\n"
        "  network: {publish: {hostIPs: [127.0.0.1], ports: ['8000-8999']}}\n"
    )
    pset = load_folder(tmp_path)
    spec = {"TaskTemplate": {"ContainerSpec": {"Image": "a"}}}
    host_mode = {
        **spec,
        "EndpointSpec": {"Ports": [{"TargetPort": 80, "PublishedPort": 80, "PublishMode": "host"}]},
    }
    assert denied("service.create", host_mode, pset=pset) == ["network.publish-ip", "network.publish-port"]
    # no PublishedPort: the node picks one, still on every address
    random = {**spec, "EndpointSpec": {"Ports": [{"TargetPort": 80, "PublishMode": "host"}]}}
    assert denied("service.create", random, pset=pset) == ["network.publish-ip"]


# ------------------------------------------------------------------ builds
@pytest.mark.parametrize(
    "query",
    [
        {"networkmode": ["host"]},
        {"networkmode": ["container:0123abcd"]},
        {"networkmode": ["Host"]},
        {"networkmode": ["payments-net"]},
        {"cgroupparent": ["/"]},
        {"isolation": ["hyperv"]},
        {"securityopt": ["seccomp=unconfined"]},
    ],
)
def test_build_parameters_that_reach_the_host_are_refused(query: dict[str, list[str]]) -> None:
    # One finding per parameter: the runtime view's, or else the operation check's
    # (a parameter both report is named once).
    rules = denied("image.build", None, query={"t": ["app:1"], **query})
    assert len(rules) == 1 and rules[0].split(".")[0] in ("build", "runtime"), rules


@pytest.mark.parametrize("mode", ["", "default", "bridge", "none"])
def test_ordinary_builds_pass(mode: str) -> None:
    query = {"t": ["app:1", "app:latest"], "networkmode": [mode], "extrahosts": ["db:10.0.0.5"],
             "shmsize": ["67108864"], "ulimits": ['[{"Name":"nofile","Hard":1024,"Soft":1024}]'],
             "memory": ["268435456"], "buildargs": ['{"A":"1"}'], "labels": ['{"l":"v"}'], "isolation": ["default"],
             "cgroupparent": [""]}  # fmt: skip
    assert denied("image.build", None, query=query) == []


@pytest.mark.parametrize(
    "remote",
    [
        ["http://127.0.0.1:8080/context.tar"],
        ["http://169.254.169.254/latest/meta-data/"],
        ["https://127.0.0.1/repo.git#main:sub"],
        ["git://127.0.0.1/repo"],
        ["git@127.0.0.1:team/repo"],
        ["127.0.0.1:8080/context.tar"],
        ["Client-Session"],  # the engine compares exactly: not the session
        ["http://127.0.0.1:9/x", ""],  # the engine reads the first value
    ],
)
def test_a_build_context_the_engine_would_fetch_is_refused(remote: list[str]) -> None:
    query = {"t": ["app:1"], "remote": remote}
    assert denied("image.build", None, query=query) == ["build.remote"]
    assert denied("image.build", None, query=query, pset=RESTRICTED) == ["build.remote"]
    found = check_operation("image.build", None, query, None)
    assert "client" in found[0].fix and found[0].path == "remote"


@pytest.mark.parametrize("remote", [[""], ["client-session"], ["", "http://127.0.0.1:9/x"], []])
def test_a_build_context_from_the_client_passes(remote: list[str]) -> None:
    query = {"t": ["app:1"], "remote": remote, "session": ["s1"], "version": ["2"]}
    assert denied("image.build", None, query=query) == []


def test_buildkit_grpc_is_refused_and_its_session_is_not() -> None:
    assert denied("build.grpc", None) == ["build.grpc"]
    assert denied("build.session", None) == []


# ------------------------------------------------------------------ images
@pytest.mark.parametrize(
    "source",
    ["http://127.0.0.1:8080/rootfs.tar", "http://169.254.169.254/latest/user-data", "127.0.0.1:9/x.tar",
     "file:///etc/shadow", "--", " -"],
)  # fmt: skip
def test_an_import_the_engine_would_download_is_refused(source: str) -> None:
    query = {"fromSrc": [source], "repo": ["app"], "tag": ["1"]}
    assert denied("image.pull", None, query=query) == ["images.import-url"]
    assert denied("image.pull", None, query=query, pset=RESTRICTED) == ["images.import-url"]
    # the engine ignores fromSrc when fromImage is set; refused all the same
    assert denied("image.pull", None, query={"fromImage": ["busybox"], "fromSrc": [source]}) == [
        "images.import-url"
    ]


@pytest.mark.parametrize(
    "query",
    [
        {"fromImage": ["127.0.0.1:5000/busybox"], "tag": ["1"]},
        {"fromSrc": ["-"], "repo": ["app"], "tag": ["1"], "changes": ['CMD ["sh"]']},
        {"fromSrc": ["-", "http://127.0.0.1:9/x"], "repo": ["app"]},  # the engine reads the first
        {"fromSrc": [""], "fromImage": ["busybox"]},
    ],
)
def test_a_pull_or_an_import_from_the_body_passes(query: dict[str, list[str]]) -> None:
    assert denied("image.pull", None, query=query) == []


# ---------------------------------------------------------- container update
def test_update_may_change_limits_and_restart_policy_only() -> None:
    # what `docker update --memory 1g --restart always` sends: every field, most at zero
    cli = {"CpuShares": 0, "Memory": 1 << 30, "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": None,
           "Devices": None, "DeviceCgroupRules": None, "DeviceRequests": None, "MemorySwappiness": None,
           "OomKillDisable": None, "PidsLimit": None, "Ulimits": None, "CpuCount": 0,
           "RestartPolicy": {"Name": "always", "MaximumRetryCount": 0}}  # fmt: skip
    assert denied("container.update", cli, object_ref="c1") == []
    for key, value in [("Devices", [{"PathOnHost": "/dev/sda", "PathInContainer": "/dev/sda"}]),
                       ("CgroupParent", "/"), ("DeviceCgroupRules", ["b 8:* rwm"]),
                       ("Ulimits", [{"Name": "nofile", "Hard": 1, "Soft": 1}]), ("Privileged", True)]:  # fmt: skip
        assert denied("container.update", {**cli, key: value}, object_ref="c1") == ["runtime.update-field"], (
            key
        )


# ----------------------------------------------------------------- plugins
PRIVS = [
    {"Name": "network", "Description": "", "Value": ["host"]},
    {"Name": "mount", "Description": "", "Value": ["/"]},
    {"Name": "device", "Description": "", "Value": ["/dev/sda"]},
    {"Name": "capabilities", "Description": "", "Value": ["CAP_SYS_ADMIN"]},
]


@pytest.mark.parametrize("kind", ["plugin.pull", "plugin.upgrade"])
def test_plugin_installs_grant_nothing_outside_the_allow_list(kind: str, tmp_path: Path) -> None:
    query = {"remote": ["127.0.0.1:5000/vol:1"]}
    assert denied(kind, PRIVS, query=query, object_ref="vol") == ["plugin.privilege"] * 4
    assert denied(kind, [], query=query, object_ref="vol") == []
    assert denied(kind, None, query=query, object_ref="vol") == []
    (tmp_path / "p.yaml").write_text(
        "apiVersion: moorage.dev/v1\nkind: Policy\nmetadata: {name: p}\nspec:\n  packs: [baseline]\n"
        "  plugins: {privileges: ['network=host', 'capabilities=CAP_SYS_ADMIN']}\n"
    )
    allowing = load_folder(tmp_path)
    assert denied(kind, PRIVS, pset=allowing, query=query, object_ref="vol") == ["plugin.privilege"] * 2
    assert denied(kind, [PRIVS[0], PRIVS[3]], pset=allowing, query=query, object_ref="vol") == []


PLUGIN_CONFIG = {
    "Env": [{"Name": "DEBUG", "Settable": ["value"]}],
    "Mounts": [{"Name": "state", "Source": "/var/lib/vol", "Settable": ["source"]}],
    "Linux": {"Devices": [{"Name": "disk", "Path": "/dev/null", "Settable": ["path"]}], "Capabilities": []},
    "Args": {"Name": "args", "Settable": ["value"]},
    "Network": {"Type": "host"},
}


def test_plugin_set_may_not_repoint_mounts_or_devices() -> None:
    assert denied("plugin.set", ["DEBUG.value=1"], object_ref="vol") == []
    assert denied("plugin.set", ["state.source=/"], object_ref="vol") == ["plugin.set"]
    assert denied("plugin.set", ["disk.path=/dev/sda"], object_ref="vol") == ["plugin.set"]
    # without the plugin's config, NAME=VALUE might be a mount: refused
    assert denied("plugin.set", ["DEBUG=1"], object_ref="vol") == ["plugin.set"]
    known = Facts(plugin_config=PLUGIN_CONFIG)
    assert denied("plugin.set", ["DEBUG=1", "args=-v"], known, object_ref="vol") == []
    assert denied("plugin.set", ["state=/"], known, object_ref="vol") == ["plugin.set"]
    assert denied("plugin.set", ["disk=/dev/sda"], known, object_ref="vol") == ["plugin.set"]


def test_plugin_create_is_refused_and_enable_checks_the_config_when_known() -> None:
    assert denied("plugin.create", None, query={"name": ["x"]}) == ["plugin.create"]
    assert denied("plugin.enable", None, object_ref="vol") == []
    rules = denied("plugin.enable", None, Facts(plugin_config=PLUGIN_CONFIG), object_ref="vol")
    assert rules == ["plugin.privilege"] * 3  # network host, the mount, the device
    plain = {"Network": {"Type": "bridge"}, "Linux": {"Capabilities": []}}
    assert denied("plugin.enable", None, Facts(plugin_config=plain), object_ref="vol") == []


# ------------------------------------------------------------ swarm, nodes
def test_node_labels_under_moorage_are_moorage_s() -> None:
    spec = {"Role": "worker", "Availability": "active", "Labels": {"zone": "a"}}
    assert denied("node.update", spec, object_ref="n1") == []
    forged = {**spec, "Labels": {"zone": "a", "io.moorage.attested.pci": "true"}}
    assert denied("node.update", forged, object_ref="n1") == ["node.labels"]
    assert denied("node.update", {**spec, "Labels": {"IO.Moorage.x": "1"}}, object_ref="n1") == [
        "node.labels"
    ]
    # carried across an update unchanged: allowed; changed: refused
    current = Facts(node_labels={"io.moorage.attested.pci": "true"})
    assert denied("node.update", forged, current, object_ref="n1") == []
    changed = {**spec, "Labels": {"io.moorage.attested.pci": "yes"}}
    assert denied("node.update", changed, current, object_ref="n1") == ["node.labels"]


def test_swarm_operations() -> None:
    assert denied("swarm.init", {"ListenAddr": "127.0.0.1:2377", "Spec": {"Name": "default"}}) == []
    assert denied("swarm.update", {"Name": "default", "CAConfig": {"NodeCertExpiry": 7776000000000000}}) == []
    assert denied("swarm.update", {"CAConfig": {"SigningCACert": "PEM", "SigningCAKey": "KEY"}}) == [
        "swarm.ca"
    ]
    assert denied(
        "swarm.init", {"Spec": {"CAConfig": {"ExternalCAs": [{"URL": "https://127.0.0.1:9"}]}}}
    ) == ["swarm.ca"]
    assert denied("swarm.join", {"RemoteAddrs": ["127.0.0.1:2377"], "JoinToken": "t"}) == ["swarm.join"]
    assert denied("swarm.leave", None) == []


def test_admission_is_told_which_engine_facts_a_decision_compares_against() -> None:
    from moorage.policy.needs import fact_needs

    def needs(kind: str) -> frozenset[str]:
        return fact_needs(BASELINE, Request(kind, {}, **DEV))

    assert needs("service.create") == {"host_networks"} and needs("network.connect") == {"host_networks"}
    assert needs("node.update") == {"node_labels"} and needs("plugin.set") == {"plugin_config"}
    assert needs("container.start") == frozenset()
    assert fact_needs(builtin_set(None, None), Request("node.update", {}, **DEV)) == frozenset()


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("container.create", {"Image": "x", "NetworkingConfig": {"EndpointsConfig": {
            "app-net": {"DriverOpts": {"com.docker.network.endpoint.sysctls": "net.ipv4.conf.IFNAME.forwarding=1"}}}}}),
        ("service.create", {"TaskTemplate": {"ContainerSpec": {"Image": "x"},
                                             "Networks": [{"Target": "app-net", "DriverOpts": {"a": "b"}}]}}),
        ("network.connect", {"Container": "c", "EndpointConfig": {"DriverOpts": {"a": "b"}}}),
    ],
)  # fmt: skip
def test_endpoint_driver_options_are_refused(kind: str, body: dict[str, Any]) -> None:
    found = check_operation(kind, body, {}, "app-net", frozenset(), OperationFacts())
    assert any(f.rule == "network.driver-option" and "DriverOpts" in f.path for f in found)
