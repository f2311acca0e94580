"""``moorage cluster deploy``: run the gateway as a global Swarm service on the
managers (see :mod:`moorage.cluster.deploy`). It talks to a manager's engine directly,
as an administrator setting Moorage up does."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

from moorage.cli._output import emit_json, paint, step
from moorage.cli._paths import default_data_dir
from moorage.cli.store import add_store_options, store_spec
from moorage.cli.up import engine_client
from moorage.cluster.deploy import Deployment, deploy
from moorage.gateway.upstream import Upstream

__all__ = ["parse_mount", "register"]


def register(cc: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``deploy`` to ``moorage cluster``."""
    d = cc.add_parser(
        "deploy", help="run the gateway as a global service on the managers (store URL as a secret)"
    )
    d.add_argument("--image", required=True, help="an image with Moorage installed (its `moorage` on PATH)")
    add_store_options(d)
    d.add_argument("--name", default="moorage", help="the service's name (default moorage)")
    d.add_argument("--command", default="moorage", help="how the image runs Moorage (default: moorage)")
    d.add_argument("--port", type=int, default=2376, help="the TLS port each manager publishes (host mode)")
    d.add_argument("--pki", type=Path, help="the CA every gateway issues and checks certificates with "
                   "(ca.pem, ca-key.pem; default DATA_DIR/pki when it exists)")  # fmt: skip
    d.add_argument("--audit-keys", type=Path, help="the checkpoint key folder every gateway signs with "
                   "(default DATA_DIR/audit-keys when it exists)")  # fmt: skip
    d.add_argument("--engine", help="a manager's engine (default: $DOCKER_HOST)")
    d.add_argument("--engine-socket", default="/var/run/docker.sock",
                   help="each node's engine socket on that node (Swarm templates such as {{.Node.Hostname}} "
                   "are expanded per node; default /var/run/docker.sock)")  # fmt: skip
    d.add_argument("--mount", action="append", default=[], metavar="type=bind,source=S,target=T[,readonly]",
                   help="mount more into each task, as docker service create --mount does")  # fmt: skip
    d.add_argument("--data-dir", type=Path)
    d.add_argument("--json", action="store_true")
    d.add_argument("up_args", nargs=argparse.REMAINDER, help="after --: more `moorage up` options")
    d.set_defaults(func=_deploy)


def parse_mount(text: str) -> dict[str, Any]:
    """``docker service create --mount``'s syntax as an Engine API Mount object."""
    out: dict[str, Any] = {"Type": "volume"}
    names = {"type": "Type", "source": "Source", "src": "Source", "target": "Target", "destination": "Target",
             "dst": "Target"}  # fmt: skip
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if key in ("readonly", "ro") and (not sep or value in ("1", "true")):
            out["ReadOnly"] = True
        elif key in names and sep:
            out[names[key]] = value
        else:
            raise ValueError(f"--mount {text}: {part!r} is not type=, source=, target= or readonly")
    if "Target" not in out:
        raise ValueError(f"--mount {text}: a mount needs target=PATH")
    return out


def _deploy(args: argparse.Namespace) -> int:
    url = store_spec(args)
    if not url or not url.startswith(("postgresql://", "postgres://")):
        raise ValueError(
            "--store postgresql://USER@HOST/DB: gateways on several managers share one PostgreSQL"
        )
    data = args.data_dir or default_data_dir()
    pki = args.pki or (data / "pki" if (data / "pki/ca-key.pem").exists() else None)
    keys = args.audit_keys or (data / "audit-keys" if (data / "audit-keys").is_dir() else None)
    extra = tuple(a for a in args.up_args if a != "--")
    spec = Deployment(image=args.image, store_url=url, name=args.name, port=args.port, pki=pki,
                      audit_keys=keys, args=extra, mounts=tuple(parse_mount(m) for m in args.mount),
                      engine_socket=args.engine_socket, command=tuple(shlex.split(args.command)))  # fmt: skip
    upstream = Upstream(args.engine) if args.engine else Upstream.from_env()
    service_id, created = deploy(engine_client(upstream), spec)
    if args.json:
        emit_json({"service": service_id, "created": created, "secrets": [n for n, _, _ in spec.secrets()]})
        return 0
    step(f"secrets: {', '.join(n for n, _, _ in spec.secrets())}")
    verb = "created" if created else "updated"
    print(f"{paint(args.name, 'bold')} {verb} ({service_id[:12]}): one gateway per manager, "
          f"TLS on port {args.port} of each (docker service ps {args.name})")  # fmt: skip
    if pki is None:
        print(paint("no shared CA given (--pki): each gateway makes its own, so a certificate from one "
                    "is refused by the others", "yellow"))  # fmt: skip
    return 0
