"""Run the catalogers over an image's files: pick them by :class:`CatalogerChoice`,
filter layers with :func:`wanted_by`, and collect an inventory with :func:`catalog`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence

from moorage.images.catalogers.apk import ApkCataloger
from moorage.images.catalogers.dpkg import DpkgCataloger
from moorage.images.catalogers.interface import Catalog, Cataloger, CatalogError, OSInfo, Package
from moorage.images.catalogers.npm import NpmCataloger
from moorage.images.catalogers.osrelease import OS_RELEASE, parse_os_release
from moorage.images.catalogers.python import PythonCataloger
from moorage.images.catalogers.rpm import RpmCataloger
from moorage.images.layers import Filesystem

__all__ = ["DEFAULT_CATALOGERS", "CatalogerChoice", "catalog", "wanted", "wanted_by"]


@enum.unique
class CatalogerChoice(enum.StrEnum):
    """The catalogers Moorage has, by name; OS databases first, as the inventory lists them."""

    DPKG = "dpkg"
    APK = "apk"
    RPM = "rpm"
    PYTHON = "python"
    NPM = "npm"

    def to_cataloger(self) -> Cataloger:
        """A cataloger of this kind."""
        match self:
            case CatalogerChoice.DPKG:
                return DpkgCataloger()
            case CatalogerChoice.APK:
                return ApkCataloger()
            case CatalogerChoice.RPM:
                return RpmCataloger()
            case CatalogerChoice.PYTHON:
                return PythonCataloger()
            case CatalogerChoice.NPM:
                return NpmCataloger()


DEFAULT_CATALOGERS: tuple[Cataloger, ...] = tuple(c.to_cataloger() for c in CatalogerChoice)
"""Every cataloger, in :class:`CatalogerChoice` order: what a scan runs."""


def wanted_by(catalogers: Sequence[Cataloger]) -> Callable[[str], bool]:
    """The layer filter for ``catalogers``: ``os-release`` and the files any of them reads."""

    def want(path: str) -> bool:
        return path in OS_RELEASE or any(c.wants(path) for c in catalogers)

    return want


wanted = wanted_by(DEFAULT_CATALOGERS)
"""The paths the default catalogers read; everything else in a layer is skipped unread."""


def catalog(fs: Filesystem, catalogers: Sequence[Cataloger] = DEFAULT_CATALOGERS) -> Catalog:
    """The OS, the packages and any warnings, from the wanted files of an image.

    A database that can't be read becomes a warning naming it, never an empty
    inventory that looks clean.
    """
    warnings: list[str] = list(fs.warnings)
    os_info: OSInfo | None = None
    for p in OS_RELEASE:
        if p in fs.files:
            os_info = parse_os_release(fs.files[p])
            break
    packages: list[Package] = []

    def read(cataloger: Cataloger, path: str) -> None:
        try:
            packages.extend(cataloger.read(fs.files[path], path, os_info))
        except CatalogError as exc:
            warnings.append(f"/{path} could not be read: {exc}")

    for c in catalogers:
        if c.kind == "os":
            for path in c.paths(fs.files):
                read(c, path)
    languages = [c for c in catalogers if c.kind == "language"]
    for path in sorted(fs.files):
        reader = next((c for c in languages if c.wants(path)), None)
        if reader is not None:
            read(reader, path)
    if os_info is None and any(p.type in ("deb", "apk", "rpm") for p in packages):
        warnings.append("no /etc/os-release: OS packages can't be matched to a distribution's advisories")
    return Catalog(os_info, tuple(packages), tuple(warnings))
