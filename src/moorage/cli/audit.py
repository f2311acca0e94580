"""``moorage audit``: verify, read, export and archive the audit trail."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import socket
import sys
import time
from pathlib import Path
from typing import Any

from moorage.audit.admin import record_admin
from moorage.audit.factory import open_trail
from moorage.audit.shared import SharedTrail
from moorage.audit.trail import AuditTrail, KeyRing, verify_file
from moorage.audit.verify import VerifyResult
from moorage.cli._output import emit_json, paint, table
from moorage.cli.store import add_store_options, store_spec
from moorage.store import open_store


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``moorage audit`` (verify, log, export, archive, rotate-key) to the command line."""
    a = sub.add_parser("audit", help="verify, read, export and archive the audit trail")
    cmds = a.add_subparsers(dest="audit_cmd", required=True, metavar="COMMAND")

    def cmd(name: str, help: str) -> argparse.ArgumentParser:
        p = cmds.add_parser(name, help=help)
        p.add_argument("--data-dir", type=Path, help="the gateway's data folder")
        add_store_options(p)
        return p

    p = cmd("verify", "check the hash chain and the signed checkpoints")
    p.add_argument("--file", type=Path, help="verify an export or archive file instead of the store")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_verify)
    p = cmd("log", "show records (filters combine)")
    p.add_argument("--user")
    p.add_argument("--team")
    p.add_argument("--object", help="object id, id prefix or name as the client wrote it")
    p.add_argument("--decision", choices=["allow", "deny", "error"])
    p.add_argument("--since", help="ISO time, unix seconds, or an age like 15m, 2h, 1d")
    p.add_argument("--until", help="same forms as --since")
    p.add_argument("--limit", type=int, help="at most N records")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new records")
    p.add_argument("--json", action="store_true", help="one JSON object a line")
    p.set_defaults(func=_log)
    p = cmd("export", "write records and checkpoints for an external verifier or SIEM")
    p.add_argument("--format", choices=["jsonl", "syslog"], default="jsonl")
    p.add_argument("--out", type=Path, help="file to write (default: standard output)")
    p.set_defaults(func=_export)
    p = cmd("archive", "move old records to a file that verifies on its own")
    p.add_argument("--upto", type=int, required=True, help="last record to move")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=_archive)
    p = cmd("rotate-key", "start signing checkpoints with a new key (old ones still verify)")
    p.set_defaults(func=_rotate)


def _paths(args: argparse.Namespace) -> tuple[Path, KeyRing]:
    from moorage.cli._paths import default_data_dir

    data = args.data_dir or default_data_dir()
    return data / "audit.db", KeyRing(data / "audit-keys")


def _open(args: argparse.Namespace) -> AuditTrail | SharedTrail:
    """The trail to read: the data folder's, or the one a --store URL names."""
    db, keys = _paths(args)
    if store_spec(args) is None:
        return AuditTrail(db, keys, writer=False)
    return open_trail(open_store(store_spec(args), db.parent), keys, writer=False)


def _when(text: str | None) -> float | None:
    if text is None:
        return None
    m = re.fullmatch(r"(\d+)([smhd])", text)
    if m:
        return time.time() - int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"cannot read the time {text!r}: use ISO 8601, unix seconds or 15m/2h/1d") from exc
    return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).timestamp()


def _report(result: VerifyResult, as_json: bool) -> int:
    if as_json:
        emit_json({"ok": result.ok, "records": result.records, "checkpoints": result.checkpoints,
                   "first": result.first, "last": result.last,
                   "problem": None if result.ok else result.problem.__dict__})  # fmt: skip
    elif result.ok:
        print(paint("intact:", "green") + f" records {result.first}..{result.last} "
              f"({result.records}), {result.checkpoints} signed checkpoint(s)")  # fmt: skip
    else:
        assert result.problem is not None
        print(paint("TAMPERED:", "red") + f" first bad record {result.problem.seq} "
              f"({result.problem.kind}): {result.problem.detail}")  # fmt: skip
    return 0 if result.ok else 1


