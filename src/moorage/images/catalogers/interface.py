"""The cataloger seam: a :class:`Cataloger` reads one kind of package database and
returns :class:`Package` values; an image's :class:`Inventory` is what they found.

Outcomes are frozen dataclasses. A database that can't be parsed raises
:class:`CatalogError`, which the driver turns into a warning on the inventory, so a
scan never silently reports "nothing installed" for a corrupt image.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from moorage.images.interface import ImageError

__all__ = ["Catalog", "CatalogError", "Cataloger", "Inventory", "OSInfo", "Package"]


class CatalogError(ImageError):
    """A package database inside the image could not be read."""


@dataclass(frozen=True)
class OSInfo:
    """The distribution an image is built on, from its ``os-release``."""

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
        """The JSON shape of reports and of the inventory cache."""
        d = {k: getattr(self, k) for k in ("name", "version", "type", "ecosystem", "purl", "path")}
        if self.source_name:
            d["source_name"], d["source_version"] = self.source_name, self.source_version
        if self.licenses:
            d["licenses"] = list(self.licenses)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Package:
        """The inverse of :meth:`as_dict`."""
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
class Catalog:
    """What the catalogers found in one filesystem: the OS, the packages, and warnings."""

    os: OSInfo | None
    packages: tuple[Package, ...]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Inventory:
    """What an image contains."""

    digest: str
    image_id: str
    os: OSInfo | None
    packages: tuple[Package, ...]
    warnings: tuple[str, ...] = ()
    reference: str = ""
    # shells and package managers on well-known paths (/bin/sh, /usr/bin/apt), sorted:
    # present as a file, symlink or hard link in the final image (images.surface)
    executables: tuple[str, ...] = ()
    size: int | None = None  # bytes of file content over every layer; None: not measured
    diff_ids: tuple[str, ...] = ()  # the config's rootfs.diff_ids, base first
    base_name: str = ""  # the config's org.opencontainers.image.base.name label, "" when none
    base_digest: str = ""  # and its org.opencontainers.image.base.digest

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of reports and of the inventory cache."""
        d: dict[str, Any] = {
            "digest": self.digest,
            "image_id": self.image_id,
            "reference": self.reference,
            "os": None if self.os is None else self.os.__dict__,
            "packages": [p.as_dict() for p in self.packages],
            "warnings": list(self.warnings),
        }
        # what the attack-surface rules read, only when known (reports stay as they were)
        if self.executables:
            d["executables"] = list(self.executables)
        if self.size is not None:
            d["size"] = self.size
        if self.diff_ids:
            d["diff_ids"] = list(self.diff_ids)
        if self.base_name or self.base_digest:
            d["base"] = {"name": self.base_name, "digest": self.base_digest}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Inventory:
        """The inverse of :meth:`as_dict`."""
        os_info = OSInfo(**d["os"]) if d.get("os") else None
        return cls(
            d["digest"],
            d["image_id"],
            os_info,
            tuple(Package.from_dict(p) for p in d["packages"]),
            tuple(d.get("warnings") or ()),
            d.get("reference", ""),
            tuple(d.get("executables") or ()),
            d.get("size"),
            tuple(d.get("diff_ids") or ()),
            str((d.get("base") or {}).get("name") or ""),
            str((d.get("base") or {}).get("digest") or ""),
        )


class Cataloger(ABC):
    """Reads one kind of package database.

    ``kind`` orders the inventory: OS databases are read first, in the order the
    catalogers are given; language packages follow in path order, whichever
    cataloger reads them, so the inventory lists them as the filesystem does.
    """

    name: ClassVar[str]
    kind: ClassVar[Literal["os", "language"]]

    @abstractmethod
    def wants(self, path: str) -> bool:
        """Whether ``path`` (no leading slash) is a file this cataloger reads.

        Layers are filtered with this, so a file no cataloger wants is never kept.
        """

    def paths(self, files: Iterable[str]) -> list[str]:
        """The files this cataloger reads among ``files``, in the order it reads them."""
        return sorted(p for p in files if self.wants(p))

    @abstractmethod
    def parse(self, data: bytes, path: str, os_info: OSInfo | None) -> list[Package]:
        """The packages one database file lists; :class:`CatalogError` when it can't be read."""

    def read(self, data: bytes, path: str, os_info: OSInfo | None) -> list[Package]:
        """:meth:`parse`, with the parsers' own errors (bad JSON, a missing field)
        turned into :class:`CatalogError`, so the driver has one error to catch."""
        try:
            return self.parse(data, path, os_info)
        except CatalogError:
            raise
        except (ValueError, KeyError, IndexError) as exc:
            raise CatalogError(str(exc)) from exc
