"""The vulnerability-source seam: a :class:`VulnerabilitySource` answers which known
vulnerabilities affect the packages of an :class:`Inventory`, and says which version
of its data it answered from, so reports can be cached by that version.

Outcomes are frozen dataclasses; every failure is a :class:`VulnSourceError`.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from moorage.images.catalogers.interface import Inventory
from moorage.images.interface import ImageError

__all__ = ["DBStatus", "Finding", "Matches", "VulnSourceError", "VulnerabilitySource"]


class VulnSourceError(ImageError):
    """The vulnerability data is missing, corrupt, or an update was rejected."""


@dataclass(frozen=True)
class Finding:
    """One vulnerability that affects one installed package."""

    id: str
    package: str
    version: str
    ecosystem: str
    severity: str  # critical, high, medium, low, unknown
    score: float | None
    fixed: str | None  # the first fixed version, None when no fix exists
    summary: str = ""
    aliases: tuple[str, ...] = ()
    path: str = ""
    purl: str = ""
    suppressed: str = ""  # the ignore entry's justification when suppressed
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of reports and of the findings cache."""
        d = {
            k: getattr(self, k)
            for k in (
                "id",
                "package",
                "version",
                "ecosystem",
                "severity",
                "score",
                "fixed",
                "summary",
                "path",
                "purl",
            )
        }
        d["aliases"] = list(self.aliases)
        if self.suppressed:
            d["suppressed"] = self.suppressed
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Finding:
        """The inverse of :meth:`as_dict`."""
        return cls(
            d["id"],
            d["package"],
            d["version"],
            d["ecosystem"],
            d["severity"],
            d.get("score"),
            d.get("fixed"),
            d.get("summary", ""),
            tuple(d.get("aliases") or ()),
            d.get("path", ""),
            d.get("purl", ""),
            d.get("suppressed", ""),
        )


@dataclass(frozen=True)
class Matches:
    """A source's answer for one inventory: the findings, and warnings for the
    versions it could not judge (never silently dropped)."""

    findings: tuple[Finding, ...]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class DBStatus:
    """Where a source's data is, its version and age, and what it holds."""

    path: Path
    version: str
    built_at: float
    sources: tuple[tuple[str, float, int], ...]  # (source, imported_at, records)
    ecosystems: tuple[tuple[str, int], ...]
    records: int

    def age(self, now: float | None = None) -> float:
        """Seconds since the data was last updated."""
        return (now or time.time()) - self.built_at

    def as_dict(self, now: float | None = None) -> dict[str, Any]:
        """The JSON shape of ``moorage db status --json``."""
        return {
            "path": str(self.path),
            "version": self.version,
            "built_at": self.built_at,
            "age_seconds": round(self.age(now), 1),
            "records": self.records,
            "sources": [{"source": s, "imported_at": t, "records": n} for s, t, n in self.sources],
            "ecosystems": dict(self.ecosystems),
        }


class VulnerabilitySource(ABC):
    """Known vulnerabilities, queried by inventory."""

    name: ClassVar[str]

    @abstractmethod
    def exists(self) -> bool:
        """Whether there is data to query (callers that must fail closed check this)."""

    @property
    @abstractmethod
    def version(self) -> str:
        """The version of the data; findings cached under another version are stale."""

    @property
    @abstractmethod
    def built_at(self) -> float:
        """When the data was last updated (seconds since the epoch)."""

    @abstractmethod
    def status(self) -> DBStatus:
        """Where the data is, its version, age and contents."""

    @abstractmethod
    def query(self, inventory: Inventory) -> Matches:
        """The vulnerabilities that affect the inventory's packages."""

    @abstractmethod
    def update(
        self, source: str, progress: Callable[[int, int], None] | None = None, now: float | None = None
    ) -> DBStatus:
        """Bring in data from ``source`` (a path or URL), all or nothing."""

    def close(self) -> None:  # noqa: B027 (a default that does nothing is intended)
        """Release what the source holds open."""
