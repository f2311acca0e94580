"""``moorage up``: run the gateway in front of a Docker engine (the main job)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

from moorage.admission.exceptions import ExceptionStore
from moorage.admission.pipeline import PolicyAdmission
from moorage.admission.sweeper import ComplianceResults
from moorage.audit.admin import record_admin
from moorage.audit.factory import open_trail
from moorage.audit.keys import KeyRing
from moorage.cli import login
from moorage.cli._output import paint, step
from moorage.cli._paths import default_data_dir
from moorage.cli.store import add_store_options, beat, open_checked
from moorage.cluster.attestation import key_id
from moorage.cluster.reconciler import Reconciler
from moorage.cluster.store import ClusterStore
from moorage.cluster.trust import ClusterTrust
from moorage.console.serve import start as start_console
from moorage.engine import EngineClient
from moorage.gateway.config import GatewayConfig
from moorage.gateway.server import Gateway
from moorage.gateway.upstream import Upstream
from moorage.gateway.workers import KeyLocks, Supervisor, bind_unix, default_workers, lead, reserve_port
from moorage.identity import IdentityError, UserDirectory
from moorage.identity.certs import CertStore
from moorage.identity.login import LoginService, load_identity
from moorage.identity.pki import Pki
from moorage.identity.users import UsersFileProvider
from moorage.images.sign import parse_public_keys
from moorage.lab import Lab, LabError
from moorage.policy.loader import builtin_set
from moorage.store import Store

log = logging.getLogger("moorage.up")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``moorage up`` (run the gateway) to the command line."""
    p = sub.add_parser("up", help="run the gateway in front of a Docker engine")
    p.add_argument(
        "--lab", metavar="NAME", help="in front of lab NAME's manager (node 1), governing its swarm"
    )
    p.add_argument("--upstream", help="engine URL (default: $DOCKER_HOST, else unix:///var/run/docker.sock)")
    p.add_argument("--listen", help="unix socket to serve (default: DATA_DIR/docker.sock)")
    p.add_argument("--tls-listen", metavar="HOST:PORT", help="also serve TCP+TLS with client certificates")
    p.add_argument("--data-dir", type=Path, help="state folder (default /var/lib/moorage as root)")
    add_store_options(p)
    p.add_argument(
        "--ignore-file",
        type=Path,
        help="vulnerability suppressions, .trivyignore.yaml shape (default: DATA_DIR/ignore.yaml)",
    )
    p.add_argument("--identity", type=Path, metavar="FILE",
                   help="identity providers and mapping for moorage login (needs --tls-listen)")  # fmt: skip
    p.add_argument("--identity-sync", type=float, default=300.0, metavar="SECONDS",
                   help="seconds between asking the directory again about logins (default 300)")  # fmt: skip
    p.add_argument("--users", type=Path, help="users file (default: DATA_DIR/users.yaml if present)")
    p.add_argument(
        "--allow-unknown-fields",
        action="store_true",
        help="forward request body fields Moorage's Engine API models don't know (each is named in the "
        "audit record); by default a change that carries one is refused",
    )
    p.add_argument(
        "--cluster", choices=["auto", "on", "off"], default="auto",
        help="govern Swarm placement: enrolled and attested nodes, the reconciler (auto: when the "
        "engine is a Swarm manager)",
    )  # fmt: skip
    p.add_argument("--reconcile-interval", type=float, default=5.0, metavar="SECONDS",
                   help="seconds between sweeps, besides node events (default 5)")  # fmt: skip
    p.add_argument("--workers", type=int, default=default_workers(), metavar="N",
                   help="gateway processes sharing the listeners (default: one per core, here "
                   f"{default_workers()})")  # fmt: skip
    p.add_argument("--fast-path", choices=["on", "off"], default="on",
                   help="carry plain reads on the fast path (default on; off: every request on the "
                   "full path, for comparison)")  # fmt: skip
    for hidden in ("--worker-index", "--worker-ready-fd", "--worker-fd"):
        p.add_argument(hidden, type=int, help=argparse.SUPPRESS)
    p.add_argument("--console", default="127.0.0.1:9780", metavar="HOST:PORT",
                   help="serve the web console here (default 127.0.0.1:9780; port 0: any; off)")  # fmt: skip
    p.add_argument("--compliance-interval", type=float, default=3600.0, metavar="SECONDS",
                   help="judge running objects at least this often, and on changes (0: never)")  # fmt: skip
    p.add_argument("--context", default="moorage", help="docker context to create or update ('' to skip)")
    p.add_argument(
        "--policy",
        type=Path,
        help="policy folder or file (reloaded on SIGHUP and when a file changes; "
        "default: the built-in packs below)",
    )
    p.add_argument(
        "--enforce",
        default="baseline",
        choices=["baseline", "restricted", "off"],
        help="built-in pack that denies (default baseline)",
    )
    p.add_argument(
        "--audit-pack",
        default="restricted",
        choices=["baseline", "restricted", "off"],
        help="built-in pack that is only recorded (default restricted)",
    )
    p.set_defaults(func=_up)

    c = sub.add_parser("cert", help="client certificates for the TLS listener")
    cc = c.add_subparsers(dest="cert_cmd", required=True, metavar="COMMAND")
    i = cc.add_parser("issue", help="issue a client certificate (ca.pem, cert.pem, key.pem)")
    i.add_argument("name", help="the user name (certificate CN) from the users file")
    i.add_argument("--out", type=Path, required=True, help="folder to write, usable as DOCKER_CERT_PATH")
    i.add_argument("--data-dir", type=Path)
    i.set_defaults(func=_issue)
    login.register_cert(cc)


