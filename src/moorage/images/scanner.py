"""Scan an image: inventory (cached by image id) then matching (cached by image id
and database version), so a database update re-runs only the matching step."""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from moorage.images.catalogers.catalog import catalog, wanted
from moorage.images.catalogers.interface import Inventory
from moorage.images.cvss import rank
from moorage.images.ignore import IgnoreEntry, apply_ignore
from moorage.images.interface import ImageSource
from moorage.images.layers import apply_layers
from moorage.images.surface import wants_executable
from moorage.images.vulns.interface import Finding, VulnerabilitySource, VulnSourceError

__all__ = ["Report", "Scanner"]

Progress = Callable[[str, int, int], None]
"""Told ``(step, done, total)`` as a scan goes."""

INVENTORY_CACHE = 2
"""The inventory cache's format: a file written with another (older inventories have
no executables, size or layers) is read as a miss and the image read again, so an
old entry is never taken for "no shells"."""

BASE_NAME = "org.opencontainers.image.base.name"
"""The OCI label naming the image an image was built from."""
BASE_DIGEST = "org.opencontainers.image.base.digest"
"""The OCI label pinning that base image by digest."""


@dataclass(frozen=True)
class Report:
    """One image's scan: its inventory, the findings, and the database they came from."""

    inventory: Inventory
    findings: tuple[Finding, ...]
    db_version: str
    db_built_at: float
    warnings: tuple[str, ...] = ()
    cached: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def active(self) -> tuple[Finding, ...]:
        """The findings no ignore entry suppresses."""
        return tuple(f for f in self.findings if not f.suppressed)

    def counts(self) -> dict[str, int]:
        """Unsuppressed findings per severity."""
        out = {s: 0 for s in ("critical", "high", "medium", "low", "unknown")}
        for f in self.active:
            out[f.severity if f.severity in out else "unknown"] += 1
        return out

    def worst(self, only_fixed: bool = False) -> str:
        """The highest severity among unsuppressed findings (with a fix, if ``only_fixed``), or ``none``."""
        pool = [f for f in self.active if f.fixed or not only_fixed]
        return max((f.severity for f in pool), key=rank, default="none")

    def as_dict(self, show_suppressed: bool = True) -> dict[str, Any]:
        """The JSON shape of ``moorage image scan --format json``."""
        return {
            "image": self.inventory.as_dict(),
            "database": {"version": self.db_version, "built_at": self.db_built_at},
            "summary": self.counts(),
            "findings": [f.as_dict() for f in self.findings if show_suppressed or not f.suppressed],
            "warnings": list(self.warnings),
        }


def _write_atomic(path: Path, data: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(data)
    os.replace(tmp, path)


def _config_facts(config: object) -> tuple[tuple[str, ...], dict[str, str]]:
    """The layers (``rootfs.diff_ids``) and the labels of an image config."""
    doc = config if isinstance(config, dict) else {}
    rootfs = doc.get("rootfs")
    ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    inner = doc.get("config")
    labels = inner.get("Labels") if isinstance(inner, dict) else None
    return (
        tuple(str(i) for i in ids) if isinstance(ids, list) else (),
        {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {},
    )


class Scanner:
    """Scans images from any source, caching under ``cache_dir``."""

    def __init__(self, cache_dir: Path, db: VulnerabilitySource | None = None) -> None:
        self.cache_dir = cache_dir
        self.db = db

    def _inv_path(self, image_id: str) -> Path:
        return self.cache_dir / "inventory" / f"{image_id.partition(':')[2] or image_id}.json"

    def inventory(
        self, source: ImageSource, reference: str, progress: Progress | None = None
    ) -> tuple[Inventory, bool]:
        """The image's inventory, and whether it came from the cache."""
        with source.resolve(reference) as image:
            path = self._inv_path(image.image_id)
            try:
                doc = json.loads(path.read_text())
                if doc.get("cache") != INVENTORY_CACHE:
                    raise KeyError("cache")
                inv = Inventory.from_dict(doc)
                return replace(inv, digest=image.digest, reference=reference or inv.reference), True
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                pass
            layers = image.layers()
            if progress:
                progress("reading layers", 0, len(layers))
            fs = apply_layers(
                layers,
                wanted,
                progress=(lambda n, t: progress("reading layers", n, t)) if progress else None,
                present=wants_executable,
            )
            found = catalog(fs)
            diff_ids, labels = _config_facts(image.config)
            inv = Inventory(
                image.digest, image.image_id, found.os, found.packages, found.warnings, reference,
                tuple(sorted("/" + p for p in fs.present)), fs.size, diff_ids,
                labels.get(BASE_NAME, ""), labels.get(BASE_DIGEST, ""),
            )  # fmt: skip
            _write_atomic(path, json.dumps({**inv.as_dict(), "cache": INVENTORY_CACHE}))
            return inv, False

    def scan(
        self,
        source: ImageSource,
        reference: str,
        ignore: list[IgnoreEntry] | None = None,
        today: dt.date | None = None,
        progress: Progress | None = None,
    ) -> Report:
        """Inventory, then findings (each cached), then the ignore entries applied as of ``today``."""
        if self.db is None:
            raise VulnSourceError(
                "no vulnerability database is configured: run moorage db update --from PATH|URL"
            )
        inv, cached = self.inventory(source, reference, progress)
        version = self.db.version
        built_at = self.db.built_at
        fpath = self.cache_dir / "findings" / f"{inv.image_id.partition(':')[2]}-{version}.json"
        findings: list[Finding]
        warnings = list(inv.warnings)
        try:
            doc = json.loads(fpath.read_text())
            findings = [Finding.from_dict(f) for f in doc["findings"]]
            warnings += doc.get("warnings") or []
            matched_cached = True
        except (OSError, ValueError, KeyError, TypeError):
            if progress:
                progress("matching", 0, len(inv.packages))
            matches = self.db.query(inv)
            findings, match_warnings = list(matches.findings), list(matches.warnings)
            warnings += match_warnings
            _write_atomic(
                fpath,
                json.dumps(
                    {
                        "findings": [f.as_dict() for f in findings],
                        "warnings": match_warnings,
                        "at": time.time(),
                    }
                ),
            )
            matched_cached = False
        if ignore:
            findings = apply_ignore(findings, ignore, today or dt.date.today())
        return Report(inv, tuple(findings), version, built_at, tuple(warnings), cached and matched_cached)
