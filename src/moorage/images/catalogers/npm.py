"""npm packages, from ``node_modules/**/package.json``."""

from __future__ import annotations

import json
from typing import ClassVar, Literal
from urllib.parse import quote

from moorage.images.catalogers.interface import Cataloger, OSInfo, Package

__all__ = ["NpmCataloger"]


class NpmCataloger(Cataloger):
    """Installed packages: a ``package.json`` directly under ``node_modules/NAME``
    or ``node_modules/@SCOPE/NAME`` (deeper ones are a package's own files)."""

    name: ClassVar[str] = "npm"
    kind: ClassVar[Literal["os", "language"]] = "language"

    def wants(self, path: str) -> bool:
        """A package's own manifest, not a ``package.json`` somewhere inside it."""
        if not (path.endswith("/package.json") and "node_modules/" in path):
            return False
        parts = path.split("/")
        return len(parts) >= 3 and (
            parts[-3] == "node_modules"
            or (len(parts) >= 4 and parts[-4] == "node_modules" and parts[-3][:1] == "@")
        )

    def parse(self, data: bytes, path: str, os_info: OSInfo | None) -> list[Package]:
        """The package the manifest names; nothing when it has no name or version."""
        doc = json.loads(data)
        if not isinstance(doc, dict):
            return []
        name, version = doc.get("name"), doc.get("version")
        if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
            return []
        if name.startswith("@") and "/" in name:
            scope, _, bare = name.partition("/")
            purl_name = f"{quote(scope)}/{quote(bare)}"
        else:
            purl_name = quote(name)
        lic = doc.get("license")
        licenses = (lic,) if isinstance(lic, str) and lic else ()
        return [
            Package(
                name,
                version,
                "npm",
                "npm",
                f"pkg:npm/{purl_name}@{quote(version)}",
                "/" + path,
                licenses=licenses,
            )
        ]
