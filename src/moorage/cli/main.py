"""Entry point of the ``moorage`` command."""

from __future__ import annotations

import argparse
import logging
import sys
import traceback

from moorage import __version__
from moorage.audit import AuditError
from moorage.cli import audit, compliance, console, exception, image, lab, login, map, node, policy, store, up
from moorage.cli._output import error
from moorage.cli.exception import GatewayClientError
from moorage.cluster.attestation import AttestationError
from moorage.engine import EngineError
from moorage.identity import IdentityError
from moorage.identity.pki import PkiError
from moorage.images.interface import ImageError
from moorage.lab import ImageBuildError, LabError
from moorage.policy.documents import PolicyError
from moorage.store import StoreError

# Errors whose message is written for a person; anything else is a bug and shows a
# short note, with the traceback only under --debug.
USER_ERRORS = (
    AuditError,
    LabError,
    ImageBuildError,
    EngineError,
    IdentityError,
    PkiError,
    PolicyError,
    GatewayClientError,
    AttestationError,
    ImageError,
    StoreError,
    ValueError,
    OSError,
)


def build_parser() -> argparse.ArgumentParser:
    """The whole ``moorage`` command line: one sub-command group per module of cli/."""
    parser = argparse.ArgumentParser(prog="moorage", description="Enterprise governance in front of Docker.")
    parser.add_argument("--version", action="version", version=f"moorage {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up.register(sub)
    lab.register(sub)
    audit.register(sub)
    policy.register(sub)
    exception.register(sub)
    image.register(sub)
    node.register(sub)
    login.register(sub)
    login.register_sa(sub)
    store.register(sub)
    compliance.register(sub)
    map.register(sub)
    console.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``moorage``; errors written for people print one line, anything else is a bug
    and shows its traceback only with ``--debug``. Returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # cel-python logs every evaluation error at WARNING; Moorage reports them in decisions
    logging.getLogger("celpy").setLevel(logging.ERROR)
    try:
        return int(args.func(args))
    except USER_ERRORS as exc:
        if args.debug:
            traceback.print_exc()
        error(str(exc))
        return 1
    except KeyboardInterrupt:
        error("interrupted")
        return 130
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        error(f"unexpected {type(exc).__name__}: {exc} (rerun with --debug for details)")
        return 1


if __name__ == "__main__":
    sys.exit(main())
