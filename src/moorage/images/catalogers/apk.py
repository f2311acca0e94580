"""Alpine packages, from ``lib/apk/db/installed``."""

from __future__ import annotations

from typing import ClassVar, Literal
from urllib.parse import quote

from moorage.images.catalogers.interface import Cataloger, OSInfo, Package

__all__ = ["APK_DB", "ApkCataloger"]

APK_DB = "lib/apk/db/installed"
"""The apk database of installed packages."""


class ApkCataloger(Cataloger):
    """Installed packages of the apk database, with their origin (source) package."""

    name: ClassVar[str] = "apk"
    kind: ClassVar[Literal["os", "language"]] = "os"

    def wants(self, path: str) -> bool:
        """Only the installed database."""
        return path == APK_DB

    def parse(self, data: bytes, path: str, os_info: OSInfo | None) -> list[Package]:
        """One package per blank-line-separated entry that names ``P`` and ``V``."""
        distro = f"alpine-{os_info.version_id}" if os_info and os_info.version_id else ""
        eco = (os_info.ecosystem if os_info else None) or "Alpine"
        out = []
        entry: dict[str, str] = {}
        for line in [*data.decode("utf-8", "replace").splitlines(), ""]:
            if not line.strip():
                if entry.get("P") and entry.get("V"):
                    name, version = entry["P"], entry["V"]
                    qs = [f"arch={entry['A']}"] if entry.get("A") else []
                    if distro:
                        qs.append(f"distro={distro}")
                    purl = f"pkg:apk/alpine/{quote(name)}@{quote(version, safe='')}" + (
                        "?" + "&".join(qs) if qs else ""
                    )
                    lic = (entry["L"],) if entry.get("L") else ()
                    out.append(
                        Package(
                            name, version, "apk", eco, purl, "/" + path, entry.get("o", name), version, lic
                        )
                    )
                entry = {}
                continue
            key, colon, value = line.partition(":")
            if colon and len(key) == 1:
                entry.setdefault(key, value)
        return out
