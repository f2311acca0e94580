"""Match an inventory against OSV records, in each ecosystem's own version order.

A package is affected by an ``affected`` entry when its version is listed in
``versions`` or falls inside an ``ECOSYSTEM``/``SEMVER`` range (OSV's evaluation:
events sorted, ``introduced`` opens, ``fixed`` closes, ``last_affected`` closes
after itself, ``limit`` bounds the range). ``GIT`` ranges name commits, not
versions, and are ignored here. Debian packages are matched by their source
package and source version, as Debian's advisories are filed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from moorage.images.catalogers.interface import Inventory, Package
from moorage.images.cvss import rank, record_severity
from moorage.images.versions import VersionError, compare
from moorage.images.vulns.interface import Finding
from moorage.images.vulns.osv_records import index_name

__all__ = ["RecordLookup", "affected_by", "match_inventory"]

RecordLookup = Callable[[str, str], list[dict[str, Any]]]
"""The OSV records naming a package: ``(ecosystem, name) -> records``."""


def _cmp(eco: str, a: str, b: str) -> int:
    if a == "0":
        return 0 if b == "0" else -1
    if b == "0":
        return 1
    return compare(eco, a, b)


def _in_range(eco: str, version: str, events: list[dict[str, str]]) -> tuple[bool, str | None]:
    """(affected, the fixed version that closes it) for one range."""
    evs: list[tuple[str, str]] = [(k, v) for ev in events for k, v in ev.items()]
    limits = [v for k, v in evs if k == "limit"]
    order = {"introduced": 0, "fixed": 1, "last_affected": 2}
    evs = [(k, v) for k, v in evs if k != "limit"]

    def by_version(x: tuple[str, str], y: tuple[str, str]) -> int:
        return _cmp(eco, x[1], y[1]) or order[x[0]] - order[y[0]]

    evs.sort(key=functools.cmp_to_key(by_version))
    affected = False
    for kind, v in evs:
        c = _cmp(eco, version, v)
        if kind == "introduced" and c >= 0:
            affected = True
        elif (kind == "fixed" and c >= 0) or (kind == "last_affected" and c > 0):
            affected = False
    if affected and any(_cmp(eco, version, lim) >= 0 for lim in limits if lim != "*"):
        affected = False
    fixed = None
    if affected:
        later = [v for k, v in evs if k == "fixed" and _cmp(eco, v, version) > 0]
        fixed = later[0] if later else None
    return affected, fixed


def affected_by(entry: dict[str, Any], eco: str, version: str) -> tuple[bool, str | None]:
    """Whether ``version`` is affected by one OSV ``affected`` entry, and its fix."""
    pypi = eco.lower().startswith("pypi")

    def norm(v: str) -> str:
        return v.lower() if pypi else v

    listed = {norm(str(v)) for v in entry.get("versions") or []}
    hit, fixed = norm(version) in listed, None
    for r in entry.get("ranges") or []:
        if r.get("type") not in ("ECOSYSTEM", "SEMVER"):
            continue
        range_eco = "semver" if r["type"] == "SEMVER" else eco
        ok, fx = _in_range(range_eco, version, r.get("events") or [])
        if ok:
            hit = True
            fixed = fixed or fx
    if hit and fixed is None:
        # Listed explicitly: the fix is the first fixed event after the version.
        for r in entry.get("ranges") or []:
            if r.get("type") in ("ECOSYSTEM", "SEMVER"):
                for ev in r.get("events") or []:
                    if "fixed" in ev:
                        try:
                            if _cmp(eco if r["type"] == "ECOSYSTEM" else "semver", ev["fixed"], version) > 0:
                                fixed = fixed or ev["fixed"]
                        except VersionError:
                            continue
    return hit, fixed


def _same_eco(record_eco: str, package_eco: str) -> bool:
    r, p = record_eco.lower(), package_eco.lower()
    return r == p or (":" not in r and r == p.partition(":")[0])


def _package_key(p: Package) -> tuple[str, str]:
    if p.type == "deb" and p.source_name:
        return p.source_name, p.source_version or p.version
    if p.type == "apk" and p.source_name:
        return p.source_name, p.version
    return p.name, p.version


def match_inventory(inv: Inventory, records_for: RecordLookup) -> tuple[list[Finding], list[str]]:
    """Every (record, package) pair where the package's version is affected, and
    warnings for versions an ecosystem can't order."""
    findings: list[Finding] = []
    warnings: list[str] = []
    seen: set[tuple[str, str, str]] = set()
    for p in inv.packages:
        if not p.ecosystem:
            continue
        name, version = _package_key(p)
        for rec in records_for(p.ecosystem, name):
            if rec.get("withdrawn"):
                continue
            for entry in rec.get("affected") or []:
                pkg = entry.get("package") or {}
                if not _same_eco(str(pkg.get("ecosystem", "")), p.ecosystem):
                    continue
                if index_name(p.ecosystem, str(pkg.get("name", ""))) != index_name(p.ecosystem, name):
                    continue
                try:
                    hit, fixed = affected_by(entry, p.ecosystem, version)
                except VersionError as exc:
                    warnings.append(f"{rec['id']} vs {p.name} {version}: {exc}")
                    continue
                key = (rec["id"], p.name, p.path)
                if not hit or key in seen:
                    continue
                seen.add(key)
                severity, score = record_severity(rec, entry)
                findings.append(
                    Finding(
                        rec["id"],
                        p.name,
                        p.version,
                        p.ecosystem,
                        severity,
                        score,
                        fixed,
                        str(rec.get("summary") or rec.get("details") or "")[:200].split("\n")[0],
                        tuple(str(a) for a in rec.get("aliases") or []),
                        p.path,
                        p.purl,
                    )
                )
    findings.sort(key=lambda f: (-rank(f.severity), f.package, f.id))
    return findings, warnings
