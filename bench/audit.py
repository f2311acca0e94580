"""Audit trail throughput: durable appends under 32 writers, verification speed, and
the latency it adds to a gateway request.

    python bench/audit.py [--quick] [--store postgresql[://URL]] [--gateways N]

With --store postgresql, durable appends per second to the one chain N gateway
processes share (default 3, each with 32 concurrent writers), measured in the same
run beside SQLite's; without a URL a private PostgreSQL (fsync on) is started for it.

Appends: 32 asyncio tasks each awaiting its own record (as 32 gateway connections
do), SQLite WAL with synchronous=FULL, group commit. Verification: a 100,000-record
trail. Gateway: /_ping through an in-process gateway in front of a tiny local stub
engine, with no audit sink and with the trail, 1 client, median.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import shutil
import socket
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from moorage.admission import UnsafeAllowAll
from moorage.admission.owners import ImageOwners
from moorage.admission.tenancy import SharedObjects
from moorage.audit import AuditRecord
from moorage.audit.chain import GENESIS, canonical, link
from moorage.audit.trail import AuditTrail, KeyRing
from moorage.gateway.http import Limits
from moorage.gateway.server import Gateway
from moorage.gateway.upstream import Upstream
from moorage.identity import UserDirectory


def record(i: int) -> AuditRecord:
    return AuditRecord(time=time.time(), request_id=f"{i:016x}", user="alice", teams=("payments",),
                       roles=("developer",), auth="peercred", source="unix:uid=1001,pid=1",
                       method="POST", path="/v1.47/containers/create", kind="container.create",
                       object_ref=None, decision="allow", reason="", status=201, duration_ms=1.5,
                       summary={"image": "registry.local/app:1.2"})  # fmt: skip


async def appends(trail: AuditTrail, writers: int, seconds: float) -> int:
    count = 0
    end = time.perf_counter() + seconds

    async def writer(w: int) -> None:
        nonlocal count
        i = 0
        while time.perf_counter() < end:
            await trail.record_async(record(w * 10_000_000 + i))
            i += 1
            count += 1

    await asyncio.gather(*(writer(w) for w in range(writers)))
    return count


def build_trail(path: Path, keys: KeyRing, n: int) -> None:
    trail = AuditTrail(path, keys)
    trail.close()
    db = sqlite3.connect(path)
    prev = GENESIS
    rows = []
    for i in range(n):
        body = canonical(record(i).to_dict())
        digest = link(prev, body)
        rows.append((i + 1, body, prev, digest))
        prev = digest
    db.executemany("INSERT INTO records VALUES (?, ?, ?, ?)", rows)
    db.commit()
    db.close()


def stub_engine(path: Path) -> None:
    """Answers every request with a small 200, keep-alive: isolates the gateway's cost."""
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(path))
    srv.listen(64)
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nOK"

    def serve(conn: socket.socket) -> None:
        buf = b""
        while True:
            data = conn.recv(65536)
            if not data:
                return
            buf += data
            while b"\r\n\r\n" in buf:
                _, _, buf = buf.partition(b"\r\n\r\n")
                conn.sendall(answer)

    def accept() -> None:
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()


async def gateway_latency(engine: Path, sock: Path, audit: AuditTrail | None, n: int) -> float:
    gw = Gateway(Upstream(f"unix://{engine}"), users=UserDirectory(), admission=UnsafeAllowAll(), audit=audit,
                 limits=Limits(), admin_uids=(0,), clock=time.time, exceptions=None, fast_path=True,
                 shared=SharedObjects(), owners=ImageOwners(), allow_unknown_fields=False, cluster=None,
                 login=None)  # fmt: skip
    await gw.listen_unix(str(sock))
    reader, writer = await asyncio.open_unix_connection(str(sock))
    times = []
    for _ in range(n):
        t = time.perf_counter()
        writer.write(b"POST /containers/x/stop HTTP/1.1\r\nHost: d\r\n\r\n")  # state-changing: durable
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(2)
        times.append((time.perf_counter() - t) * 1000)
    writer.close()
    await gw.close()
    return statistics.median(times)


