"""RPM packages, from the sqlite rpmdb (Fedora, RHEL 9, Rocky, Alma)."""

from __future__ import annotations

import re
import sqlite3
import struct
from collections.abc import Iterable
from typing import ClassVar, Literal
from urllib.parse import quote

from moorage.images.catalogers.interface import Cataloger, CatalogError, OSInfo, Package

__all__ = ["RPM_DBS", "RpmCataloger"]

RPM_DBS = ("var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite")
"""The sqlite rpmdb: its classic home, then the one newer distributions use."""

_RPM_TAGS = {
    1000: "name",
    1001: "version",
    1002: "release",
    1003: "epoch",
    1014: "license",
    1022: "arch",
    1044: "sourcerpm",
}


def _rpm_header(blob: bytes) -> dict[str, str | int]:
    """The few tags we need from one rpm header blob (an rpmdb ``Packages`` row)."""
    il, dl = struct.unpack(">II", blob[:8])
    if il > 100_000 or 8 + il * 16 + dl > len(blob):
        raise ValueError("header counts run past the blob")
    store = 8 + il * 16
    out: dict[str, str | int] = {}
    for i in range(il):
        tag, typ, off, count = struct.unpack(">IIII", blob[8 + i * 16 : 24 + i * 16])
        name = _RPM_TAGS.get(tag)
        if name is None or off >= dl:
            continue
        start = store + off
        if typ == 4 and count >= 1:  # INT32
            out[name] = struct.unpack(">I", blob[start : start + 4])[0]
        elif typ in (6, 8, 9):  # STRING, STRING_ARRAY, I18NSTRING: the first string
            end = blob.index(b"\0", start)
            out[name] = blob[start:end].decode("utf-8", "replace")
    return out


class RpmCataloger(Cataloger):
    """Installed packages of an sqlite rpmdb (the Berkeley DB format is not read)."""

    name: ClassVar[str] = "rpm"
    kind: ClassVar[Literal["os", "language"]] = "os"

    def wants(self, path: str) -> bool:
        """The rpmdb at either of its two homes."""
        return path in RPM_DBS

    def paths(self, files: Iterable[str]) -> list[str]:
        """The classic location first, as rpm itself looks."""
        present = set(files)
        return [p for p in RPM_DBS if p in present]

    def parse(self, data: bytes, path: str, os_info: OSInfo | None) -> list[Package]:
        """Every package but the ``gpg-pubkey`` pseudo-packages."""
        try:
            return self._parse(data, path, os_info)
        except (struct.error, sqlite3.Error) as exc:
            raise CatalogError(str(exc)) from exc

    def _parse(self, data: bytes, path: str, os_info: OSInfo | None) -> list[Package]:
        conn = sqlite3.connect(":memory:")
        try:
            conn.deserialize(data)
            rows = conn.execute("SELECT blob FROM Packages").fetchall()
        finally:
            conn.close()
        distro_id = os_info.id if os_info else "rpm"
        eco = ""
        if os_info:
            major = os_info.version_id.split(".")[0]
            eco = {"rocky": f"Rocky Linux:{major}", "almalinux": f"AlmaLinux:{major}"}.get(os_info.id, "")
        out = []
        for (blob,) in rows:
            h = _rpm_header(bytes(blob))
            name = str(h.get("name", ""))
            if not name or name == "gpg-pubkey":
                continue
            version = f"{h.get('version', '')}-{h.get('release', '')}"
            epoch = h.get("epoch")
            full = f"{epoch}:{version}" if epoch else version
            qs = [f"arch={h['arch']}"] if h.get("arch") else []
            if epoch:
                qs.append(f"epoch={epoch}")
            if os_info and os_info.version_id:
                qs.append(f"distro={os_info.id}-{os_info.version_id}")
            purl = f"pkg:rpm/{distro_id}/{quote(name)}@{quote(version, safe='')}" + (
                "?" + "&".join(qs) if qs else ""
            )
            srpm = str(h.get("sourcerpm", ""))
            src = re.sub(r"-[^-]+-[^-]+\.src\.rpm$", "", srpm) if srpm else name
            lic = (str(h["license"]),) if h.get("license") else ()
            out.append(Package(name, full, "rpm", eco, purl, "/" + path, src, full, lic))
        return out
