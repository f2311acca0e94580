"""``moorage console``: a one-time link that signs you in to the web console as the
gateway already knows you (your client certificate from ``moorage login``, or your
uid on the gateway's unix socket)."""

from __future__ import annotations

import argparse
import os
import webbrowser

from moorage.cli._output import emit_json, error, paint
from moorage.cli.exception import GatewayClientError, call
from moorage.cli.login import _client, _request

__all__ = ["register"]

PATH = "/moorage/v1/console/session"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``moorage console`` to the command line."""
    p = sub.add_parser("console", help="sign in to the web console with your certificate (a one-time link)")
    p.add_argument("--context", default="moorage", help="the docker context moorage login wrote (TLS)")
    p.add_argument("--host", help="the gateway's unix socket instead (unix:///PATH; default: $DOCKER_HOST "
                   "when it is a unix:// URL)")  # fmt: skip
    p.add_argument("--open", action="store_true", help="open the link in a browser")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_console)


def _console(args: argparse.Namespace) -> int:
    host = args.host or os.environ.get("DOCKER_HOST", "")
    try:
        if host.startswith("unix://"):
            out = call(host, "POST", PATH, {})
        else:
            gateway, ca, client = _client(args.context)
            out = _request(gateway, ca, "POST", PATH, {}, client)
    except GatewayClientError as exc:
        error(str(exc))
        return 1
    if args.json:
        emit_json(out)
        return 0
    if not out.get("url", "").startswith("http"):
        error(
            "the gateway serves its console on another worker or not at all: moorage up --console HOST:PORT"
        )
        return 1
    print(f"Sign in as {paint(out['user'], 'bold')} (works once, within {out['expires_in']:.0f} s):")
    print(f"  {out['url']}")
    if args.open:
        webbrowser.open(out["url"])
    return 0
