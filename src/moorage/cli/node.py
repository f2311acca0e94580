"""``moorage node enrol|attest|approve|revoke|ls`` and ``moorage cluster
status|rotate-ca|rotate-tokens|autolock``: through the gateway, which knows who is
asking. Approving signs the attestation here, with the officer's own key."""

from __future__ import annotations

import argparse
import base64
import os
import time
from pathlib import Path
from typing import Any

from moorage.cli import deploy
from moorage.cli._output import emit_json, paint, step, table
from moorage.cli.exception import call
from moorage.cluster.attestation import sign
from moorage.images.sign import load_private_key

__all__ = ["register"]


def _host(q: argparse.ArgumentParser) -> None:
    q.add_argument("--host", help="gateway address (default: $DOCKER_HOST, else the data folder's socket)")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``moorage node`` (enrolment, attestation) and ``moorage cluster`` (CA, tokens,
    autolock) to the command line."""
    p = sub.add_parser("node", help="enrol, attest and revoke Swarm nodes")
    pc = p.add_subparsers(dest="node_cmd", required=True, metavar="COMMAND")
    e = pc.add_parser("enrol", help="make a node eligible for workloads (operator)")
    e.add_argument("node", help="node ID or hostname")
    a = pc.add_parser("attest", help="ask for a node to be attested for workload classes")
    a.add_argument("node", help="node ID or hostname")
    a.add_argument(
        "--class", dest="classes", action="append", required=True, help="workload class (repeatable)"
    )
    a.add_argument("--evidence", required=True, help="reference to the audit that supports it")
    a.add_argument("--expires", default="90d", help="how long once approved: 30d, 12w (default 90d)")
    ap = pc.add_parser("approve", help="sign and approve an attestation request (another security officer)")
    ap.add_argument("id", help="the request id (att-...)")
    ap.add_argument("--key", type=Path, required=True, help="your ECDSA P-256 private key (PEM)")
    r = pc.add_parser("revoke", help="withdraw a node's attestations (security officer)")
    r.add_argument("node", help="node ID, hostname or request id")
    r.add_argument("--class", dest="classes", action="append", help="only this class (repeatable)")
    ls = pc.add_parser("ls", help="nodes with enrolment, attestation and trust root")
    ls.add_argument("--json", action="store_true")
    reqs = pc.add_parser("requests", help="attestation requests and their state")
    reqs.add_argument("--json", action="store_true")
    for q in (e, a, ap, r, ls, reqs):
        _host(q)
        q.set_defaults(func=_node)

    c = sub.add_parser("cluster", help="the swarm's CA, join tokens, autolock and trust status")
    cc = c.add_subparsers(dest="cluster_cmd", required=True, metavar="COMMAND")
    st = cc.add_parser("status", help="CA, autolock, unencrypted overlays, each node's trust state")
    st.add_argument("--json", action="store_true")
    ca = cc.add_parser("rotate-ca", help="rotate the root CA and wait until every node follows it")
    tk = cc.add_parser("rotate-tokens", help="new join tokens (old ones stop working)")
    tk.add_argument("--which", choices=["worker", "manager", "both"], default="both")
    al = cc.add_parser("autolock", help="turn manager autolock on or off")
    al.add_argument("state", choices=["on", "off"])
    for q in (st, ca, tk, al):
        _host(q)
        q.set_defaults(func=_cluster)
    deploy.register(cc)


def _when(ts: Any) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(float(ts))) if ts else "-"


def _node(args: argparse.Namespace) -> int:
    cmd = args.node_cmd
    if cmd == "enrol":
        out = call(args.host, "POST", f"/moorage/v1/nodes/{args.node}/enrol")
        print(
            f"node {paint(out['hostname'] or out['node'], 'bold')} ({out['node'][:12]}) is enrolled"
            + ("" if out.get("new") else " (it already was)")
        )
        return 0
    if cmd == "attest":
        body = {
            "node": args.node,
            "classes": args.classes,
            "evidence": args.evidence,
            "expires": args.expires,
        }
        out = call(args.host, "POST", "/moorage/v1/attestations", body)
        print(
            f"requested {paint(out['id'], 'bold')}: node {out['hostname'] or out['node']} for "
            f"{', '.join(out['classes'])} (evidence {out['evidence']})"
        )
        print(f"another security officer approves it with: moorage node approve {out['id']} --key KEY")
        return 0
    if cmd == "approve":
        password = os.environ.get("MOORAGE_KEY_PASSWORD", "").encode() or None
        key = load_private_key(args.key, password)
        stmt = call(args.host, "GET", f"/moorage/v1/attestations/{args.id}/statement")
        envelope = sign(base64.b64decode(stmt["payload"]), key)
        out = call(args.host, "POST", f"/moorage/v1/attestations/{args.id}/approve", {"envelope": envelope})
        print(
            f"{out['id']}: node {out['hostname'] or out['node']} is attested for {', '.join(out['classes'])} "
            f"until {_when(out['expires_at'])} (signed by key {out['signer'][:19]})"
        )
        return 0
    if cmd == "revoke":
        which = {"classes": args.classes} if args.classes else None
        out = call(args.host, "POST", f"/moorage/v1/nodes/{args.node}/revoke", which)
        print(f"revoked {', '.join(out['revoked'])} on node {out['node'][:12]}")
        return 0
    if cmd == "requests":
        items = call(args.host, "GET", "/moorage/v1/attestations")
        if args.json:
            emit_json(items)
            return 0
        rows = [
            [
                r["id"],
                r["status"],
                r["node_id"][:12],
                ",".join(r["classes"]),
                r["requester"],
                r["approver"] or "-",
                _when(r["expires_at"]),
                r["evidence"][:30],
            ]
            for r in items
        ]
        print(
            table(["ID", "STATUS", "NODE", "CLASSES", "REQUESTER", "APPROVER", "EXPIRES", "EVIDENCE"], rows)
        )
        return 0
    status = call(args.host, "GET", "/moorage/v1/cluster")
    if args.json:
        emit_json(status["nodes"])
        return 0
    print(_nodes_table(status))
    return 0


def _nodes_table(status: dict[str, Any]) -> str:
    rows = []
    for n in status["nodes"]:
        problems = "; ".join(f"{c}: {w}" for c, w in n["problems"].items())
        root = n["trust_root"][7:19] + ("" if n["follows_current_root"] else paint(" (old)", "yellow"))
        rows.append(
            [
                n["hostname"],
                n["id"][:12],
                n["role"],
                n["availability"],
                n["state"],
                paint("yes", "green") if n["enrolled"] else paint("no", "yellow"),
                ",".join(n["attested"]) or "-",
                _when(n["expires_at"]),
                root,
                paint(problems, "red") if problems else "",
            ]
        )
    return table(
        [
            "HOSTNAME",
            "ID",
            "ROLE",
            "AVAILABILITY",
            "STATE",
            "ENROLLED",
            "ATTESTED",
            "EXPIRES",
            "TRUST ROOT",
            "PROBLEMS",
        ],
        rows,
    )


def _cluster(args: argparse.Namespace) -> int:
    cmd = args.cluster_cmd
    if cmd == "status":
        st = call(args.host, "GET", "/moorage/v1/cluster")
        if args.json:
            emit_json(st)
            return 0
        ca = st["ca"]
        print(f"swarm       {st['swarm']}")
        print(f"CA root     {ca['trust_root']}  expires {ca['expires'] or '?'}")
        print(
            f"node certs  renewed every {ca['node_cert_expiry_hours']} h (the Engine API shows no node cert)"
        )
        print(f"autolock    {paint('on', 'green') if st['autolock'] else paint('off', 'yellow')}")
        plain = st["overlays_without_encryption"]
        print(
            f"overlays    {paint('unencrypted: ' + ', '.join(plain), 'yellow') if plain else 'all encrypted'}"
        )
        print()
        print(_nodes_table(st))
        return 0
    if cmd == "rotate-ca":
        step("rotating the root CA; waiting for every node to follow the new root")
        out = call(args.host, "POST", "/moorage/v1/cluster/rotate-ca", timeout=180)
        print(
            f"CA rotated in {out['seconds']} s: {out['old_trust_root'][:19]} -> {out['trust_root'][:19]}; "
            "every ready node follows the new root"
        )
        return 0
    if cmd == "rotate-tokens":
        out = call(args.host, "POST", "/moorage/v1/cluster/rotate-tokens", {"which": args.which})
        print(
            f"rotated the {' and '.join(out['rotated']) or 'no'} join token(s) in {out['seconds']} s; "
            "an admin reads the new ones with docker swarm join-token"
        )
        return 0
    out = call(args.host, "POST", "/moorage/v1/cluster/autolock", {"enabled": args.state == "on"})
    print(f"autolock is {args.state} ({out['seconds']} s)")
    if out.get("unlock_key"):
        print(
            f"unlock key: {paint(out['unlock_key'], 'bold')}\nKeep it safe: a restarted manager needs it "
            "(docker swarm unlock). Moorage does not keep it."
        )
    return 0
