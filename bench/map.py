"""The supply-chain map of a large deployment: build_map, then each export.

    python bench/map.py [--workloads N] [--images N] [--packages N] [--runs N] [--json]

A synthetic engine state goes through the same pure `build_snapshot` the console
reads: 1,000 workloads (60 % containers, 40 % services with two tasks each) of ten
teams, over 100 images built on ten base images, each image with 100 packages of
which about one in ten has findings (one to three each), every workload on its
team's network and a shared one, publishing one port, on a five-node swarm. Each
step is timed over several runs (median and worst); peak memory is tracemalloc's
for build_map + to_json, the console's page. Budget (issue): build_map + to_json for
1,000 workloads well under 1 s.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from moorage.admission.running import Snapshot, build_snapshot
from moorage.admission.tenancy import OWNER, TEAM
from moorage.console.map import build_map, exposures, to_cyclonedx, to_dot, to_json
from moorage.images.catalogers.interface import Inventory, Package
from moorage.images.scanner import Report
from moorage.images.vulns.interface import Finding

SEVERITIES = ("critical", "high", "medium", "low")
NODES = 5
TEAMS = 10


def _id(kind: str, n: int) -> str:
    return "sha256:" + f"{kind}{n:08d}".encode().hex().ljust(64, "0")[:64]


def deployment(
    n_workloads: int, n_images: int, n_packages: int, seed: int = 7
) -> tuple[Snapshot, dict[str, Report]]:
    """The synthetic engine answers, read by build_snapshot, and a scan report per image."""
    rnd = random.Random(seed)
    bases = [{"Id": _id("base", b), "RepoTags": [f"debian:12.{b}"], "RepoDigests": [], "Size": 80_000_000,
              "RootFS": {"Layers": [_id("bl", b)]}, "Config": {"Labels": {}}} for b in range(10)]  # fmt: skip
    images, reports = list(bases), {}
    for i in range(n_images):
        iid, team, base = _id("img", i), f"team{i % TEAMS}", bases[i % len(bases)]
        repo = f"registry{i % 3}.example:5000/{team}/app{i}"
        images.append({"Id": iid, "RepoTags": [f"{repo}:1.{i}"], "RepoDigests": [f"{repo}@{_id('dig', i)}"],
                       "Size": 120_000_000, "RootFS": {"Layers": [*base["RootFS"]["Layers"], _id("l", i)]},
                       "Config": {"Labels": {}}})  # fmt: skip
        packages, findings = [], []
        for p in range(n_packages):
            name, version = f"lib{p}", f"1.{p}.{i % 4}"
            purl = f"pkg:deb/debian/{name}@{version}?arch=amd64"
            packages.append(Package(name, version, "deb", "Debian:12", purl, "/var/lib/dpkg/status"))
            if rnd.random() < 0.1:
                for k in range(rnd.randint(1, 3)):
                    sev = rnd.choice(SEVERITIES)
                    findings.append(Finding(f"CVE-2024-{p:03d}{k}", name, version, "Debian:12", sev, None,
                                            f"1.{p}.9", purl=purl))  # fmt: skip
        reports[iid] = Report(
            Inventory(_id("dig", i), iid, None, tuple(packages)), tuple(findings), "db", 0.0
        )
    nets = [{"Id": f"net{t}", "Name": f"team{t}-net", "Driver": "overlay", "Scope": "swarm",
             "Labels": {TEAM: f"team{t}"}} for t in range(TEAMS)]  # fmt: skip
    nets.append({"Id": "netshared", "Name": "shared", "Driver": "overlay", "Scope": "swarm", "Labels": {}})
    nodes = [{"ID": f"node{k}", "Spec": {"Role": "manager" if k == 0 else "worker"},
              "Description": {"Hostname": f"host-{k}"}, "Status": {"State": "ready"}} for k in range(NODES)]  # fmt: skip
    containers, services, tasks = [], [], []
    for w in range(n_workloads):
        i = rnd.randrange(n_images)
        team, labels = f"team{i % TEAMS}", {TEAM: f"team{i % TEAMS}", OWNER: f"dev{w % 40}"}
        ref = images[len(bases) + i]["RepoTags"][0]
        if w % 5 < 3:
            containers.append({"Id": f"c{w:06d}", "Name": f"/app-{w}", "Image": _id("img", i),
                               "Config": {"Image": ref, "Labels": labels},
                               "HostConfig": {"PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": str(20000 + w)}]}},
                               "State": {"Status": "running"},
                               "NetworkSettings": {"Networks": {f"{team}-net": {}, "shared": {}}}})  # fmt: skip
        else:
            services.append({"ID": f"s{w:06d}", "Spec": {"Name": f"svc-{w}", "Labels": labels,
                             "TaskTemplate": {"ContainerSpec": {"Image": ref},
                                              "Networks": [{"Target": f"net{i % TEAMS}"}, {"Target": "netshared"}]}},
                             "Endpoint": {"Ports": [{"TargetPort": 80, "PublishedPort": 30000 + w,
                                                     "Protocol": "tcp", "PublishMode": "ingress"}]}})  # fmt: skip
            tasks += [{"ServiceID": f"s{w:06d}", "NodeID": f"node{(w + k) % NODES}", "Status": {"State": "running"}}
                      for k in range(2)]  # fmt: skip
    info = {"Swarm": {"NodeID": "node0", "ControlAvailable": True}}
    return build_snapshot(containers, services, tasks, images, nets, nodes, info), reports


def timed(fn: Callable[[], Any], runs: int) -> list[float]:
    """Wall-clock seconds of each run."""
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workloads", type=int, default=1000)
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--packages", type=int, default=100)
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    t = time.perf_counter()
    snap, reports = deployment(args.workloads, args.images, args.packages)
    setup = time.perf_counter() - t
    graph = build_map(snap, reports)
    steps: dict[str, Callable[[], Any]] = {
        "build_map": lambda: build_map(snap, reports),
        "to_json": lambda: to_json(graph),
        "build_map + to_json": lambda: to_json(build_map(snap, reports)),
        "build_map + to_json, one team": lambda: to_json(build_map(snap, reports, team="team3")),
        "to_dot": lambda: to_dot(graph),
        "to_cyclonedx": lambda: to_cyclonedx(graph),
    }
    for fn in steps.values():  # warm up
        fn()
    times = {name: timed(fn, args.runs) for name, fn in steps.items()}
    tracemalloc.start()
    doc = to_json(build_map(snap, reports))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    kinds = doc["counts"]
    result: dict[str, Any] = {
        "workloads": len(snap.top_level()),
        "images": args.images,
        "packages_per_image": args.packages,
        "findings": sum(len(r.findings) for r in reports.values()),
        "nodes": len(graph.nodes),
        "edges": len(graph.edges),
        "vulnerable_packages": kinds["package"],
        "exposures": len(exposures(graph)),
        "json_bytes": len(json.dumps(doc)),
        "dot_bytes": len(to_dot(graph)),
        "cyclonedx_bytes": len(json.dumps(to_cyclonedx(graph))),
        "setup_s": round(setup, 3),
        "peak_mib_build_map_to_json": round(peak / 2**20, 1),
        "steps": {
            k: {"median_ms": round(statistics.median(v) * 1000, 1), "max_ms": round(max(v) * 1000, 1)}
            for k, v in times.items()
        },
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['workloads']} workloads over {args.images} images x {args.packages} packages "
          f"({result['findings']} findings): {result['nodes']} map nodes ({kinds['package']} vulnerable packages, "
          f"{kinds['port']} ports), {result['edges']} edges, {result['exposures']} exposures\n")  # fmt: skip
    print(f"{'step':34}{'median':>12}{'max':>12}")
    for name, s in result["steps"].items():
        print(f"{name:34}{s['median_ms']:>10.1f}ms{s['max_ms']:>10.1f}ms")
    print(f"\npeak memory, build_map + to_json (tracemalloc): {result['peak_mib_build_map_to_json']} MiB")
    print(f"output: JSON {result['json_bytes'] / 1e6:.1f} MB, DOT {result['dot_bytes'] / 1e6:.1f} MB, "
          f"CycloneDX {result['cyclonedx_bytes'] / 1e6:.1f} MB")  # fmt: skip
    print("budget: build_map + to_json for 1,000 workloads well under 1 s")


if __name__ == "__main__":
    main()