def _gateway(url: str, keys: str, seconds: float, start: float, out: mp.Queue[int]) -> None:
    from moorage.audit.shared import SharedTrail
    from moorage.store.postgres import PostgresStore

    trail = SharedTrail(PostgresStore(url), KeyRing(Path(keys)))
    time.sleep(max(0.0, start - time.time()))  # every gateway starts together
    done = asyncio.run(appends(trail, 32, seconds))  # type: ignore[arg-type]
    trail.close()
    out.put(done)


def shared_appends(url: str | None, gateways: int, seconds: float, keys: KeyRing) -> tuple[float, str]:
    """Durable appends per second to the chain ``gateways`` processes share; and
    whether the chain verifies afterwards."""
    from moorage.audit.shared import SharedTrail
    from moorage.store.postgres import PostgresStore

    with contextlib.ExitStack() as stack:
        if url is None:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
            from tests import pg_harness

            url = stack.enter_context(pg_harness.running(fsync=True)).url()
        store = PostgresStore(url)
        store.migrate()
        keys.signer()
        ctx = mp.get_context("spawn")
        out: mp.Queue[int] = ctx.Queue()
        start = time.time() + 3.0
        procs = [ctx.Process(target=_gateway, args=(url, str(keys.folder), seconds, start, out))
                 for _ in range(gateways)]  # fmt: skip
        for p in procs:
            p.start()
        total = sum(out.get(timeout=120) for _ in procs)
        for p in procs:
            p.join(30)
        reader = SharedTrail(store, keys, writer=False)
        ok = reader.verify().ok
        reader.close()
        store.close()
    return total / seconds, "verifies" if ok else "DOES NOT VERIFY"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--store", help="postgresql (a private cluster) or postgresql://URL: the shared chain too"
    )
    ap.add_argument("--gateways", type=int, default=3, help="gateway processes on the shared chain")
    args = ap.parse_args()
    seconds, n_verify, n_lat = (1.0, 20_000, 300) if args.quick else (5.0, 100_000, 2000)
    work = Path(tempfile.mkdtemp(prefix="moorage-audit-bench-"))
    try:
        keys = KeyRing(work / "keys")
        trail = AuditTrail(work / "appends.db", keys)
        done = asyncio.run(appends(trail, 32, seconds))
        trail.close()
        assert AuditTrail(work / "appends.db", keys, writer=False).verify().ok
        rate = done / seconds

        build_trail(work / "verify.db", keys, n_verify)
        reader = AuditTrail(work / "verify.db", keys, writer=False)
        t = time.perf_counter()
        result = reader.verify()
        elapsed = time.perf_counter() - t
        reader.close()
        assert result.ok and result.records == n_verify
        vrate = n_verify / elapsed

        # Gateway cost: /containers/x/stop is routed (admin, no tenancy lookup for root
        # is still an inspect), so use a path the stub answers directly
        stub_engine(work / "engine.sock")
        base = asyncio.run(gateway_latency(work / "engine.sock", work / "g1.sock", None, n_lat))
        trail2 = AuditTrail(work / "lat.db", keys)
        with_trail = asyncio.run(gateway_latency(work / "engine.sock", work / "g2.sock", trail2, n_lat))
        trail2.close()
        shared = None
        if args.store:
            url = None if args.store == "postgresql" else args.store
            shared = shared_appends(url, args.gateways, seconds, KeyRing(work / "shared-keys"))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"{'metric':<42}{'value':>14}  budget")
    print(f"{'durable appends/s, 32 concurrent writers':<42}{rate:>14,.0f}  >= 5,000")
    if shared is not None:
        label = f"shared chain, {args.gateways} gateways x 32 writers"
        print(f"{label:<42}{shared[0]:>14,.0f}  >= 5,000 (PostgreSQL; the chain {shared[1]})")
    print(f"{'records verified/s':<42}{vrate:>14,.0f}  >= 200,000")
    print(f"{'gateway request median, no audit (ms)':<42}{base:>14.3f}")
    print(f"{'gateway request median, trail (ms)':<42}{with_trail:>14.3f}")
    print(f"{'added by the durable record (ms)':<42}{with_trail - base:>14.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
