"""Cluster operations on a real 3-node lab Swarm, timed through Moorage.

    python bench/cluster.py [--json]     (as root; starts and removes its own lab)

Figures: CA rotation until every ready node follows the new root, join-token
rotation, autolock on and off (each through the Moorage API, as `moorage cluster`
calls it), and how long the reconciler takes to undo a label set on the manager
behind Moorage's back (node event + sweep + node update), with a 5 s interval.
There is no peer: Docker does these with no governance at all; the bare
`POST /swarm/update` for a CA rotation is timed in the same run for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from moorage.cluster import swarmops
from moorage.cluster.reconciler import Reconciler
from moorage.cluster.store import ClusterStore
from moorage.cluster.trust import ClusterTrust
from moorage.gateway.upstream import Upstream
from moorage.lab import Lab


async def _bench(lab: Lab, folder: Path) -> dict[str, Any]:
    upstream = Upstream(lab.docker_host(1))
    trust = ClusterTrust(ClusterStore.in_folder(folder), dict)
    records: list[tuple[float, str, str]] = []

    async def record(kind: str, obj: str, reason: str, summary: dict[str, Any]) -> None:
        records.append((time.monotonic(), kind, obj))

    rec = Reconciler(trust, upstream, record, interval=5.0,
                     events=lambda: upstream.lines('/events?filters={"type":["node"]}'))  # fmt: skip
    task = asyncio.ensure_future(rec.run())
    out: dict[str, Any] = {}
    try:
        await asyncio.sleep(1)
        ca = await swarmops.rotate_ca(upstream, trust, "bench")
        out["rotate_ca_s"] = ca["seconds"]
        # the bare engine, for comparison: the same rotation without Moorage's wait
        _, doc = await upstream.call_json("GET", "/swarm")
        spec = doc["Spec"]
        spec["CAConfig"]["ForceRotate"] = int(spec["CAConfig"].get("ForceRotate") or 0) + 1
        started = time.monotonic()
        old = doc["TLSInfo"]["TrustRoot"]
        await upstream.call_json("POST", f"/swarm/update?version={doc['Version']['Index']}", body=spec)
        while True:
            await asyncio.sleep(0.2)
            _, now = await upstream.call_json("GET", "/swarm")
            nodes = await trust.nodes(upstream)
            if now["TLSInfo"]["TrustRoot"] != old and all(
                n.trust_root == nodes[0].trust_root for n in nodes if n.state == "ready"
            ):
                break
        out["bare_rotate_ca_s"] = round(time.monotonic() - started, 2)
        out["rotate_tokens_s"] = (await swarmops.rotate_tokens(upstream))["seconds"]
        out["autolock_on_s"] = (await swarmops.set_autolock(upstream, True))["seconds"]
        out["autolock_off_s"] = (await swarmops.set_autolock(upstream, False))["seconds"]
        # drift: a forged attestation label on node 3, set directly on the manager
        _status, nodes = await upstream.call_json("GET", "/nodes")
        target = next(n for n in nodes if n["Description"]["Hostname"].endswith("node3"))
        spec = target["Spec"]
        spec.setdefault("Labels", {})["io.moorage.attested.pci"] = "true"
        await asyncio.sleep(6)  # let a sweep see the node as it is (no memory of it yet otherwise)
        before = len(records)
        started = time.monotonic()
        await upstream.call_json("POST", f"/nodes/{target['ID']}/update?version={target['Version']['Index']}",
                                 body=spec)  # fmt: skip
        while not any(k == "cluster.drift" and o == target["ID"] for _, k, o in records[before:]):
            await asyncio.sleep(0.05)
        out["undo_forged_label_s"] = round(time.monotonic() - started, 2)
    finally:
        task.cancel()
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("run as root: the lab needs network namespaces", file=sys.stderr)
        return 1
    lab = Lab(f"bc{os.getpid() % 100000}")
    folder = Path(tempfile.mkdtemp(prefix="moorage-bench-cluster-"))
    try:
        lab.up(nodes=3, owner_pid=os.getpid())
        out = asyncio.run(_bench(lab, folder))
    finally:
        lab.down()
        shutil.rmtree(folder, ignore_errors=True)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print("cluster operations on a 3-node lab swarm (seconds)")
    for key, label in (("rotate_ca_s", "CA rotation through Moorage, until every node follows"),
                       ("bare_rotate_ca_s", "the same rotation on the bare engine"),
                       ("rotate_tokens_s", "join-token rotation"), ("autolock_on_s", "autolock on"),
                       ("autolock_off_s", "autolock off"),
                       ("undo_forged_label_s", "a forged attestation label undone")):  # fmt: skip
        print(f"  {label:<55} {out[key]:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
