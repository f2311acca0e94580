"""evaluate(): families, scope, modes, mutations, exceptions, CEL and Rego. Pure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from moorage.engine_api.reference import parse_image_ref
from moorage.policy.decision import ExceptionGrant, Facts, Request, evaluate
from moorage.policy.loader import builtin_set, load_folder
from moorage.policy.rules.resources import Usage


def policy(tmp_path: Path, spec: str, name: str = "p", extra: dict[str, str] | None = None) -> Any:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / f"{name}.yaml").write_text(
        f"apiVersion: moorage.dev/v1\nkind: Policy\nmetadata: {{name: {name}}}\nspec:\n{spec}"
    )
    for fname, text in (extra or {}).items():
        (tmp_path / fname).write_text(text)
    return load_folder(tmp_path)


def create(host: dict[str, Any] | None = None, **body: Any) -> dict[str, Any]:
    return {"Image": "busybox:1.36", **body, "HostConfig": host or {}}


def rules(decision: Any) -> list[str]:
    return sorted(v.finding.rule for v in decision.denials)


ALICE = {"user": "alice", "teams": ("payments",)}


def test_scope_by_team_user_and_label(tmp_path: Path) -> None:
    pset = policy(tmp_path, "  scope: {teams: [payments], labels: {tier: prod}}\n  packs: [baseline]\n")
    bad = create({"Privileged": True}, Labels={"tier": "prod"})
    assert rules(evaluate(pset, Request("container.create", bad, **ALICE), Facts())) == ["runtime.privileged"]
    bob = Request("container.create", bad, user="bob", teams=("search",))
    assert evaluate(pset, bob, Facts()).allowed
    unlabelled = create({"Privileged": True})
    assert evaluate(pset, Request("container.create", unlabelled, **ALICE), Facts()).allowed


def test_audit_mode_warns_and_does_not_repeat_denials() -> None:
    pset = builtin_set("baseline", "restricted")
    d = evaluate(pset, Request("container.create", create({"Privileged": True}), **ALICE), Facts())
    assert rules(d) == ["runtime.privileged"]
    assert "runtime.privileged" not in [v.finding.rule for v in d.warnings]
    assert "runtime.non-root" in [v.finding.rule for v in d.warnings]
    assert "moorage exception request --rule runtime.privileged --team payments" in d.reason("payments")


def test_resources_and_quotas(tmp_path: Path) -> None:
    pset = policy(
        tmp_path,
        "  resources: {require: [memory, pids], max: {memory: 1g, cpus: 2}}\n"
        "  quotas: {containers: 5, memory: 2g, replicas: 4}\n",
    )
    d = evaluate(
        pset, Request("container.create", create({"NanoCpus": 4_000_000_000}), **ALICE), Facts(usage=Usage())
    )
    assert rules(d) == ["resources.cpus-max", "resources.memory-required", "resources.pids-required"]
    ok = create({"Memory": 1 << 30, "PidsLimit": 100})
    assert evaluate(
        pset, Request("container.create", ok, **ALICE), Facts(usage=Usage(containers=4, memory=1 << 30))
    ).allowed
    d = evaluate(
        pset, Request("container.create", ok, **ALICE), Facts(usage=Usage(containers=5, memory=1 << 30 | 1))
    )
    assert rules(d) == ["quota.containers", "quota.memory"]
    # quotas fail closed when the team's use could not be counted
    assert rules(evaluate(pset, Request("container.create", ok, **ALICE), Facts(usage=None))) == [
        "quota.unknown"
    ]
    svc = {
        "Name": "s",
        "Mode": {"Replicated": {"Replicas": 3}},
        "TaskTemplate": {
            "ContainerSpec": {"Image": "busybox:1"},
            "Resources": {"Limits": {"MemoryBytes": 1 << 20, "Pids": 10}},
        },
    }
    assert rules(evaluate(pset, Request("service.create", svc, **ALICE), Facts(usage=Usage(replicas=2)))) == [
        "quota.replicas"
    ]
    # an update replaces the service's own replicas; scaling down is always allowed
    assert evaluate(
        pset, Request("service.update", svc, **ALICE), Facts(usage=Usage(replicas=4), replaced_replicas=3)
    ).allowed
    svc["Mode"]["Replicated"]["Replicas"] = 1
    assert evaluate(
        pset, Request("service.update", svc, **ALICE), Facts(usage=Usage(replicas=9), replaced_replicas=3)
    ).allowed


def test_images_family_across_endpoints(tmp_path: Path) -> None:
    pset = policy(
        tmp_path, "  images: {registries: ['127.0.0.1:*', docker.io/library], forbidLatest: true}\n"
    )
    for kind, body, query, ref, want in [
        ("container.create", create(Image="evil.example/x:1"), {}, None, ["images.registry"]),
        ("container.create", create(Image="busybox"), {}, None, ["images.latest"]),
        ("container.create", create(Image="127.0.0.1:5000/team/app:2"), {}, None, []),
        ("image.pull", None, {"fromImage": ["evil.example/x"], "tag": ["1"]}, None, ["images.registry"]),
        ("image.pull", None, {"fromImage": ["busybox"], "tag": ["latest"]}, None, ["images.latest"]),
        ("image.push", None, {"tag": ["1"]}, "other.example/me/app", ["images.registry"]),
        ("image.tag", None, {"repo": ["ghcr.io/me/app"], "tag": ["1"]}, "busybox:1", ["images.registry"]),
        (
            "service.create",
            {"TaskTemplate": {"ContainerSpec": {"Image": "quay.io/x/y:1"}}},
            {},
            None,
            ["images.registry"],
        ),
        ("container.create", create(Image="sha256:" + "a" * 64), {}, None, []),
    ]:
        d = evaluate(pset, Request(kind, body, query=query, object_ref=ref, **ALICE), Facts())
        assert rules(d) == want, (kind, body, query)
    pinned = policy(tmp_path / "d", "  images: {requireDigest: true}\n")
    assert rules(evaluate(pinned, Request("container.create", create(), **ALICE), Facts())) == [
        "images.digest"
    ]
    assert evaluate(
        pinned, Request("container.create", create(Image="busybox@sha256:" + "b" * 64), **ALICE), Facts()
    ).allowed


def test_image_references_parse_like_docker() -> None:
    assert parse_image_ref("busybox").name == "docker.io/library/busybox"
    r = parse_image_ref("127.0.0.1:5000/a/b:1@sha256:" + "c" * 64)
    assert (r.registry, r.repository, r.tag, r.digest) == ("127.0.0.1:5000", "a/b", "1", "sha256:" + "c" * 64)
    assert parse_image_ref("localhost/x").registry == "localhost"
    assert parse_image_ref("me/app:2").name == "docker.io/me/app"


def test_network_family(tmp_path: Path) -> None:
    pset = policy(
        tmp_path,
        "  network:\n    hostNetwork: false\n    create: ['{team}-*']\n    join: ['{team}-*']\n"
        "    publish: {hostIPs: [127.0.0.1], ports: ['8000-8999']}\n",
    )
    cases = [
        ("container.create", create({"NetworkMode": "host"}), None, ["network.host"]),
        ("container.create", create({"NetworkMode": "search-net"}), None, ["network.join"]),
        (
            "container.create",
            create({"PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}}),
            None,
            ["network.publish-ip"],
        ),
        (
            "container.create",
            create({"PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "80"}]}}),
            None,
            ["network.publish-port"],
        ),
        ("container.create", create({"PublishAllPorts": True}), None, ["network.publish-ip"]),
        (
            "container.create",
            create(
                {
                    "NetworkMode": "payments-net",
                    "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]},
                }
            ),
            None,
            [],
        ),
        ("network.create", {"Name": "search-x"}, None, ["network.create"]),
        ("network.create", {"Name": "payments-x"}, None, []),
        ("network.connect", {"Container": "c"}, "host", ["network.host"]),
        ("network.connect", {"Container": "c"}, "search-net", ["network.join"]),
        (
            "service.create",
            {"EndpointSpec": {"Ports": [{"PublishedPort": 8080, "TargetPort": 80}]}},
            None,
            ["network.publish-ip"],
        ),
        ("service.create", {"TaskTemplate": {"Networks": [{"Target": "host"}]}}, None, ["network.host"]),
    ]
    for kind, body, ref, want in cases:
        assert rules(evaluate(pset, Request(kind, body, object_ref=ref, **ALICE), Facts())) == want, body


def test_placement_adds_constraints_and_refuses_dropping_them(tmp_path: Path) -> None:
    pset = policy(
        tmp_path,
        "  placement:\n    classes: {pci: ['node.labels.io.moorage.attested.pci==true']}\n"
        "    teams: {payments: pci}\n",
    )
    svc = {"Name": "pay", "TaskTemplate": {"ContainerSpec": {"Image": "busybox:1"}}}
    d = evaluate(pset, Request("service.create", svc, **ALICE), Facts())
    assert d.allowed and d.body["TaskTemplate"]["Placement"]["Constraints"] == [
        "node.labels.io.moorage.attested.pci==true"
    ]
    assert "class pci" in d.mutations[0]
    # an update without the constraint, or one contradicting it, is refused
    assert rules(evaluate(pset, Request("service.update", svc, **ALICE), Facts())) == ["placement.class"]
    against = {
        "TaskTemplate": {
            "ContainerSpec": {"Image": "b"},
            "Placement": {"Constraints": ["node.labels.io.moorage.attested.pci != true"]},
        }
    }
    assert rules(evaluate(pset, Request("service.create", against, **ALICE), Facts())) == ["placement.class"]
    # the class label asks for a class; other teams' services without one are untouched
    labelled = {"Labels": {"moorage.class": "pci"}, "TaskTemplate": {"ContainerSpec": {"Image": "b"}}}
    d = evaluate(pset, Request("service.create", labelled, user="bob", teams=("search",)), Facts())
    assert d.body["TaskTemplate"]["Placement"]["Constraints"]
    assert evaluate(pset, Request("service.create", svc, user="bob", teams=("search",)), Facts()).body is None


def test_mutations_fix_what_they_can_and_never_widen(tmp_path: Path) -> None:
    pset = policy(
        tmp_path,
        "  packs: [restricted]\n  mutations: {noNewPrivileges: true, pidsLimit: 256, "
        "memory: 256m, capDrop: [ALL], readOnlyRootfs: true}\n",
    )
    body = create({"PidsLimit": 100, "securityopt": ["label=type:container_t"]}, User="1000")
    d = evaluate(pset, Request("container.create", body, **ALICE), Facts())
    assert d.allowed, d.reason()
    host = d.body["HostConfig"]
    assert host["PidsLimit"] == 100  # the caller's own, tighter value is kept
    assert host["Memory"] == 256 << 20 and host["CapDrop"] == ["ALL"] and host["ReadonlyRootfs"] is True
    assert host["securityopt"] == [
        "label=type:container_t",
        "no-new-privileges:true",
    ]  # same key, any spelling
    assert sorted(v.finding.rule for v in d.fixed) == [
        "runtime.capabilities.drop-all",
        "runtime.no-new-privileges",
        "runtime.read-only-rootfs",
    ]
    assert body["HostConfig"] == {
        "PidsLimit": 100,
        "securityopt": ["label=type:container_t"],
    }  # input untouched
    # what mutations can't cure is still denied
    d = evaluate(
        pset, Request("container.create", create({"Privileged": True}, User="1000"), **ALICE), Facts()
    )
    assert rules(d) == ["runtime.privileged"] and d.body is None


def test_exceptions_cover_exactly_their_scope_until_they_expire() -> None:
    pset = builtin_set("baseline", None)
    bad = create({"CapAdd": ["SYS_ADMIN"]})
    grant = ExceptionGrant("EXC-1", "runtime.capabilities", expires=100.0, team="payments")
    by_image = ExceptionGrant("EXC-2", "runtime.*", expires=100.0, image="sha256:" + "d" * 64)
    req = Request("container.create", bad, **ALICE)
    d = evaluate(pset, req, Facts(now=50, exceptions=(grant,)))
    assert d.allowed and d.warnings[0].excepted_by == "EXC-1"
    assert not evaluate(pset, req, Facts(now=100, exceptions=(grant,))).allowed  # expired: at once
    other = Request("container.create", bad, user="bob", teams=("search",))
    assert not evaluate(pset, other, Facts(now=50, exceptions=(grant,))).allowed
    priv = Request("container.create", create({"Privileged": True}), **ALICE)
    assert not evaluate(pset, priv, Facts(now=50, exceptions=(grant,))).allowed  # another rule
    assert evaluate(
        pset, other, Facts(now=50, exceptions=(by_image,), images=("sha256:" + "d" * 64,))
    ).allowed
    assert not evaluate(
        pset, other, Facts(now=50, exceptions=(by_image,), images=("sha256:" + "e" * 64,))
    ).allowed


def test_cel_rules_and_fail_closed(tmp_path: Path) -> None:
    pset = policy(
        tmp_path,
        "  custom:\n"
        "    - id: no-debug-env\n      expr: 'has(request.Env) && request.Env.exists(e, e.startsWith(\"DEBUG=\"))'\n"
        "      message: debug builds don't run here\n      kinds: [container.create]\n"
        "    - id: strict\n      expr: 'request.Labels.owner == \"x\"'\n      message: m\n      kinds: [volume.create]\n",
    )
    assert rules(evaluate(pset, Request("container.create", create(Env=["DEBUG=1"]), **ALICE), Facts())) == [
        "custom.no-debug-env"
    ]
    assert evaluate(pset, Request("container.create", create(Env=["A=1"]), **ALICE), Facts()).allowed
    d = evaluate(pset, Request("volume.create", {"Name": "v"}, **ALICE), Facts())
    assert rules(d) == ["custom.strict"] and "fails closed" in d.denials[0].finding.message
    # celpy raises TypeError for ``exists`` over a null list (docker CLI 28 sends
    # "Env": null): still a refusal that says why, never an exception out of evaluate.
    d = evaluate(pset, Request("container.create", create(Env=None), **ALICE), Facts())
    assert rules(d) == ["custom.no-debug-env"] and "fails closed" in d.denials[0].finding.message


REGO = """package docker.authz

