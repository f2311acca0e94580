"""Image trust: signatures, the vulnerability gate, packages, SBOM and database
freshness, judged one image at a time from what admission gathered. Pure.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from moorage.policy.rules.base import Finding, _finding
from moorage.policy.schema import ImagesSpec
from moorage.policy.units import parse_duration

__all__ = [
    "TRUST_CHECKS",
    "TRUST_KEYS",
    "TRUST_KINDS",
    "ImageFacts",
    "TrustItem",
    "check_image_trust",
    "needs_trust",
    "trust_database_missing",
    "trust_database_stale",
    "trust_items",
    "trust_package_forbidden",
    "trust_package_required",
    "trust_sbom",
    "trust_signature",
    "trust_unscanned",
    "trust_vulnerabilities",
]


# -------------------------------------------------------------- image trust
TRUST_KINDS = ("container.create", "service.create", "service.update", "image.pull")
TRUST_KEYS = ("signatures", "vulnerabilities", "packages", "sbom", "database", "surface")
_SEV = ("unknown", "none", "low", "medium", "high", "critical")


@dataclass(frozen=True)
class ImageFacts:
    """What the gateway learnt about one image before the decision (pure data)."""

    ref: str
    digest: str = ""
    error: str = ""  # the image could not be resolved or scanned: trust rules fail closed
    signers: tuple[str, ...] = ()  # ids of the keys whose signatures verified
    signature_error: str = ""
    packages: tuple[tuple[str, str, str, str], ...] = ()  # (name, version, purl, path)
    findings: tuple[tuple[str, str, str, str, str], ...] = ()  # (id, package, version, severity, fixed or "")
    suppressed: int = 0
    db_age: float | None = None  # seconds; None = no vulnerability database
    scanned: bool = False
    # the attack surface (images.surface), filled when the image was scanned
    size: int | None = None  # bytes: the engine's inspect Size, else the layers' content; None: unknown
    base: str = ""  # the base image's reference; "" when it is not known
    base_aliases: tuple[str, ...] = ()  # the same base image's other names (its other tags)
    base_via: str = ""  # how the base was found ("label", "layers"), or why it is not known
    shells: tuple[str, ...] = ()  # paths (/bin/sh) and packages (bash 5.2 (deb)) found
    package_managers: tuple[str, ...] = ()  # paths (/usr/bin/apt) and packages (pip 23.0 (pypi))


def needs_trust(spec: ImagesSpec) -> bool:
    """Whether the images section asks for facts about the image itself."""
    return any(getattr(spec, k) for k in TRUST_KEYS)


def _pkg_matches(pattern: str, name: str, purl: str) -> bool:
    p = pattern.lower()
    if p.startswith("pkg:"):
        base = purl.lower().split("@")[0].split("?")[0]
        return fnmatch.fnmatchcase(base, p) or base == p
    return fnmatch.fnmatchcase(name.lower(), p)


TrustItem = tuple[str, str, "ImageFacts | None"]
"""One image a trust rule judges: its field path, its text and what was gathered
about it (None when nothing was)."""


def trust_items(images: list[tuple[str, str]], reports: dict[str, ImageFacts]) -> list[TrustItem]:
    """The images of ``images`` with their reports."""
    return [(path, text, reports.get(text)) for path, text in images]


def trust_unscanned(item: TrustItem, spec: ImagesSpec, trusted: list[str]) -> list[Finding]:
    """``images.unscanned`` on one image: it could be checked (the other trust rules
    judge only an image that was)."""
    path, text, f = item
    out: list[Finding] = []
    if f is None or f.error:
        why = f.error if f is not None else "no report was gathered"
        out.append(
            _finding(
                "images.unscanned",
                path,
                text,
                f"the image could not be checked: {why}",
                "make the image reachable (pushed, or present on the engine) and retry",
            )
        )
    return out


def trust_signature(item: TrustItem, spec: ImagesSpec, trusted: list[str]) -> list[Finding]:
    """``images.signature`` on one image: it is signed by a key the policy trusts, when
    ``images.signatures`` requires it."""
    path, text, f = item
    if f is None or f.error:
        return []
    out: list[Finding] = []
    sig = spec.signatures
    if sig and sig.required is not False and sig.keys and not set(f.signers) & set(trusted):
        why = f.signature_error or "signed, but not by a key this policy trusts"
        out.append(
            _finding(
                "images.signature",
                path,
                text,
                f"not signed by a trusted key: {why}",
                "sign it: moorage image sign IMAGE --key KEY (a key the policy lists)",
            )
        )
    return out


def trust_database_missing(item: TrustItem, spec: ImagesSpec, trusted: list[str]) -> list[Finding]:
    """``images.database-missing`` on one image: a vulnerability database is loaded,
    when the policy reads one."""
    path, text, f = item
    if f is None or f.error:
        return []
    out: list[Finding] = []
    db = spec.database
    vul = spec.vulnerabilities
    if (db or vul) and f.db_age is None:
        out.append(
            _finding(
                "images.database-missing",
                path,
                text,
                "no vulnerability database is loaded",
                "run moorage db update --from PATH|URL on the gateway host",
            )
        )
    return out


def trust_database_stale(item: TrustItem, spec: ImagesSpec, trusted: list[str]) -> list[Finding]:
    """``images.database-stale`` on one image: the vulnerability database is younger
    than ``images.database.maxAge``."""
    path, text, f = item
    if f is None or f.error:
        return []
    out: list[Finding] = []
    db = spec.database
    if db and db.max_age is not None and f.db_age is not None:
        limit = parse_duration(db.max_age)  # validated when the policy loaded
        if f.db_age > limit:
            out.append(
                _finding(
                    "images.database-stale",
                    path,
                    text,
                    f"the vulnerability database is {f.db_age / 3600:.0f} h old (older than {db.max_age})",
                    "run moorage db update",
                )
            )
    return out


def trust_vulnerabilities(item: TrustItem, spec: ImagesSpec, trusted: list[str]) -> list[Finding]:
    """``images.vulnerabilities`` on one image: no vulnerability over
    ``images.vulnerabilities.maxSeverity`` (not judged without a database)."""
    path, text, f = item
    if f is None or f.error:
        return []
    out: list[Finding] = []
    vul = spec.vulnerabilities if not ((spec.database or spec.vulnerabilities) and f.db_age is None) else None
    if vul and vul.max_severity:
        ceiling = _SEV.index(vul.max_severity)
        over = [
            x
            for x in f.findings
            if _SEV.index(x[3] if x[3] in _SEV else "unknown") > ceiling and (x[4] or not vul.only_fixed)
        ]
        if over:
            shown = "; ".join(
                f"{i} ({pkg} {ver}, {sev}, " + (f"fixed in {fx})" if fx else "unfixed)")
                for i, pkg, ver, sev, fx in over[:5]
            )
            more = f" and {len(over) - 5} more" if len(over) > 5 else ""
            out.append(
                _finding(
                    "images.vulnerabilities",
                    path,
                    text,
                    f"{len(over)} finding(s) over {vul.max_severity}: {shown}{more}",
                    "upgrade the packages named (moorage image scan IMAGE lists them all)",
                )
            )
    return out


def trust_package_forbidden(item: TrustItem, spec: ImagesSpec, trusted: list[str]) -> list[Finding]:
    """``images.package-forbidden`` on one image: no forbidden package is installed."""
    path, text, f = item
    if f is None or f.error:
        return []
    out: list[Finding] = []
    pk = spec.packages
    for pattern in (pk.forbidden if pk else None) or []:
        hits = [p for p in f.packages if _pkg_matches(pattern, p[0], p[2])]
        if hits:
            names = ", ".join(f"{n} {v} ({where})" for n, v, _, where in hits[:5])
            out.append(
                _finding(
                    "images.package-forbidden",
                    path,
                    text,
                    f"forbidden package {pattern!r} is installed: {names}",
                    f"remove {hits[0][0]} from the image",
                )
            )
    return out


def trust_package_required(item: TrustItem, spec: ImagesSpec, trusted: list[str]) -> list[Finding]:
    """``images.package-required`` on one image: every required package is installed."""
    path, text, f = item
    if f is None or f.error:
        return []
    out: list[Finding] = []
    pk = spec.packages
    for pattern in (pk.required if pk else None) or []:
        if not any(_pkg_matches(pattern, p[0], p[2]) for p in f.packages):
            out.append(
                _finding(
                    "images.package-required",
                    path,
                    text,
                    f"required package {pattern!r} is not installed",
                    f"install {pattern} in the image",
                )
            )
    return out


def trust_sbom(item: TrustItem, spec: ImagesSpec, trusted: list[str]) -> list[Finding]:
    """``images.sbom`` on one image: an SBOM could be made, when images.sbom is required."""
    path, text, f = item
    if f is None or f.error:
        return []
    out: list[Finding] = []
    if spec.sbom == "required" and not (f.scanned and f.packages):
        out.append(
            _finding(
                "images.sbom",
                path,
                text,
                "no SBOM could be made: no package database found",
                "build from a base image with a package database (dpkg, apk, rpm)",
            )
        )
    return out


TRUST_CHECKS = (
    ("images.unscanned", trust_unscanned),
    ("images.signature", trust_signature),
    ("images.database-missing", trust_database_missing),
    ("images.database-stale", trust_database_stale),
    ("images.vulnerabilities", trust_vulnerabilities),
    ("images.package-forbidden", trust_package_forbidden),
    ("images.package-required", trust_package_required),
    ("images.sbom", trust_sbom),
)
"""The image trust rules' checks, by rule id, in the order they judge each image."""


def check_image_trust(
    images: list[tuple[str, str]], spec: ImagesSpec, reports: dict[str, ImageFacts], trusted: list[str]
) -> list[Finding]:
    """Signatures, vulnerability gate, packages, SBOM and database freshness."""
    out: list[Finding] = []
    for item in trust_items(images, reports):
        for _, rule_check in TRUST_CHECKS:
            out += rule_check(item, spec, trusted)
    return out
