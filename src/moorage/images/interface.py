"""The image-trust seams: image sources and catalogers, and the data they return.

Outcomes are frozen dataclasses; every failure is an :class:`ImageError` subclass
whose message says what happened and what to do.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CatalogError",
    "Finding",
    "ImageError",
    "ImageSource",
    "Inventory",
    "Layer",
    "OSInfo",
    "Package",
    "ResolvedImage",
    "SignatureError",
    "SourceError",
    "VulnDBError",
]


class ImageError(Exception):
    """Base error of the image-trust package."""


class SourceError(ImageError):
    """An image could not be read from its source (missing, unreachable, malformed)."""


class CatalogError(ImageError):
    """A package database inside the image could not be read."""


class VulnDBError(ImageError):
    """The vulnerability database is missing, corrupt, or an import was rejected."""


class SignatureError(ImageError):
    """A signature could not be made or does not verify; the message says why."""


@dataclass(frozen=True)
class Layer:
    """One filesystem layer: its digest and a way to open its (maybe compressed) tar."""

    digest: str
    media_type: str
    open: Any  # Callable[[], AbstractContextManager[IO[bytes]]]


class ResolvedImage(ABC):
    """An image a source found: its identity, config and layers, in order."""

    reference: str
    digest: str  # the manifest digest when known (registry, RepoDigests), else the image id
    image_id: str  # sha256 of the config blob
    repo_digests: tuple[str, ...]
    config: dict[str, Any]

    @abstractmethod
    def layers(self) -> list[Layer]: ...

    def close(self) -> None:  # noqa: B027 (a default that does nothing is intended)
        """Release what the source holds (temporary files, connections)."""


class ImageSource(ABC):
    """Finds an image by reference and opens it."""

    name: str = "source"

    @abstractmethod
    def resolve(self, reference: str) -> AbstractContextManager[ResolvedImage]: ...


@dataclass(frozen=True)
class OSInfo:
    id: str
    version_id: str = ""
    pretty_name: str = ""
    version_codename: str = ""

    @property
    def ecosystem(self) -> str | None:
        """The OSV ecosystem of the OS packages, e.g. ``Debian:12``, ``Alpine:v3.19``."""
        if self.id in ("debian", "ubuntu"):
            major = self.version_id.split(".")[0] if self.id == "debian" else self.version_id
            return f"{self.id.capitalize()}:{major}" if major else self.id.capitalize()
        if self.id == "alpine":
            mm = ".".join(self.version_id.split(".")[:2])
            return f"Alpine:v{mm}" if mm else "Alpine"
        return None


@dataclass(frozen=True)
class Package:
    """One installed package, and where it was found."""

    name: str
    version: str
    type: str  # deb, apk, rpm, pypi, npm
    ecosystem: str  # the OSV ecosystem: Debian:12, Alpine:v3.19, PyPI, npm, or "" when none applies
    purl: str
    path: str
    source_name: str = ""  # Debian: the source package; vulnerabilities are keyed by it
    source_version: str = ""
    licenses: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("name", "version", "type", "ecosystem", "purl", "path")}
        if self.source_name:
            d["source_name"], d["source_version"] = self.source_name, self.source_version
        if self.licenses:
            d["licenses"] = list(self.licenses)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Package:
        return cls(
            d["name"],
            d["version"],
            d["type"],
            d["ecosystem"],
            d["purl"],
            d["path"],
            d.get("source_name", ""),
            d.get("source_version", ""),
            tuple(d.get("licenses") or ()),
        )


@dataclass(frozen=True)
class Inventory:
    """What an image contains."""

    digest: str
    image_id: str
    os: OSInfo | None
    packages: tuple[Package, ...]
    warnings: tuple[str, ...] = ()
    reference: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "image_id": self.image_id,
            "reference": self.reference,
            "os": None if self.os is None else self.os.__dict__,
            "packages": [p.as_dict() for p in self.packages],
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Inventory:
        os_info = OSInfo(**d["os"]) if d.get("os") else None
        return cls(
            d["digest"],
            d["image_id"],
            os_info,
            tuple(Package.from_dict(p) for p in d["packages"]),
            tuple(d.get("warnings") or ()),
            d.get("reference", ""),
        )


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
