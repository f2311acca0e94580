"""``moorage store``: the store's schema versions, and migrating them."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Any, Protocol

from moorage.cli._output import emit_json, paint, step, table
from moorage.cli._paths import default_data_dir
from moorage.store import SchemaError, Store, StoreError, open_store
from moorage.store.fleet import heartbeat, seen
from moorage.store.schema import AREAS, latest

log = logging.getLogger("moorage.store")

__all__ = ["add_store_options", "beat", "open_checked", "register", "store_spec"]


def add_store_options(p: argparse.ArgumentParser) -> None:
    """``--store URL`` and ``--store-file FILE`` (a Swarm secret holding the URL)."""
    p.add_argument("--store", metavar="URL",
                   help="where shared state lives: postgresql://USER@HOST/DB for several gateways, or a "
                   "folder (default: $MOORAGE_STORE, else the data folder, SQLite)")  # fmt: skip
    p.add_argument("--store-file", type=Path, metavar="FILE",
                   help="read the store URL from FILE (e.g. /run/secrets/moorage-store)")  # fmt: skip


def store_spec(args: argparse.Namespace) -> str | None:
    """The store URL the options (or ``$MOORAGE_STORE``) name; None for the data folder."""
    if getattr(args, "store_file", None) is not None:
        return str(args.store_file.read_text().strip())
    return getattr(args, "store", None) or os.environ.get("MOORAGE_STORE") or None


def open_checked(args: argparse.Namespace, data: Path) -> Store:
    """The store ``moorage up`` runs on, checked: a new PostgreSQL database is
    migrated; one at another schema version is refused (newer: upgrade Moorage; older:
    moorage store migrate). An embedded SQLite store migrates as each area opens."""
    store = open_store(store_spec(args), data)
    if store.kind == "postgresql":
        have = store.versions()
        if not any(have.values()):
            store.migrate()
        elif any(v != latest(area) for area, v in have.items()):
            wrong = ", ".join(f"{a} {v} (needs {latest(a)})" for a, v in have.items() if v != latest(a))
            newer = any(v > latest(a) for a, v in have.items())
            raise SchemaError(
                f"the store {store.describe()} is at another schema version: {wrong}; "
                + ("upgrade Moorage" if newer else "run moorage store migrate --store URL")
            )
    return store


class _Versioned(Protocol):
    @property
    def policies(self) -> Any: ...


async def beat(store: Store, name: str, admission: _Versioned, every: float = 10.0) -> None:
    """Tell the store, every ``every`` seconds, that this gateway runs its policy version,
    and warn when another gateway sharing the store runs another."""
    db = await asyncio.to_thread(store.database, "gateways")
    started = time.time()
    warned: set[str] = set()
    while True:
        version = str(getattr(admission.policies, "version", ""))
        try:
            await asyncio.to_thread(heartbeat, db, name, version, started)
            others = await asyncio.to_thread(seen, db, 3 * every)
        except StoreError as exc:
            log.warning("could not tell the store this gateway is alive: %s", exc)
            others = []
        for g in others:
            if g.policy_version != version and g.name not in warned:
                warned.add(g.name)
                log.warning("gateway %s decides with policy version %s, this one with %s: every "
                            "gateway sharing a store must run the same policy",
                            g.name, g.policy_version, version)  # fmt: skip
        await asyncio.sleep(every)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``moorage store status|migrate``."""
    p = sub.add_parser("store", help="the shared store: schema versions and migrations")
    s = p.add_subparsers(dest="store_cmd", required=True, metavar="COMMAND")
    st = s.add_parser("status", help="each area's schema version, and what a migration would apply")
    mg = s.add_parser("migrate", help="apply the migrations the store lacks (before a newer gateway starts)")
    for q in (st, mg):
        add_store_options(q)
        q.add_argument("--data-dir", type=Path, help="the SQLite store's folder when no --store is given")
        q.add_argument("--json", action="store_true", help="print JSON")
    st.set_defaults(func=_status)
    mg.set_defaults(func=_migrate)


def _open(args: argparse.Namespace) -> Store:
    return open_store(store_spec(args), args.data_dir or default_data_dir())


def _status(args: argparse.Namespace) -> int:
    store = _open(args)
    try:
        have = store.versions()
        gateways = seen(store.database("gateways")) if have["gateways"] == latest("gateways") else []
    finally:
        store.close()
    rows: list[dict[str, Any]] = []
    for area in AREAS:
        pending = [m for m in AREAS[area] if m.version > have[area]]
        state = ("newer than this moorage" if have[area] > latest(area)
                 else f"{len(pending)} to apply" if pending else "current")  # fmt: skip
        rows.append({"area": area, "version": have[area], "latest": latest(area), "state": state,
                     "pending": [f"{m.version}: {m.description}" for m in pending]})  # fmt: skip
    if args.json:
        emit_json({"store": store.describe(), "kind": store.kind, "areas": rows,
                   "gateways": [g.__dict__ for g in gateways]})  # fmt: skip
        return 0
    print(f"store  {store.describe()} ({store.kind})\n")
    colour = {"current": "green", "newer than this moorage": "red"}
    if gateways:
        versions = {g.policy_version for g in gateways}
        print(table(["GATEWAY", "POLICY", "SEEN"],
                    [[g.name, paint(g.policy_version, "red" if len(versions) > 1 else "green"),
                      f"{time.time() - g.seen_at:.0f} s ago"] for g in gateways]))  # fmt: skip
        print()
    print(table(["AREA", "VERSION", "LATEST", "STATE"],
                [[r["area"], str(r["version"]), str(r["latest"]),
                  paint(str(r["state"]), colour.get(str(r["state"]), "yellow"))] for r in rows]))  # fmt: skip
    return 0 if all(r["version"] <= r["latest"] for r in rows) else 1


def _migrate(args: argparse.Namespace) -> int:
    store = _open(args)
    try:
        applied = store.migrate()
        have = store.versions()
    finally:
        store.close()
    if args.json:
        done = [{"area": a, "version": v, "description": d} for a, v, d in applied]
        emit_json({"store": store.describe(), "applied": done, "versions": have})
        return 0
    for area, version, description in applied:
        step(f"{area} {version}: {description}")
    summary = f"{len(applied)} migration(s) applied" if applied else "already current"
    print(f"{store.describe()}: {summary}")
    return 0