def _issue(args: argparse.Namespace) -> int:
    data = args.data_dir or default_data_dir()
    pki = Pki(data / "pki")
    pki.issue(args.out, args.name)
    record_admin(data, "admin.cert.issue", args.name, {"out": str(args.out)})
    print(f"wrote {args.out}/ca.pem, cert.pem, key.pem for {args.name!r}")
    print(
        f"use: docker --tlsverify --tlscacert {args.out}/ca.pem --tlscert {args.out}/cert.pem "
        f"--tlskey {args.out}/key.pem -H tcp://HOST:PORT ...   (or DOCKER_CERT_PATH={args.out})"
    )
    return 0


def _docker_context(name: str, host: str) -> str | None:
    docker = shutil.which("docker")
    if not name or docker is None:
        return None
    exists = subprocess.run([docker, "context", "inspect", name], capture_output=True).returncode == 0
    verb = "update" if exists else "create"
    proc = subprocess.run(
        [docker, "context", verb, name, "--description", "Moorage gateway", "--docker", f"host={host}"],
        capture_output=True, text=True,
    )  # fmt: skip
    if proc.returncode != 0:
        step(f"could not {verb} docker context {name!r}: {proc.stderr.strip()}")
        return None
    return name


def _up(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    data = args.data_dir or default_data_dir()
    data.mkdir(parents=True, exist_ok=True)
    if args.lab:
        lab = Lab(args.lab)
        if lab.state() is None:
            raise LabError(
                f"no lab named {args.lab!r}: start it with moorage lab up --name {args.lab} --nodes 3"
            )
        args.upstream = lab.docker_host(1)
        if args.cluster == "auto":
            args.cluster = "on" if lab.nodes > 1 else "off"
    upstream = Upstream(args.upstream) if args.upstream else Upstream.from_env()
    if not engine_client(upstream).ping():
        raise LabError(
            f"no Docker engine answers at {upstream.url}. Start one (for example "
            '`moorage lab up`, then `eval "$(moorage lab env)"`) or pass --upstream URL'
        )
    users_file = args.users or (data / "users.yaml")
    users = UserDirectory.from_file(users_file) if users_file.exists() else UserDirectory()
    listen = listen_path(args.listen) if args.listen else str(data / "docker.sock")
    if args.workers > 1 and args.worker_index is None:
        return _supervise(args, listen)
    first_worker = not args.worker_index  # the only worker, or worker 0: its banner is the one shown
    store = open_checked(args, data)
    trail = open_trail(store, KeyRing(data / "audit-keys"))
    exceptions = ExceptionStore(store.database("exceptions"))
    from moorage.admission.images import ImageGate
    from moorage.images.scanner import Scanner
    from moorage.images.vulns.osv import OsvDatabase

    gate = ImageGate(Scanner(data / "image-cache", OsvDatabase(data / "vulndb.sqlite")),
                     engine_client(upstream, timeout=300),
                     ignore_file=args.ignore_file or data / "ignore.yaml")  # fmt: skip
    cluster = _cluster_trust(args, upstream, users, store)
    compliance = ComplianceResults(store.database("compliance"))
    if args.policy is not None:
        admission = PolicyAdmission(source=args.policy, exceptions=exceptions, images=gate, cluster=cluster,
                                    compliance=compliance)  # fmt: skip
        policy_note = f"{args.policy} (version {admission.policies.version}; reload: SIGHUP or edit)"
    else:
        packs = builtin_set(None if args.enforce == "off" else args.enforce,
                            None if args.audit_pack == "off" else args.audit_pack)  # fmt: skip
        admission = PolicyAdmission(
            packs, exceptions=exceptions, images=gate, cluster=cluster, compliance=compliance
        )
        policy_note = f"{args.enforce} enforced, {args.audit_pack} in audit"
    if args.allow_unknown_fields:
        log.warning("--allow-unknown-fields: body fields Moorage doesn't know pass unjudged (recorded)")
    login = None
    if args.identity is not None:
        if not args.tls_listen:
            raise IdentityError(
                "--identity needs --tls-listen HOST:PORT: moorage login uses the TLS listener"
            )
        login = load_identity(args.identity, CertStore(store.database("certs"), Pki(data / "pki")))
        login.providers["users"] = UsersFileProvider(users)
    config = GatewayConfig(data=data, admin_uids=tuple({0, os.geteuid()}), fast_path=args.fast_path == "on",
                           allow_unknown_fields=args.allow_unknown_fields)  # fmt: skip
    gateway = Gateway.from_config(config, upstream, users, admission, trail, exceptions, cluster, login)
    if args.worker_index is not None or store.kind == "postgresql":
        gateway.key_locks = KeyLocks(store)  # quotas hold across workers and gateways

    async def main() -> None:
        inherited = socket.socket(fileno=args.worker_fd) if args.worker_fd is not None else None
        await gateway.listen_unix(listen, sock=inherited)
        tls_note = ""
        if args.tls_listen:
            host, _, port = args.tls_listen.rpartition(":")
            pki = Pki(data / "pki")
            ctx = pki.server_context(data / "pki/server")
            if login is not None:
                # moorage login needs no client certificate; every other request does.
                # Expiry is the store's to judge, so an expired certificate gets "run
                # moorage login" instead of a failed handshake (OpenSSL X509_V_FLAG_NO_CHECK_TIME).
                ctx.verify_mode = ssl.CERT_OPTIONAL
                ctx.verify_flags |= ssl.VerifyFlags(0x200000)
            bound = await gateway.listen_tls(host or "127.0.0.1", int(port), ctx,
                                             reuse_port=args.worker_index is not None)  # fmt: skip
            tls_note = (
                f"\n  tls         tcp://{host or '127.0.0.1'}:{bound}"
                " (client certs: moorage cert issue NAME --out DIR)"
            )
        extras, console_url = await start_console(args, data, store, trail, exceptions, admission,
                                                  engine_client(upstream, timeout=300), gate, cluster, login,
                                                  gateway, first_worker)  # fmt: skip
        tls_note += (
            f"\n  console     {console_url} (sign in with moorage login's providers)" if console_url else ""
        )
        banner = (f"  listening   unix://{listen}{tls_note}\n  upstream    {upstream.url}\n"
                  f"  users       {users_file if users_file.exists() else '(none: only root/admin)'}\n"
                  f"  store       {store.describe()} ({store.kind})\n"
                  f"  audit       {data / 'audit.db' if store.kind == 'sqlite' else 'the store'}"
                  " (moorage audit log / verify)\n"
                  f"  policy      {policy_note}\n")  # fmt: skip
        if cluster is not None and first_worker:
            banner += (f"  cluster     governed: enrolled and attested nodes, reconciled every "
                       f"{args.reconcile_interval:g} s and on node events (moorage node ls)\n")  # fmt: skip
        if args.worker_ready_fd is not None:  # the supervisor prints it once every worker serves
            with os.fdopen(args.worker_ready_fd, "w") as ready:
                ready.write(banner)
        else:
            _banner(banner, args.context, listen)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        watcher = None
        reconciling = None
        # One gateway of all that share the store (and one of its workers) reconciles and
        # syncs identities: whichever holds the lease; another takes over when it dies.
        if cluster is not None:
            reconciler = Reconciler(cluster, gateway.upstream, gateway.record_event, args.reconcile_interval,
                                    events=lambda: gateway.upstream.lines(_NODE_EVENTS))  # fmt: skip
            reconciling = asyncio.ensure_future(lead(store, "reconciler", reconciler.run))
        beating = asyncio.ensure_future(beat(store, f"{socket.gethostname()}:{listen}", admission))
        syncing = None
        if login is not None:
            syncing = asyncio.ensure_future(
                lead(store, "identity-sync", lambda: _identity_sync(login, gateway, args.identity_sync))
            )
        if args.policy is not None:
            loop.add_signal_handler(signal.SIGHUP, admission.reload)
            watcher = asyncio.ensure_future(admission.watch())
        await stop.wait()
        for task in (watcher, reconciling, syncing, beating, *extras):
            if task is not None:
                task.cancel()
        await gateway.close()
        trail.close()  # signs a final checkpoint

    _run(main())
    return 0


def _banner(banner: str, context_name: str, listen: str) -> None:
    context = _docker_context(context_name, f"unix://{listen}")
    print(paint("Moorage gateway is up.", "green"))
    print(banner, end="")
    if context:
        print(f"Use it:  docker --context {context} ps     (or: docker context use {context})")
    else:
        print(f"Use it:  DOCKER_HOST=unix://{listen} docker ps")
    print("", flush=True)


def _supervise(args: argparse.Namespace, listen: str) -> int:
    """Run ``args.workers`` gateway processes on shared listeners (gateway/workers.py)."""
    sock = bind_unix(listen)
    argv = [sys.executable, "-m", "moorage.cli.main", *sys.argv[1:], "--worker-fd", str(sock.fileno())]
    reserved = None
    if args.tls_listen:
        host, _, port = args.tls_listen.rpartition(":")
        reserved, bound = reserve_port(host or "127.0.0.1", int(port))
        argv += ["--tls-listen", f"{host or '127.0.0.1'}:{bound}"]
    supervisor = Supervisor(argv, (sock.fileno(),))
    banner = supervisor.start(0)  # first alone: it makes the data folder's keys and stores
    for index in range(1, args.workers):
        supervisor.start(index)
    pids = ", ".join(str(p.pid) for p in supervisor.procs.values())
    _banner(f"{banner}  workers     {args.workers} (pids {pids})\n", args.context, listen)
    try:
        return supervisor.run()
    finally:
        sock.close()
        if reserved is not None:
            reserved.close()


async def _identity_sync(login: LoginService, gateway: Gateway, interval: float) -> None:
    """Revoke the certificates of people the directory no longer vouches for."""
    while True:
        await asyncio.sleep(interval)
        try:
            revoked = await asyncio.to_thread(login.sync)
        except Exception:  # keep syncing; the next round tries again
            log.exception("identity sync failed")
            continue
        for serial, user, reason in revoked:
            log.info("revoked certificate %s of %s: %s", serial, user, reason)
            await gateway.record_event("identity.revoke", serial, reason, {"user": user, "serial": serial})


_NODE_EVENTS = "/events?filters=" + quote(json.dumps({"type": ["node"]}))


def _cluster_trust(args: argparse.Namespace, upstream: Upstream, users: UserDirectory,
                   store: Store) -> ClusterTrust | None:  # fmt: skip
    """The cluster's governance, when asked for or (auto) when the engine manages a swarm."""
    if args.cluster == "off":
        return None
    if args.cluster == "auto":
        info = engine_client(upstream).call("GET", "/info")
        if not (isinstance(info, dict) and (info.get("Swarm") or {}).get("ControlAvailable")):
            return None
    keys = {}
    for user, pem in users.officer_keys():
        for pub in parse_public_keys(pem.encode(), f"users.{user}.keys"):
            keys[key_id(pub)] = (user, pub)
    if not keys:
        log.warning(
            "cluster: no security officer has a signing key (users.NAME.keys): nothing can be attested"
        )
    return ClusterTrust(ClusterStore(store.database("cluster")), lambda: keys)


def engine_client(upstream: Upstream, timeout: float = 60.0) -> EngineClient:
    """A synchronous client for the same engine the gateway forwards to, unix or TCP
    (with the upstream's TLS): image trust inspects and exports images through it."""
    if upstream.path is not None:
        return EngineClient(upstream.path, timeout=timeout)
    assert upstream.host is not None and upstream.port is not None
    return EngineClient(None, timeout=timeout, tcp=(upstream.host, upstream.port), tls=upstream.tls)


def listen_path(value: str) -> str:
    """``--listen`` as ``DOCKER_HOST`` and ``dockerd -H`` spell it: ``unix:///path`` or a
    bare path. Another scheme is an error, not a folder named after it."""
    if value.startswith("unix://"):
        path = value[len("unix://") :]
        if not path.startswith("/"):
            raise ValueError(
                f"--listen {value}: a unix:// URL names an absolute path (unix:///run/moorage.sock)"
            )
        return path
    if "://" in value:
        raise ValueError(
            f"--listen {value}: only unix:// URLs or paths (TCP with TLS is --tls-listen HOST:PORT)"
        )
    return value


def _run(coro: Any) -> None:
    """Run on uvloop where installed: the gateway is I/O-bound and uvloop roughly
    halves the per-request cost of asyncio streams."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
    else:
        uvloop.run(coro)