def _verify(args: argparse.Namespace) -> int:
    if args.file:
        return _report(verify_file(args.file, _paths(args)[1]), args.json)
    trail = _open(args)
    try:
        result = trail.verify()
        if isinstance(trail, SharedTrail) and not args.json:
            signed = ", ".join(f"{name} ({n})" for name, n in trail.signers().items()) or "none yet"
            print(f"shared chain in {trail.store.describe()}; checkpoints signed by: {signed}")
        return _report(result, args.json)
    finally:
        trail.close()


def _row(seq: int, r: dict[str, Any]) -> list[str]:
    when = dt.datetime.fromtimestamp(r["time"], dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    decision = {"allow": paint("allow", "green"), "deny": paint("deny", "red")}.get(
        r["decision"], r["decision"]
    )
    return [str(seq), when, r["user"], r["kind"], r.get("object_ref") or "", decision, str(r["status"]),
            (r.get("reason") or "")[:60]]  # fmt: skip


def _log(args: argparse.Namespace) -> int:
    trail = _open(args)
    try:
        filters = dict(user=args.user, team=args.team, obj=args.object, decision=args.decision,
                       since=_when(args.since), until=_when(args.until))  # fmt: skip
        rows = trail.query(**filters, limit=args.limit)
        headers = ["SEQ", "TIME (UTC)", "USER", "KIND", "OBJECT", "DECISION", "STATUS", "REASON"]
        if args.json:
            for seq, r in rows:
                print(json.dumps({"seq": seq, **r}))
        else:
            print(table(headers, [_row(s, r) for s, r in rows]))
        last = rows[-1][0] if rows else 0
        while args.follow:
            sys.stdout.flush()
            time.sleep(0.5)
            for seq, r in trail.query(**filters, after_seq=last):
                print(json.dumps({"seq": seq, **r}) if args.json else "  ".join(_row(seq, r)))
                last = seq
        return 0
    finally:
        trail.close()


def _syslog(doc: dict[str, Any], host: str) -> str:
    """RFC 5424, facility log audit (13), severity informational (6): PRI 110."""
    if doc["type"] == "record":
        body = json.loads(doc["body"])
        ts = dt.datetime.fromtimestamp(body["time"], dt.UTC).isoformat().replace("+00:00", "Z")
        sd = f'[moorage@32473 type="record" seq="{doc["seq"]}" prev="{doc["prev"]}" hash="{doc["hash"]}"]'
        return f"<110>1 {ts} {host} moorage - audit {sd} {doc['body']}"
    ts = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
    if doc["type"] == "checkpoint":
        note = doc["note"].replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]").replace("\n", "\\n")
        sd = f'[moorage@32473 type="checkpoint" size="{doc["size"]}" note="{note}"]'
        return f"<110>1 {ts} {host} moorage - checkpoint {sd} -"
    sd = f'[moorage@32473 type="anchor" seq="{doc["seq"]}" hash="{doc["hash"]}"]'
    return f"<110>1 {ts} {host} moorage - anchor {sd} -"


def _export(args: argparse.Namespace) -> int:
    trail = _open(args)
    out = open(args.out, "w") if args.out else sys.stdout  # noqa: SIM115
    try:
        host = socket.gethostname()
        for doc in trail.export_lines():
            line = json.dumps(doc, separators=(",", ":")) if args.format == "jsonl" else _syslog(doc, host)
            out.write(line + "\n")
    finally:
        if args.out:
            out.close()
        trail.close()
    return 0


def _archive(args: argparse.Namespace) -> int:
    trail = _open(args)
    try:
        moved = trail.archive(args.upto, args.out)
    finally:
        trail.close()
    print(f"moved {moved} record(s) to {args.out}; verify it with: moorage audit verify --file {args.out}")
    return 0


def _rotate(args: argparse.Namespace) -> int:
    db, keys = _paths(args)
    old = sorted(k.hex() for k in keys.verifiers())
    keys.rotate()
    new = sorted(set(k.hex() for k in keys.verifiers()) - set(old))
    record_admin(db.parent, "admin.audit-key.rotate", new[0] if new else None, {"previous": old})
    print(f"new checkpoint key in {keys.folder}; earlier public keys are kept for verification. "
          "A running gateway signs with the new key after its next restart.")  # fmt: skip
    return 0
