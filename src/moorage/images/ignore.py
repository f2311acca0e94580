"""Ignore files: suppressions in the shape of Trivy's ``.trivyignore.yaml``.

Every entry says why (``statement``) and until when (``expired_at``); an expired
entry stops suppressing, so an accepted risk is looked at again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from moorage.images.catalogers.python import pep503
from moorage.images.interface import ImageError
from moorage.images.vulns.interface import Finding

__all__ = ["IgnoreEntry", "IgnoreError", "apply_ignore", "load_ignore"]


class IgnoreError(ImageError):
    """An ignore file that can't be used; the message names the entry and field."""


@dataclass(frozen=True)
class IgnoreEntry:
    """One suppression, in the shape of Trivy's ``.trivyignore.yaml``."""

    id: str
    statement: str
    expires: dt.date
    paths: tuple[str, ...] = ()
    purls: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()

    def covers(self, f: Finding, today: dt.date) -> bool:
        """Whether this entry suppresses ``f`` on ``today``."""
        if today > self.expires:
            return False
        if self.id not in (f.id, *f.aliases):
            return False
        if self.paths and f.path.lstrip("/") not in {p.lstrip("/") for p in self.paths}:
            return False
        if self.purls and not any(f.purl.split("?")[0] == p.split("?")[0] for p in self.purls):
            return False
        return not (self.packages and pep503(f.package) not in {pep503(p) for p in self.packages})


def load_ignore(path: Path) -> list[IgnoreEntry]:
    """Read an ignore file: ``vulnerabilities: [{id, statement, expired_at, paths?,
    purls?, packages?}]``. Every entry needs a statement (why) and an expiry."""
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise IgnoreError(f"cannot read the ignore file {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise IgnoreError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("vulnerabilities"), list):
        raise IgnoreError(f"{path}: expected a top-level 'vulnerabilities:' list")
    out = []
    for i, e in enumerate(doc["vulnerabilities"]):
        at = f"{path}: vulnerabilities[{i}]"
        if not isinstance(e, dict):
            raise IgnoreError(f"{at} must be a mapping")
        unknown = set(e) - {"id", "statement", "expired_at", "paths", "purls", "packages"}
        if unknown:
            raise IgnoreError(f"{at}: unknown field {sorted(unknown)[0]!r}")
        if not isinstance(e.get("id"), str) or not e["id"]:
            raise IgnoreError(f"{at}.id is required (an OSV id or alias such as CVE-2023-1234)")
        if not isinstance(e.get("statement"), str) or not e["statement"].strip():
            raise IgnoreError(f"{at}.statement is required: say why this finding doesn't apply")
        exp = e.get("expired_at")
        if isinstance(exp, str):
            try:
                exp = dt.date.fromisoformat(exp)
            except ValueError:
                exp = None
        if isinstance(exp, dt.datetime):
            exp = exp.date()
        if not isinstance(exp, dt.date):
            raise IgnoreError(f"{at}.expired_at is required, as a date (YYYY-MM-DD)")
        lists = {}
        for k in ("paths", "purls", "packages"):
            v = e.get(k) or []
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise IgnoreError(f"{at}.{k} must be a list of strings")
            lists[k] = tuple(v)
        out.append(IgnoreEntry(e["id"], e["statement"].strip(), exp, **lists))
    return out


def apply_ignore(findings: Iterable[Finding], entries: list[IgnoreEntry], today: dt.date) -> list[Finding]:
    """The findings with ``suppressed`` set where an unexpired entry covers them."""
    out = []
    for f in findings:
        hit = next((e for e in entries if e.covers(f, today)), None)
        out.append(replace(f, suppressed=f"{hit.statement} (until {hit.expires})") if hit else f)
    return out
