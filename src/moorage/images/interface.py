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
    "Finding",
    "ImageError",
    "ImageSource",
    "Layer",
    "ResolvedImage",
    "SignatureError",
    "SourceError",
    "VulnDBError",
]


class ImageError(Exception):
    """Base error of the image-trust package."""


class SourceError(ImageError):
    """An image could not be read from its source (missing, unreachable, malformed)."""


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
