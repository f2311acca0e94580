"""The supply-chain map: graph shape, tenancy (a developer's map never holds another
team's objects), the vulnerable-workloads query, and the JSON, DOT and CycloneDX exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moorage.admission.running import Snapshot, build_snapshot
from moorage.admission.tenancy import OWNER, TEAM
from moorage.console.map import (
    KINDS,
    SupplyMap,
    build_map,
    exposures,
    to_cyclonedx,
    to_dot,
    to_json,
    vulnerable_workloads,
)
from moorage.images.catalogers.interface import Inventory, Package
from moorage.images.scanner import Report
from moorage.images.vulns.interface import Finding

REG = "127.0.0.1:5000"
DEBIAN, PAY, NGINX, INDEXER = ("sha256:" + c * 64 for c in "abcd")
PAY_DIGEST = "sha256:" + "e" * 64


# -- synthetic engine answers ----------------------------------------------------------


def image(
    iid: str, tags: list[str], layers: list[str], digests: tuple[str, ...] = (), **labels: str
) -> dict[str, Any]:
    """An image inspect document."""
    return {"Id": iid, "RepoTags": tags, "RepoDigests": list(digests), "Size": 1000,
            "RootFS": {"Layers": layers}, "Config": {"Labels": labels}}  # fmt: skip


def container(cid: str, name: str, ref: str, iid: str, team: str, nets: list[str], ports: dict[str, str] | None = None,
              state: str = "running", service: str = "") -> dict[str, Any]:  # fmt: skip
    """A container inspect document, owned by ``team`` (as the gateway stamps it)."""
    labels = {TEAM: team, OWNER: team[:3] + "-dev"} if team else {}
    if service:
        labels |= {
            "com.docker.swarm.service.id": service,
            "com.docker.swarm.service.name": name.split(".")[0],
        }
    bindings = {f"{t}/tcp": [{"HostIp": "", "HostPort": h}] for h, t in (ports or {}).items()}
    return {"Id": cid, "Name": "/" + name, "Image": iid, "Config": {"Image": ref, "Labels": labels},
            "HostConfig": {"PortBindings": bindings}, "State": {"Status": state},
            "NetworkSettings": {"Networks": {n: {} for n in nets}}}  # fmt: skip


def service(sid: str, name: str, ref: str, team: str, nets: list[str], published: int = 0, mode: str = "ingress") -> dict[str, Any]:  # fmt: skip
    """A ``/services`` entry, owned by ``team``."""
    ports = (
        [{"TargetPort": 80, "PublishedPort": published, "Protocol": "tcp", "PublishMode": mode}]
        if published
        else []
    )
    return {"ID": sid, "Spec": {"Name": name, "Labels": {TEAM: team, OWNER: team[:3] + "-dev"},
                                "TaskTemplate": {"ContainerSpec": {"Image": ref},
                                                 "Networks": [{"Target": n} for n in nets]}},
            "Endpoint": {"Ports": ports}}  # fmt: skip


def network(nid: str, name: str, team: str = "") -> dict[str, Any]:
    """A ``/networks`` entry; ``team`` when Moorage stamped an owner."""
    return {
        "Id": nid,
        "Name": name,
        "Driver": "overlay",
        "Scope": "swarm",
        "Labels": {TEAM: team} if team else {},
    }


def node(nid: str, host: str) -> dict[str, Any]:
    """A ``/nodes`` entry."""
    return {"ID": nid, "Spec": {"Role": "worker", "Availability": "active"}, "Description": {"Hostname": host},
            "Status": {"State": "ready", "Addr": "10.0.0.1"}}  # fmt: skip


def finding(fid: str, name: str, version: str, severity: str, purl: str, suppressed: str = "") -> Finding:
    """One finding as the OSV matcher reports it."""
    return Finding(fid, name, version, "Debian:12", severity, None, None, purl=purl, suppressed=suppressed)


def report(iid: str, packages: list[tuple[str, str, str]], findings: list[Finding]) -> Report:
    """A scan report: ``packages`` as (name, version, purl)."""
    pkgs = tuple(Package(n, v, "deb", "Debian:12", p, "/var/lib/dpkg/status") for n, v, p in packages)
    return Report(Inventory("", iid, None, pkgs), tuple(findings), "db-1", 0.0)


OPENSSL = "pkg:deb/debian/openssl@3.0.11?arch=amd64"
REQUESTS = "pkg:pypi/requests@2.19.0"
PCRE = "pkg:deb/debian/pcre@8.0"
SECRET = "pkg:deb/debian/search-secret@1.0"


def snapshot() -> Snapshot:
    """payments runs the api service (a task folded into it on this node, a stopped
    old copy) and a web container on the shared nginx image; search runs the same
    nginx image under its own mirror's tag, and an indexer only it uses."""
    images = [
        image(DEBIAN, ["debian:bookworm"], ["L1"]),
        image(PAY, [f"{REG}/payments/api:3.4"], ["L1", "L2"], (f"{REG}/payments/api@{PAY_DIGEST}",)),
        image(NGINX, ["nginx:1.25", "mirror.search.example/nginx:1.25"], ["N1"],
              **{"org.opencontainers.image.base.name": "docker.io/library/alpine:3.19"}),
        image(INDEXER, ["mirror.search.example/search/indexer:7"], ["L1", "I2"]),
    ]  # fmt: skip
    nets = [network("netpay", "pay-net", "payments"), network("netsearch", "search-net", "search"),
            network("netshared", "shared-net"), network("netingress", "ingress")]  # fmt: skip
    services = [
        service("svcpay", "pay-api", f"{REG}/payments/api:3.4@{PAY_DIGEST}", "payments", ["netpay"], 18080, "host"),
        service("svcidx", "search-indexer", "mirror.search.example/search/indexer:7", "search", ["netsearch"], 9200),
    ]  # fmt: skip
    tasks = [{"ServiceID": sid, "NodeID": nid, "Status": {"State": "running"}}
             for sid, nid in (("svcpay", "n1"), ("svcpay", "n2"), ("svcidx", "n1"))]  # fmt: skip
    containers = [
        container("ctask", "pay-api.1.x", f"{REG}/payments/api:3.4", PAY, "payments", ["pay-net"], service="svcpay"),
        container("cweb", "pay-web", "nginx:1.25", NGINX, "payments", ["pay-net", "shared-net", "search-net"],
                  {"8080": "80"}),
        container("cold", "pay-old", PAY, PAY, "payments", ["pay-net"], state="exited"),
        container("csweb", "search-web", "mirror.search.example/nginx:1.25", NGINX, "search",
                  ["search-net", "shared-net"], {"9090": "80"}),
    ]  # fmt: skip
    info = {"Swarm": {"NodeID": "n1", "ControlAvailable": True}}
    return build_snapshot(
        containers, services, tasks, images, nets, [node("n1", "mgr-1"), node("n2", "wkr-2")], info
    )


