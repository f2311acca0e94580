"""Debian packages, from ``var/lib/dpkg/status`` and distroless ``status.d/``."""

from __future__ import annotations

from typing import ClassVar, Literal
from urllib.parse import quote

from moorage.images.catalogers.interface import Cataloger, OSInfo, Package

__all__ = ["DPKG_STATUS", "DPKG_STATUS_D", "DpkgCataloger"]

DPKG_STATUS = "var/lib/dpkg/status"
"""The dpkg database of a full Debian or Ubuntu system."""
DPKG_STATUS_D = "var/lib/dpkg/status.d/"
"""Distroless images: one status paragraph per file."""


def _paragraphs(text: str) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    cur: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if not line.strip():
            if cur:
                out.append(cur)
            cur, last = {}, ""
        elif line[0] in " \t":
            if last:
                cur[last] += "\n" + line.strip()
        else:
            key, _, value = line.partition(":")
            last = key.strip()
            cur[last] = value.strip()
    if cur:
        out.append(cur)
    return out


class DpkgCataloger(Cataloger):
    """Installed packages of the dpkg database, keyed to their source package as
    Debian files its advisories."""

    name: ClassVar[str] = "dpkg"
    kind: ClassVar[Literal["os", "language"]] = "os"

    def wants(self, path: str) -> bool:
        """The status file, and each distroless ``status.d`` entry (not its md5sums)."""
        if path == DPKG_STATUS:
            return True
        return path.startswith(DPKG_STATUS_D) and not path.endswith(".md5sums")

    def parse(self, data: bytes, path: str, os_info: OSInfo | None) -> list[Package]:
        """Every paragraph whose status ends in ``installed``."""
        distro = f"{os_info.id}-{os_info.version_id}" if os_info and os_info.version_id else ""
        namespace = os_info.id if os_info and os_info.id in ("debian", "ubuntu") else "debian"
        eco = (os_info.ecosystem if os_info else None) or ""
        out = []
        for p in _paragraphs(data.decode("utf-8", "replace")):
            name, version = p.get("Package"), p.get("Version")
            status = p.get("Status", "install ok installed")
            if not name or not version or not status.endswith(" installed"):
                continue
            src_name, src_version = name, version
            if p.get("Source"):
                src_name, _, rest = p["Source"].partition(" ")
                if rest.strip().startswith("(") and rest.strip().endswith(")"):
                    src_version = rest.strip()[1:-1].strip()
            arch = p.get("Architecture", "")
            qs = [f"arch={arch}"] if arch else []
            if distro:
                qs.append(f"distro={distro}")
            if src_name != name:
                qs.append(f"upstream={quote(src_name)}")
            purl = f"pkg:deb/{namespace}/{quote(name)}@{quote(version, safe='')}" + (
                "?" + "&".join(qs) if qs else ""
            )
            out.append(Package(name, version, "deb", eco, purl, "/" + path, src_name, src_version))
        return out
