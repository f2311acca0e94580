"""``moorage image`` (scan, sbom, sign, verify), ``moorage key`` and ``moorage db``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from moorage.cli._output import emit_json, error, paint, step, table
from moorage.engine_api.reference import parse_image_ref
from moorage.images.cvss import rank
from moorage.images.ignore import load_ignore
from moorage.images.interface import ImageError, ImageSource
from moorage.images.registry import Registry
from moorage.images.scanner import Report, Scanner
from moorage.images.sign import generate_key, load_private_key, load_public_keys, sign_image, verify_image
from moorage.images.sources import ArchiveSource, EngineSource, OciLayoutSource, RegistrySource
from moorage.images.vulns.osv import OsvDatabase

__all__ = ["register"]

_COLOURS = {"critical": "red", "high": "red", "medium": "yellow", "low": "dim", "unknown": "dim"}


def data_dir() -> Path:
    from moorage.cli._paths import default_data_dir

    return Path(os.environ["MOORAGE_DATA"]) if os.environ.get("MOORAGE_DATA") else default_data_dir()


def _db(args: argparse.Namespace) -> OsvDatabase:
    return OsvDatabase(args.db or data_dir() / "vulndb.sqlite")


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
    img = sub.add_parser("image", help="scan, describe, sign and verify images")
    isub = img.add_subparsers(dest="image_command", required=True, metavar="ACTION")

    def source_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("image", help="image reference, archive path or OCI layout folder")
        p.add_argument(
            "--from",
            dest="source",
            choices=["engine", "registry", "archive", "oci"],
            help="where to read it (default: a path is an archive or layout, else the engine)",
        )
        p.add_argument("--platform", help="platform to pick from an index (default: this machine's)")

    s = isub.add_parser("scan", help="inventory and known vulnerabilities of an image")
    source_args(s)
    s.add_argument("--format", choices=["table", "json", "sarif", "cyclonedx", "spdx"], default="table")
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
    b.add_argument("--format", choices=["cyclonedx", "spdx"], default="cyclonedx")
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
    kind = args.source
    path = Path(args.image)
    if kind is None:
        kind = "oci" if path.is_dir() else "archive" if path.is_file() else "engine"
    if kind == "archive":
        return ArchiveSource(path), ""
    if kind == "oci":
        return OciLayoutSource(path, args.platform), ""
    if kind == "registry":
        return RegistrySource(platform_=args.platform), args.image
    return EngineSource(_engine_client()), args.image


def _scan(args: argparse.Namespace) -> int:
    try:
        ignore = load_ignore(args.ignore_file) if args.ignore_file else None
        source, ref = _source(args)
        db = _db(args)
        scanner = Scanner(data_dir() / "image-cache", db)
        started = time.monotonic()
        report = scanner.scan(source, ref, ignore, progress=progress if args.format == "table" else None)
        elapsed = time.monotonic() - started
    except ImageError as exc:
        error(str(exc))
        return 2
    if args.format == "json":
        emit_json(report.as_dict(show_suppressed=True))
    elif args.format == "sarif":
        emit_json(_sarif(report))
    elif args.format in ("cyclonedx", "spdx"):
        from moorage.images.formats.sbom import cyclonedx, spdx

        print(cyclonedx(report.inventory) if args.format == "cyclonedx" else spdx(report.inventory))
    else:
        _print_report(report, args.show_suppressed, elapsed)
    if args.fail_on and any(rank(f.severity) >= rank(args.fail_on) for f in report.active):
        if args.format == "table":
            error(f"findings at or above {args.fail_on}: failing (--fail-on {args.fail_on})")
        return 1
    return 0


def _print_report(report: Report, show_suppressed: bool, elapsed: float) -> None:
    inv = report.inventory
    os_name = inv.os.pretty_name or inv.os.id if inv.os else "unknown OS"
    print(paint(f"{inv.reference or inv.digest}", "bold"))
    print(
        f"  digest    {inv.digest}\n  os        {os_name}\n  packages  {len(inv.packages)}"
        f"   ({'cached' if report.cached else f'scanned in {elapsed:.2f}s'}; database {report.db_version})"
    )
    counts = report.counts()
    summary = ", ".join(paint(f"{n} {s}", _COLOURS[s]) for s, n in counts.items() if n)
    print(f"  findings  {summary or paint('none', 'green')}")
    rows = []
    for f in report.findings:
        if f.suppressed and not show_suppressed:
            continue
        sev = paint(f.severity.upper(), _COLOURS.get(f.severity, "dim"))
        fixed = f.fixed or paint("unfixed", "dim")
        note = f"suppressed: {f.suppressed}" if f.suppressed else f.summary[:60]
        rows.append([sev, f.id, f.package, f.version, fixed, note])
    if rows:
        print()
        print(table(["SEVERITY", "ID", "PACKAGE", "VERSION", "FIXED IN", "SUMMARY"], rows))
    hidden = sum(1 for f in report.findings if f.suppressed)
    if hidden and not show_suppressed:
        print(paint(f"\n{hidden} suppressed finding(s) not shown (--show-suppressed)", "dim"))
    for w in report.warnings:
        print(paint(f"warning: {w}", "yellow"), file=sys.stderr)


def _sarif(report: Report) -> dict[str, Any]:
    from moorage import __version__

    levels = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "unknown": "note"}
    rules: dict[str, dict[str, Any]] = {}
    results = []
    for f in report.active:
        rules.setdefault(
            f.id,
            {
                "id": f.id,
                "name": f.id.replace("-", ""),
                "shortDescription": {"text": f.summary or f.id},
                "helpUri": f"https://osv.dev/vulnerability/{f.id}",
                "properties": {
                    "security-severity": str(
                        f.score
                        or {"critical": 9.5, "high": 8.0, "medium": 5.5, "low": 2.0}.get(f.severity, 0.0)
                    )
                },
            },
        )
        fix = f"upgrade {f.package} to {f.fixed}" if f.fixed else "no fixed version is known"
        results.append(
            {
                "ruleId": f.id,
                "level": levels.get(f.severity, "note"),
                "message": {"text": f"{f.package} {f.version} is affected by {f.id} ({f.severity}); {fix}"},
                "locations": [
                    {
                        "physicalLocation": {"artifactLocation": {"uri": f.path.lstrip("/") or "image"}},
                        "logicalLocations": [
                            {"name": report.inventory.reference or report.inventory.digest, "kind": "image"}
                        ],
                    }
                ],
            }
        )
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {"name": "moorage", "version": __version__, "rules": list(rules.values())}
                },
                "results": results,
            }
        ],
    }


def _sbom(args: argparse.Namespace) -> int:
    from moorage.images.formats.sbom import cyclonedx, spdx

    try:
        source, ref = _source(args)
        inv, _ = Scanner(data_dir() / "image-cache").inventory(source, ref)
    except ImageError as exc:
        error(str(exc))
        return 2
    text = cyclonedx(inv) if args.format == "cyclonedx" else spdx(inv)
    if args.output:
        args.output.write_text(text + "\n")
        step(f"wrote {args.format} SBOM of {len(inv.packages)} packages to {args.output}")
    else:
        print(text)
    return 0


def _registry_target(image: str) -> tuple[Registry, str, str]:
    ref = parse_image_ref(image)
    if ref.is_id:
        raise ImageError(f"{image!r} is an image id; signing needs a registry name (registry/repo:tag)")
    registry = Registry(ref.registry)
    digest = ref.digest or registry.head_manifest(ref.repository, ref.tag or "latest")
    if digest is None:
        raise ImageError(f"{image} was not found in the registry {ref.registry}")
    return registry, ref.repository, digest


def _sign(args: argparse.Namespace) -> int:
    try:
        key = load_private_key(args.key, _password())
        registry, repo, digest = _registry_target(args.image)
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
        registry, repo, digest = _registry_target(args.image)
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
