"""``moorage exception request|approve|revoke|list``: exceptions go through the
gateway, which knows who is asking (the same socket and identity as docker)."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import time
from typing import Any

from moorage.cli._output import emit_json, paint, table
from moorage.cli._paths import default_data_dir

__all__ = ["GatewayClientError", "register"]


class GatewayClientError(Exception):
    """The gateway refused, or could not be reached."""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 30) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path
        self._wait = timeout

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self._wait)
        self.sock.connect(self._path)


def _socket_path(host: str | None) -> str:
    url = host or os.environ.get("DOCKER_HOST") or f"unix://{default_data_dir() / 'docker.sock'}"
    if not url.startswith("unix://"):
        raise GatewayClientError(f"{url}: only unix:// gateway addresses are supported here (use --host)")
    return url[len("unix://") :]


def call(host: str | None, method: str, path: str, body: Any = None, timeout: float = 30) -> Any:
    """One request to the gateway's own API; its JSON answer, or GatewayClientError."""
    sock = _socket_path(host)
    conn = _UnixConnection(sock, timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
    except OSError as exc:
        raise GatewayClientError(f"cannot reach the Moorage gateway at unix://{sock}: {exc}") from exc
    finally:
        conn.close()
    return answer(resp.status, raw)


def answer(status: int, raw: bytes) -> Any:
    """A gateway answer's JSON; GatewayClientError with its message when it is an error."""
    try:
        doc = json.loads(raw) if raw else None
    except ValueError:
        doc = None
    if status >= 400:
        message = doc.get("message") if isinstance(doc, dict) else raw.decode(errors="replace")
        raise GatewayClientError(str(message))
    return doc


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``moorage exception`` (request, approve, revoke, list) to the command line."""
    p = sub.add_parser("exception", help="request, approve and list exceptions to policy")
    pc = p.add_subparsers(dest="exception_cmd", required=True, metavar="COMMAND")
    r = pc.add_parser("request", help="ask for an exception to one rule")
    r.add_argument("--rule", required=True, help="rule id, e.g. runtime.privileged (or runtime.*)")
    scope = r.add_mutually_exclusive_group(required=True)
    scope.add_argument("--team", help="the team it applies to")
    scope.add_argument("--image", help="the image digest it applies to (sha256:...)")
    r.add_argument("--reason", required=True)
    r.add_argument("--expires", default="7d", help="how long once approved: 12h, 7d, 2w (default 7d)")
    a = pc.add_parser("approve", help="grant a pending exception (security-officer, not the requester)")
    a.add_argument("id")
    v = pc.add_parser("revoke", help="withdraw an exception")
    v.add_argument("id")
    ls = pc.add_parser("list", help="exceptions you may see")
    ls.add_argument("--json", action="store_true")
    for q in (r, a, v, ls):
        q.add_argument(
            "--host", help="gateway address (default: $DOCKER_HOST, else the data folder's socket)"
        )
        q.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.exception_cmd == "request":
        body = {"rule": args.rule, "reason": args.reason, "expires": args.expires}
        body.update({"team": args.team} if args.team else {"image": args.image})
        item = call(args.host, "POST", "/moorage/v1/exceptions", body)
        print(f"requested {paint(item['id'], 'bold')}: {item['rule']} for {item['team'] or item['image']}")
        print(f"a security officer approves it with: moorage exception approve {item['id']}")
        return 0
    if args.exception_cmd in ("approve", "revoke"):
        item = call(args.host, "POST", f"/moorage/v1/exceptions/{args.id}/{args.exception_cmd}")
        until = ""
        if item.get("expires") and item["status"] == "approved":
            until = " until " + time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(item["expires"]))
        print(f"{item['id']} is {item['status']}{until}")
        return 0
    items = call(args.host, "GET", "/moorage/v1/exceptions")
    if args.json:
        emit_json(items)
        return 0
    rows = []
    for e in items:
        until = time.strftime("%Y-%m-%d %H:%M", time.localtime(e["expires"])) if e.get("expires") else "-"
        rows.append([e["id"], e["status"], e["rule"], e["team"] or e["image"][:19], e["requester"],
                     e["approver"] or "-", until, e["reason"][:40]])  # fmt: skip
    print(table(["ID", "STATUS", "RULE", "SCOPE", "REQUESTER", "APPROVER", "EXPIRES", "REASON"], rows))
    return 0