def reports() -> dict[str, Report]:
    """openssl and requests are vulnerable in the api image (zlib isn't; libc's finding
    is suppressed), pcre in nginx, a package only search's indexer holds."""
    return {
        PAY: report(PAY, [("openssl", "3.0.11", OPENSSL), ("requests", "2.19.0", REQUESTS),
                          ("zlib", "1.2", "pkg:deb/debian/zlib@1.2"), ("libc6", "2.36", "pkg:deb/debian/libc6@2.36")],
                    [finding("CVE-1", "openssl", "3.0.11", "critical", OPENSSL),
                     finding("PYSEC-1", "requests", "2.19.0", "high", REQUESTS),
                     finding("PYSEC-2", "requests", "2.19.0", "medium", REQUESTS),
                     finding("CVE-9", "libc6", "2.36", "high", "pkg:deb/debian/libc6@2.36", suppressed="not reachable")]),
        NGINX: report(NGINX, [("pcre", "8.0", PCRE)], [finding("CVE-3", "pcre", "8.0", "medium", PCRE)]),
        INDEXER: report(INDEXER, [("search-secret", "1.0", SECRET)], [finding("CVE-4", "search-secret", "1.0", "low", SECRET)]),
    }  # fmt: skip


def edges(m: SupplyMap) -> set[tuple[str, str, str]]:
    return {(e.source, e.target, e.rel) for e in m.edges}