default allow := false

allow if {
    not privileged
    input.User != "mallory"
}

privileged if input.Body.HostConfig.Privileged == true
"""


def test_rego_runs_opa_docker_authz_policies_unchanged(tmp_path: Path) -> None:
    pset = policy(tmp_path, "  rego:\n    - {id: authz, file: authz.rego}\n", extra={"authz.rego": REGO})
    assert evaluate(pset, Request("container.create", create(), **ALICE), Facts()).allowed
    assert rules(
        evaluate(pset, Request("container.create", create({"Privileged": True}), **ALICE), Facts())
    ) == ["rego.authz"]
    assert rules(evaluate(pset, Request("container.create", create(), user="mallory"), Facts())) == [
        "rego.authz"
    ]


def test_a_broken_rego_file_is_a_load_error(tmp_path: Path) -> None:
    from moorage.policy.documents import PolicyError

    with pytest.raises((PolicyError, ValueError), match="authz"):
        policy(
            tmp_path,
            "  rego:\n    - {id: authz, file: authz.rego}\n",
            extra={"authz.rego": "package x\nallow if {"},
        )


def test_other_endpoints_to_the_same_effect(tmp_path: Path) -> None:
    pset = policy(
        tmp_path, "  packs: [baseline]\n  resources: {require: [memory], max: {memory: 1g, pids: 500}}\n"
    )
    build = Request("image.build", None, query={"networkmode": ["host"], "t": ["x:1"]}, **ALICE)
    assert rules(evaluate(pset, build, Facts())) == ["runtime.host-namespace"]
    assert evaluate(pset, Request("image.build", None, query={"t": ["x:1"]}, **ALICE), Facts()).allowed
    # `docker update` can't lift a limit past the maximum, and needn't repeat the others
    update = Request("container.update", {"Memory": 4 << 30, "PidsLimit": 0}, object_ref="c1", **ALICE)
    assert rules(evaluate(pset, update, Facts())) == ["resources.memory-max"]
    assert evaluate(
        pset, Request("container.update", {"CpuShares": 512}, object_ref="c1", **ALICE), Facts()
    ).allowed
