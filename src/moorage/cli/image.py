"""``moorage image`` (scan, sbom, sign, verify), ``moorage key`` and ``moorage db``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from moorage.cli._output import emit_json, error, paint, step, table
from moorage.images.cvss import rank
from moorage.images.formats.choice import OutputFormat
from moorage.images.ignore import load_ignore
from moorage.images.interface import ImageError, ImageSource
from moorage.images.reporting import inventory_run, scan_run
from moorage.images.scanner import Scanner
from moorage.images.sign import (
    generate_key,
    load_private_key,
    load_public_keys,
    registry_target,
    sign_image,
    verify_image,
)
from moorage.images.sources.choice import SourceChoice
from moorage.images.vulns.choice import VulnerabilitySourceChoice
from moorage.images.vulns.interface import VulnerabilitySource

__all__ = ["data_dir", "progress", "register"]

_SBOM_FORMATS = (OutputFormat.CYCLONEDX, OutputFormat.SPDX)


def data_dir() -> Path:
    """Moorage's data folder: ``$MOORAGE_DATA``, else the per-user default."""
    from moorage.cli._paths import default_data_dir

    return Path(os.environ["MOORAGE_DATA"]) if os.environ.get("MOORAGE_DATA") else default_data_dir()


def _db(args: argparse.Namespace) -> VulnerabilitySource:
    return VulnerabilitySourceChoice.OSV.to_source(args.db or data_dir() / "vulndb.sqlite")


def _password() -> bytes | None:
    pw = os.environ.get("MOORAGE_KEY_PASSWORD") or os.environ.get("COSIGN_PASSWORD")
    return pw.encode() if pw else None