# -- the graph -------------------------------------------------------------------------


def test_the_chain_from_registry_to_node() -> None:
    m = build_map(snapshot(), reports())
    e = edges(m)
    assert (f"registry:{REG}", f"image:{PAY}", "provides") in e
    assert (f"image:{PAY}", f"image:{DEBIAN}", "extends") in e  # its layers extend debian's
    assert m.nodes[f"image:{DEBIAN}"].kind == "base" and m.nodes[f"image:{PAY}"].kind == "image"
    assert (f"image:{PAY}", OPENSSL, "contains") in e and (f"image:{PAY}", REQUESTS, "contains") in e
    assert (f"image:{PAY}", "service:svcpay", "runs") in e
    assert ("service:svcpay", "network:netpay", "joins") in e
    assert ("service:svcpay", "port:svcpay:18080/tcp", "publishes") in e
    assert ("port:svcpay:18080/tcp", "node:n2", "reachable-on") in e  # host mode: where its tasks run
    assert ("service:svcpay", "node:n2", "runs-on") in e and ("service:svcpay", "node:n1", "runs-on") in e
    # the routing mesh publishes an ingress port on every node
    assert {("port:svcidx:9200/tcp", f"node:{n}", "reachable-on") for n in ("n1", "n2")} <= e
    # the base its builder named (alpine isn't local) hangs under nginx
    assert (f"image:{NGINX}", "image:docker.io/library/alpine:3.19", "extends") in e
    # the order of kinds is the chain's, and every edge points rightwards
    order = [KINDS.index(n.kind) for n in m.nodes.values()]
    assert order == sorted(order)
    assert all(KINDS.index(m.nodes[a].kind) < KINDS.index(m.nodes[b].kind) for a, b, _ in e)


def test_nodes_carry_ids_labels_teams_links_and_severities() -> None:
    m = build_map(snapshot(), reports())
    pay = m.nodes[f"image:{PAY}"]
    assert pay.label == f"{REG}/payments/api:3.4" and pay.link == f"/images/{PAY_DIGEST}"
    assert pay.attrs["packages"] == 4 and pay.attrs["vulnerable_packages"] == 2
    assert pay.attrs["severity"] == "critical" and pay.teams == ("payments",)
    assert m.nodes[f"image:{NGINX}"].teams == ("payments", "search")  # by the teams that run it
    svc = m.nodes["service:svcpay"]
    assert (svc.kind, svc.label, svc.team, svc.link) == (
        "service",
        "pay-api",
        "payments",
        "/workloads/service/svcpay",
    )
    assert m.nodes["network:netpay"].link == "/networks/netpay" and m.nodes["node:n2"].link == "/nodes/n2"
    assert m.nodes["node:n2"].label == "wkr-2" and m.nodes[f"registry:{REG}"].label == REG
    req = m.nodes[REQUESTS]
    assert req.label == "requests@2.19.0" and req.attrs["severity"] == "high"
    assert [f["id"] for f in req.attrs["findings"]] == ["PYSEC-1", "PYSEC-2"]
    assert m.nodes["port:cweb:8080/tcp"].label == "8080->80/tcp"


def test_only_packages_with_unsuppressed_findings_are_nodes() -> None:
    ids = set(build_map(snapshot(), reports()).nodes)
    assert "pkg:deb/debian/zlib@1.2" not in ids and "pkg:deb/debian/libc6@2.36" not in ids
    assert {OPENSSL, REQUESTS, PCRE} <= ids


def test_a_task_container_is_folded_into_its_service() -> None:
    m = build_map(snapshot(), reports())
    assert "container:ctask" not in m.nodes
    assert {n.id for n in m.of_kind("service")} == {"service:svcpay", "service:svcidx"}


def test_a_task_whose_service_this_engine_does_not_list_becomes_that_service() -> None:
    snap = build_snapshot([container("ct", "web.1.x", "nginx:1.25", NGINX, "payments", [], service="svcweb")],
                          images=[image(NGINX, ["nginx:1.25"], ["N1"])])  # fmt: skip
    m = build_map(snap, {})
    assert [(n.id, n.label, n.team) for n in m.of_kind("service", "container")] == [
        ("service:svcweb", "web", "payments")
    ]


