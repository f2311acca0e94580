"""``moorage lab``: start and control local engines, a Swarm and a registry."""

from __future__ import annotations

import argparse

from moorage.cli._output import emit_json, paint, step, table
from moorage.lab import (
    Lab,
    LabError,
    LabStatus,
    build_busybox,
    build_debian,
    cleanup_stale,
    list_labs,
    load_into,
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``moorage lab`` (up, status, env, down, image and node control) to the command line."""
    lab = sub.add_parser("lab", help="local Docker engines and a Swarm for trying and testing")
    cmds = lab.add_subparsers(dest="lab_cmd", required=True, metavar="COMMAND")

    def named(name: str, help: str) -> argparse.ArgumentParser:
        p = cmds.add_parser(name, help=help)
        p.add_argument("--name", default="default", help="lab name (default: default)")
        p.add_argument("--json", action="store_true", help="machine-readable output")
        return p

    p = named("up", "start N dockerds (a Swarm when N > 1), optionally a registry")
    p.add_argument("--nodes", type=int, default=1, help="number of engines (1-9)")
    p.add_argument("--registry", action="store_true", help="add a registry on 127.0.0.1")
    p.set_defaults(func=_up)
    named("status", "show the lab's nodes and registry").set_defaults(func=_status)
    p = named("env", "print DOCKER_HOST for the lab's nodes")
    p.add_argument("--node", type=int, default=1, help="node to export (default 1, the manager)")
    p.set_defaults(func=_env)
    p = named("down", "remove everything the lab made (safe to run twice)")
    p.add_argument("--all", action="store_true", help="remove every lab on this machine")
    p.add_argument("--stale", action="store_true", help="remove labs whose owning run has died")
    p.set_defaults(func=_down)
    for verb, help_ in [
        ("stop-node", "stop node K's dockerd"),
        ("start-node", "start node K's dockerd again"),
        ("cut-node", "cut node K off the lab network (a partition)"),
        ("heal-node", "reconnect node K to the lab network"),
    ]:
        p = named(verb, help_)
        p.add_argument("node", type=int, metavar="K")
        p.set_defaults(func=_node_action, verb=verb)
    p = named("image", "build a cached offline image and load it into every node")
    p.add_argument("kind", choices=["busybox", "debian"])
    p.add_argument("--rebuild", action="store_true", help="ignore the cache")
    p.add_argument("--mirror", help="Debian mirror for debootstrap (default: apt's own)")
    p.set_defaults(func=_image)


def _print_status(st: LabStatus, as_json: bool) -> None:
    if as_json:
        emit_json(st.to_json())
        return
    if not st.exists:
        print(f"lab {st.name!r} is not up")
        return
    rows = []
    for n in st.nodes:
        state = paint("running", "green") if n.running else paint("stopped", "red")
        net = "connected" if n.connected else paint("cut", "yellow")
        rows.append([str(n.node), n.role, state, net, n.swarm, n.docker_host])
    print(table(["NODE", "ROLE", "STATE", "NETWORK", "SWARM", "DOCKER_HOST"], rows))
    if st.registry:
        reg = paint("running", "green") if st.registry_running else paint("stopped", "red")
        print(f"\nregistry {st.registry} ({reg})")


def _up(args: argparse.Namespace) -> int:
    lab = Lab(args.name)
    st = lab.up(nodes=args.nodes, registry=args.registry, progress=step)
    if args.json:
        emit_json(st.to_json())
        return 0
    kind = "swarm" if args.nodes > 1 else "engine"
    print(paint(f"lab {args.name!r} is up: {args.nodes} node(s) ({kind})", "green"))
    _print_status(st, False)
    flag = "" if args.name == "default" else f" --name {args.name}"
    print(f'\nPoint docker at it:  eval "$(moorage lab env{flag})" && docker info')
    if st.registry:
        print(f"Push images as:      {st.registry}/REPO:TAG")
    return 0


def _status(args: argparse.Namespace) -> int:
    _print_status(Lab(args.name).status(), args.json)
    return 0


def _env(args: argparse.Namespace) -> int:
    lab = Lab(args.name)
    st = lab.status()
    if not st.exists:
        raise LabError(f"lab {lab.name!r} is not up. Start it with: moorage lab up --name {lab.name}")
    if args.json:
        emit_json({f"node{n.node}": n.docker_host for n in st.nodes})
        return 0
    print(f"export DOCKER_HOST={lab.docker_host(args.node)}")
    for n in st.nodes:
        print(f"# node {n.node} ({n.role}): DOCKER_HOST={n.docker_host}")
    return 0


def _down(args: argparse.Namespace) -> int:
    if args.stale:
        names = cleanup_stale(progress=step)
    else:
        names = [n for n in (list_labs() if args.all else [args.name]) if Lab(n).down()]
    if args.json:
        emit_json({"removed": names})
    elif names:
        print("removed lab(s): " + ", ".join(names))
    else:
        print("nothing to remove")
    return 0


def _node_action(args: argparse.Namespace) -> int:
    lab = Lab(args.name)
    action = {
        "stop-node": lab.stop_node,
        "start-node": lab.start_node,
        "cut-node": lab.cut_node,
        "heal-node": lab.heal_node,
    }[args.verb]
    action(args.node)
    _print_status(lab.status(), args.json)
    return 0


def _image(args: argparse.Namespace) -> int:
    if args.kind == "busybox":
        step("building busybox (FROM scratch + busybox-static)")
        archive = build_busybox(rebuild=args.rebuild)
    else:
        archive = build_debian(rebuild=args.rebuild, mirror=args.mirror, progress=step)
    lab = Lab(args.name)
    st = lab.status()
    running = [n.node for n in st.nodes if n.running]
    if running:
        step(f"loading {archive.ref} into node(s) {', '.join(map(str, running))}")
        load_into(archive, [lab.client(k) for k in running])
    if args.json:
        emit_json(
            {"ref": archive.ref, "id": archive.image_id, "archive": str(archive.path),
             "loaded_into": running}
        )  # fmt: skip
        return 0
    print(f"{archive.ref}  {archive.image_id[:19]}  (cached at {archive.path})")
    if not running:
        print(f"no running lab {args.name!r}: load it later with `docker load -i {archive.path}`")
    return 0