def progress(label: str, n: int, total: int) -> None:
    """A progress bar on a terminal, a line per step otherwise (stderr either way)."""
    if not sys.stderr.isatty():
        if n == 0:
            step(f"{label} ({total})")
        return
    width = 30
    done = int(width * n / total) if total else width
    bar = "█" * done + "·" * (width - done)
    end = "\n" if n >= total else ""
    print(f"\r{label:<16} {bar} {n}/{total}", end=end, file=sys.stderr, flush=True)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``image``, ``key`` and ``db`` to the ``moorage`` command."""
    img = sub.add_parser("image", help="scan, describe, sign and verify images")
    isub = img.add_subparsers(dest="image_command", required=True, metavar="ACTION")

    def source_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("image", help="image reference, archive path or OCI layout folder")
        p.add_argument(
            "--from",
            dest="source",
            choices=[s.value for s in SourceChoice],
            help="where to read it (default: a path is an archive or layout, else the engine)",
        )
        p.add_argument("--platform", help="platform to pick from an index (default: this machine's)")

    s = isub.add_parser("scan", help="inventory and known vulnerabilities of an image")
    source_args(s)
    s.add_argument("--format", choices=[f.value for f in OutputFormat], default=OutputFormat.TABLE.value)
    s.add_argument(
        "--fail-on",
        choices=["low", "medium", "high", "critical"],
        help="exit 1 when an unsuppressed finding is at least this severe",
    )
    s.add_argument("--ignore-file", type=Path, help="suppressions (.trivyignore.yaml shape)")
    s.add_argument("--show-suppressed", action="store_true", help="list suppressed findings too")
    s.add_argument("--db", type=Path, help="vulnerability database (default: DATA/vulndb.sqlite)")
    s.set_defaults(func=_scan)

    b = isub.add_parser("sbom", help="a CycloneDX 1.6 or SPDX 2.3 SBOM of an image")
    source_args(b)
    b.add_argument("--format", choices=[f.value for f in _SBOM_FORMATS], default=OutputFormat.CYCLONEDX.value)
    b.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    b.set_defaults(func=_sbom)

    g = isub.add_parser("sign", help="sign an image in a registry (cosign-compatible)")
    g.add_argument("image", help="registry/repo:tag or registry/repo@sha256:…")
    g.add_argument("--key", type=Path, required=True, help="PEM private key (moorage key generate)")
    g.set_defaults(func=_sign)

    v = isub.add_parser("verify", help="verify an image's signature against trusted keys")
    v.add_argument("image")
    v.add_argument("--key", type=Path, action="append", required=True, help="PEM public key (repeatable)")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=_verify)

    key = sub.add_parser("key", help="signing keys")
    ksub = key.add_subparsers(dest="key_command", required=True, metavar="ACTION")
    kg = ksub.add_parser("generate", help="write an ECDSA P-256 key pair as PEM (PREFIX.key, PREFIX.pub)")
    kg.add_argument("--output-prefix", type=Path, default=Path("moorage"))
    kg.set_defaults(func=_keygen)

    db = sub.add_parser("db", help="the local vulnerability database (OSV)")
    dsub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    du = dsub.add_parser("update", help="import an OSV export: an all.zip, a folder of .json, or a URL")
    du.add_argument("--from", dest="source", required=True)
    du.add_argument("--db", type=Path)
    du.add_argument("--json", action="store_true")
    du.set_defaults(func=_db_update)
    ds = dsub.add_parser("status", help="sources, record counts and age")
    ds.add_argument("--db", type=Path)
    ds.add_argument("--max-age", default="7d", help="older than this is stale (default 7d)")
    ds.add_argument("--json", action="store_true")
    ds.set_defaults(func=_db_status)


def _engine_client() -> Any:
    from moorage.engine import EngineClient

    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        raise ImageError(
            f"DOCKER_HOST={host}: the engine source reads unix sockets; use --from registry "
            f"or save the image (docker save -o img.tar) and use --from archive"
        )
    return EngineClient(host.removeprefix("unix://"), timeout=300)


def _source(args: argparse.Namespace) -> tuple[ImageSource, str]:
    kind = SourceChoice(args.source) if args.source else SourceChoice.for_target(args.image)
    return kind.to_source(args.image, args.platform, _engine_client)


def _scan(args: argparse.Namespace) -> int:
    fmt = OutputFormat(args.format).to_format(args.show_suppressed, paint)
    try:
        ignore = load_ignore(args.ignore_file) if args.ignore_file else None
        source, ref = _source(args)
        scanner = Scanner(data_dir() / "image-cache", _db(args))
        started = time.monotonic()
        report = scanner.scan(source, ref, ignore, progress=progress if fmt.interactive else None)
        elapsed = time.monotonic() - started
    except ImageError as exc:
        error(str(exc))
        return 2
    run = scan_run(report, elapsed)
    print(fmt.render(run))
    if fmt.interactive:
        for w in run.warnings:
            print(paint(f"warning: {w}", "yellow"), file=sys.stderr)
    if args.fail_on and any(rank(f.severity) >= rank(args.fail_on) for f in report.active):
        if fmt.interactive:
            error(f"findings at or above {args.fail_on}: failing (--fail-on {args.fail_on})")
        return 1
    return 0


def _sbom(args: argparse.Namespace) -> int:
    try:
        source, ref = _source(args)
        inv, _ = Scanner(data_dir() / "image-cache").inventory(source, ref)
        text = OutputFormat(args.format).to_format().render(inventory_run(inv))
    except ImageError as exc:
        error(str(exc))
        return 2
    if args.output:
        args.output.write_text(text + "\n")
        step(f"wrote {args.format} SBOM of {len(inv.packages)} packages to {args.output}")
    else:
        print(text)
    return 0


def _sign(args: argparse.Namespace) -> int:
    try:
        key = load_private_key(args.key, _password())
        registry, repo, digest = registry_target(args.image)
        tag = sign_image(registry, repo, digest, key)
    except ImageError as exc:
        error(str(exc))
        return 2
    print(
        f"{paint('signed', 'green')} {registry.host}/{repo}@{digest}\n"
        f"  signature  {registry.host}/{repo}:{tag}"
    )
    return 0


def _verify(args: argparse.Namespace) -> int:
    try:
        keys = load_public_keys(args.key)
        registry, repo, digest = registry_target(args.image)
        result = verify_image(registry, repo, digest, keys)
    except ImageError as exc:
        if getattr(args, "json", False):
            emit_json({"verified": False, "image": args.image, "reason": str(exc)})
        else:
            error(str(exc))
        return 1
    if args.json:
        emit_json(
            {
                "verified": True,
                "image": f"{registry.host}/{repo}@{digest}",
                "key_id": result.key_id,
                "docker_reference": result.docker_reference,
            }
        )
    else:
        print(f"{paint('verified', 'green')} {registry.host}/{repo}@{digest}  (key {result.key_id})")
    return 0


def _keygen(args: argparse.Namespace) -> int:
    try:
        priv, pub = generate_key(args.output_prefix, _password())
    except ImageError as exc:
        error(str(exc))
        return 2
    enc = "encrypted with MOORAGE_KEY_PASSWORD" if _password() else "unencrypted: keep it safe, mode 0600"
    print(f"private key  {priv}  ({enc})\npublic key   {pub}  (give this to verifiers and to policy)")
    return 0


def _db_update(args: argparse.Namespace) -> int:
    db = _db(args)
    try:
        status = db.update(args.source, progress=lambda n, t: progress("checking records", n, t))
    except ImageError as exc:
        error(f"{exc}\nthe previous database (if any) is unchanged")
        return 1
    if args.json:
        emit_json(status.as_dict())
    else:
        print(
            f"{paint('imported', 'green')} {args.source}: {status.records} records in {status.path} "
            f"(version {status.version})"
        )
    return 0


def _db_status(args: argparse.Namespace) -> int:
    from moorage.admission.exceptions import parse_duration

    db = _db(args)
    try:
        status = db.status()
    except ImageError as exc:
        error(str(exc))
        return 1
    max_age = parse_duration(args.max_age)
    stale = status.age() > max_age
    if args.json:
        emit_json({**status.as_dict(), "stale": stale, "max_age_seconds": max_age})
        return 0
    age_h = status.age() / 3600
    print(
        f"database  {status.path}\nversion   {status.version}\nrecords   {status.records}\n"
        f"age       {age_h:.1f} h  "
        + (paint(f"STALE (older than {args.max_age})", "red") if stale else paint("fresh", "green"))
    )
    print()
    print(
        table(
            ["SOURCE", "RECORDS", "IMPORTED"],
            [[s, str(n), time.strftime("%Y-%m-%d %H:%M", time.localtime(t))] for s, t, n in status.sources],
        )
    )
    print()
    print(table(["ECOSYSTEM", "RECORDS"], [[e, str(n)] for e, n in status.ecosystems]))
    return 0