def test_an_image_without_a_report_has_its_packages_unknown() -> None:
    m = build_map(snapshot(), {})
    assert m.nodes[f"image:{PAY}"].attrs["packages"] is None and not m.of_kind("package")
    assert exposures(m) == []


def test_a_service_image_this_engine_does_not_hold_is_named_by_its_digest() -> None:
    digest = "sha256:" + "f" * 64
    snap = build_snapshot([], [service("s1", "api", f"{REG}/x/api:1@{digest}", "payments", [])])
    img = build_map(snap, {}).nodes[f"image:{digest}"]
    assert img.label == f"{REG}/x/api:1" and img.link == f"/images/{digest}"


# -- tenancy ---------------------------------------------------------------------------


def test_a_developers_map_never_holds_another_teams_objects() -> None:
    m = build_map(snapshot(), reports(), team="payments")
    ids = set(m.nodes)
    assert all(set(n.teams) <= {"payments"} for n in m.nodes.values())
    assert {n.id for n in m.of_kind("service", "container")} == {
        "service:svcpay",
        "container:cweb",
        "container:cold",
    }
    assert "network:netsearch" not in ids  # another team's network, even where pay-web names it
    assert "network:netshared" in ids  # a shared network the team's workload joins
    assert f"image:{INDEXER}" not in ids and SECRET not in ids  # an image (and its packages) only search runs
    assert f"image:{NGINX}" in ids and m.nodes[f"image:{NGINX}"].teams == ("payments",)
    # search's tag for the shared image, and its mirror, are not shown to payments
    assert "registry:mirror.search.example" not in ids
    assert "mirror.search.example" not in json.dumps(to_json(m)) + to_dot(m) + json.dumps(to_cyclonedx(m))
    assert "port:csweb:9090/tcp" not in ids and "port:svcidx:9200/tcp" not in ids


def test_a_team_with_nothing_running_gets_an_empty_map() -> None:
    m = build_map(snapshot(), reports(), team="nobody")
    assert not m.nodes and not m.edges and to_json(m)["exposures"] == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", ""]), st.sampled_from([PAY, NGINX, INDEXER]),
                          st.lists(st.sampled_from(["na", "nb", "nshared"]), max_size=3), st.booleans()),
                max_size=8))  # fmt: skip
def test_any_deployment_a_teams_map_holds_only_its_objects(
    specs: list[tuple[str, str, list[str], bool]],
) -> None:
    nets = [network("na", "net-a", "a"), network("nb", "net-b", "b"), network("nshared", "net-shared")]
    imgs = [image(PAY, ["r.a.example/api:1"], ["L1", "L2"]), image(NGINX, ["nginx:1", "r.b.example/nginx:1"], ["N"]),
            image(INDEXER, ["r.b.example/idx:1"], ["L1", "L3"]), image(DEBIAN, ["debian:12"], ["L1"])]  # fmt: skip
    workloads, services = [], []
    for i, (team, iid, joined, as_service) in enumerate(specs):
        if as_service:
            services.append(
                service(f"s{i}", f"s{i}", f"{team or 'x'}.example/img:{i}", team, joined, 9000 + i)
            )
        else:
            workloads.append(container(f"c{i}", f"c{i}", f"r.{team or 'x'}.example/app:{i}", iid, team,
                                       [{"na": "net-a", "nb": "net-b", "nshared": "net-shared"}[n] for n in joined],
                                       {str(8000 + i): "80"}))  # fmt: skip
    snap = build_snapshot(
        workloads, services, [], imgs, nets, [node("n1", "h1")], {"Swarm": {"NodeID": "n1"}}
    )
    full = build_map(snap, reports())
    for team in ("a", "b"):
        m = build_map(snap, reports(), team=team)
        other = "b" if team == "a" else "a"
        assert all(set(n.teams) <= {team} for n in m.nodes.values())
        assert all(n.team == team for n in m.of_kind("service", "container"))
        assert f"network:n{other}" not in m.nodes
        assert f"r.{other}.example" not in json.dumps(to_json(m))
        mine = {w.image_id for w in snap.workloads if w.team == team}
        assert {n.id for n in m.of_kind("image")} <= {f"image:{i}" for i in mine} | {
            n.id for n in full.of_kind("image") if not n.attrs["image_id"]
        }
        assert set(m.nodes) <= set(full.nodes)


# -- the query -------------------------------------------------------------------------


def test_which_running_workloads_hold_a_vulnerable_package() -> None:
    found = vulnerable_workloads(build_map(snapshot(), reports()), "requests")
    assert len(found) == 1  # pay-old holds it too, but it has exited
    e = found[0]
    assert (e.workload, e.workload_label, e.team, e.image) == ("service:svcpay", "pay-api", "payments",
                                                                 f"{REG}/payments/api:3.4")  # fmt: skip
    assert (e.registry, e.package, e.version, e.severity) == (REG, "requests", "2.19.0", "high")
    assert (
        e.findings == ("PYSEC-1", "PYSEC-2")
        and e.ports == ("18080->80/tcp",)
        and e.nodes == ("mgr-1", "wkr-2")
    )


def test_the_query_by_version_and_by_purl() -> None:
    m = build_map(snapshot(), reports())
    assert len(vulnerable_workloads(m, "requests", "2.19.0")) == 1
    assert vulnerable_workloads(m, "requests", "2.20.0") == []
    assert vulnerable_workloads(m, "zlib") == []  # present, but nothing known against it
    assert [e.workload_label for e in vulnerable_workloads(m, PCRE)] == ["pay-web", "search-web"]
    assert [e.registry for e in vulnerable_workloads(m, "pcre")] == ["docker.io", "mirror.search.example"]
    assert [e.package for e in exposures(m)][:1] == ["openssl"]  # worst first


def test_another_teams_exposures_are_not_answered() -> None:
    m = build_map(snapshot(), reports(), team="payments")
    assert [e.workload_label for e in vulnerable_workloads(m, "pcre")] == ["pay-web"]
    assert vulnerable_workloads(m, "search-secret") == []


# -- exports ---------------------------------------------------------------------------


def test_json_round_trips_and_counts_packages_per_image() -> None:
    doc = to_json(build_map(snapshot(), reports()))
    again = json.loads(json.dumps(doc))
    assert again == doc
    assert {n["id"] for n in doc["nodes"]} >= {f"image:{PAY}", "service:svcpay", OPENSSL}
    assert {(e["source"], e["target"]) for e in doc["edges"]} >= {(f"image:{PAY}", "service:svcpay")}
    assert next(n for n in doc["nodes"] if n["id"] == f"image:{PAY}")["attrs"]["packages"] == 4
    assert doc["counts"]["service"] == 2 and len(doc["exposures"]) == len(
        exposures(build_map(snapshot(), reports()))
    )


_ID = r'"(?:[^"\\]|\\.)*"'


def test_dot_quotes_every_id_and_colours_by_severity() -> None:
    snap = snapshot()
    odd = build_snapshot([container("cq", 'we"ird\\name', "nginx:1.25", NGINX, "payments", [])],
                         images=[image(NGINX, ["nginx:1.25"], ["N1"])])  # fmt: skip
    for m in (build_map(snap, reports()), build_map(odd, reports())):
        dot = to_dot(m)
        assert dot.startswith("digraph ") and dot.rstrip().endswith("}")
        declared = set()
        for line in dot.splitlines()[1:-1]:
            line = line.strip()
            if line.startswith(("rankdir", "node [", "edge [", "label=", "}")):
                continue
            if line.startswith("subgraph"):
                assert re.fullmatch(rf"subgraph {_ID} \{{ label={_ID}; .*", line), line
                continue
            edge = re.fullmatch(rf"({_ID}) -> ({_ID}) \[label={_ID}\];", line)
            stmt = re.fullmatch(
                rf"({_ID}) \[label={_ID}, fillcolor={_ID}, class={_ID}(, URL={_ID})?\];", line
            )
            assert edge or stmt, line
            if stmt:
                declared.add(json.loads(stmt.group(1)))
        assert declared == set(m.nodes)
    dot = to_dot(build_map(snap, reports()))
    assert f'"{OPENSSL}" [label="openssl@3.0.11\\npayments\\ncritical", fillcolor="#dc2626"' in dot
    # a workload takes the colour of its image's worst finding
    assert '"service:svcpay" [label="pay-api\\npayments\\ncritical", fillcolor="#dc2626"' in dot
    assert '"container:cq" [label="we\\"ird\\\\name' in to_dot(build_map(odd, {}))


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_graphviz_reads_the_dot() -> None:
    out = subprocess.run(["dot", "-Tsvg"], input=to_dot(build_map(snapshot(), reports())), text=True,
                         capture_output=True, check=False)  # fmt: skip
    assert out.returncode == 0 and not out.stderr, out.stderr
    assert "<svg" in out.stdout and "pay&#45;api" in out.stdout


def test_cyclonedx_is_valid_and_its_dependencies_cover_every_workload() -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    m = build_map(snapshot(), reports())
    bom = to_cyclonedx(m)
    assert JsonStrictValidator(SchemaVersion.V1_5).validate_str(json.dumps(bom)) is None
    deps = {d["ref"]: set(d["dependsOn"]) for d in bom["dependencies"]}
    workloads = {n.id for n in m.of_kind("service", "container")}
    assert deps["deployment"] == workloads and workloads <= set(deps)
    assert deps["service:svcpay"] == {f"image:{PAY}"}
    assert deps[f"image:{PAY}"] == {f"image:{DEBIAN}", OPENSSL, REQUESTS}
    refs = (
        {c["bom-ref"] for c in bom["components"]} | {s["bom-ref"] for s in bom["services"]} | {"deployment"}
    )
    assert set(deps) <= refs and all(d <= refs for d in deps.values())
    pay = next(c for c in bom["components"] if c["bom-ref"] == f"image:{PAY}")
    assert (pay["name"], pay["version"]) == (f"{REG}/payments/api", "3.4")
    assert next(c for c in bom["components"] if c["bom-ref"] == OPENSSL)["purl"] == OPENSSL
    svc = next(s for s in bom["services"] if s["bom-ref"] == "service:svcpay")
    assert svc["group"] == "payments" and svc["endpoints"] == ["tcp://mgr-1:18080", "tcp://wkr-2:18080"]
    vulns = {v["id"]: v for v in bom["vulnerabilities"]}
    assert vulns["CVE-1"]["ratings"] == [{"severity": "critical"}] and vulns["CVE-1"]["affects"] == [
        {"ref": OPENSSL}
    ]
    team_bom = to_cyclonedx(build_map(snapshot(), reports(), team="search"))
    assert JsonStrictValidator(SchemaVersion.V1_5).validate_str(json.dumps(team_bom)) is None
    assert team_bom["dependencies"][0] == {
        "ref": "deployment:search",
        "dependsOn": ["container:csweb", "service:svcidx"],
    }


def test_a_team_map_names_a_shared_or_base_image_only_by_the_teams_own_references() -> None:
    """Review finding: an image run by id, or a base image, took another team's tag or registry."""
    from moorage.admission.running import build_snapshot as _build
    from moorage.console.map import build_map as _map
    from moorage.console.map import to_json as _json

    base = {"Id": "sha256:" + "b" * 64, "RepoTags": ["registry.fraud.corp/fraud/internal-base:3"],
            "RepoDigests": ["registry.fraud.corp/fraud/internal-base@sha256:" + "c" * 64],
            "RootFS": {"Layers": ["l1"]}}  # fmt: skip
    app = {"Id": "sha256:" + "a" * 64, "RepoTags": ["registry.fraud.corp/fraud/secret-model:v7"],
           "RepoDigests": [], "RootFS": {"Layers": ["l1", "l2"]}}  # fmt: skip
    pay = {"Id": "p" * 64, "Name": "/pay", "Image": app["Id"], "State": {"Status": "running"},
           "Config": {"Image": app["Id"], "Labels": {"io.moorage.team": "payments"}}, "HostConfig": {}}  # fmt: skip
    snap = _build([pay], images=[base, app], info={"Name": "engine"})
    text = str(_json(_map(snap, {}, team="payments")))
    assert "fraud" not in text, text
    assert "fraud" in str(_json(_map(snap, {})))  # an officer's map of every team names them
