"""Python packages, from ``*.dist-info/METADATA`` and ``*.egg-info``."""

from __future__ import annotations

import re
from email.parser import BytesHeaderParser
from typing import ClassVar, Literal
from urllib.parse import quote

from moorage.images.catalogers.interface import Cataloger, OSInfo, Package

__all__ = ["PythonCataloger", "pep503"]


def pep503(name: str) -> str:
    """A Python package name normalised as PEP 503 does (``Foo_Bar`` → ``foo-bar``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


class PythonCataloger(Cataloger):
    """Installed distributions: wheels' ``dist-info`` and legacy ``egg-info``."""

    name: ClassVar[str] = "python"
    kind: ClassVar[Literal["os", "language"]] = "language"

    def wants(self, path: str) -> bool:
        """A ``METADATA`` inside a ``.dist-info``, or an ``.egg-info`` file or its ``PKG-INFO``."""
        if path.endswith("/METADATA"):
            return path[: -len("/METADATA")].endswith(".dist-info")
        return path.endswith((".egg-info/PKG-INFO", ".egg-info"))

    def parse(self, data: bytes, path: str, os_info: OSInfo | None) -> list[Package]:
        """The one distribution the metadata names; nothing when it has no name or version."""
        headers = BytesHeaderParser().parsebytes(data)
        name, version = headers.get("Name"), headers.get("Version")
        if not name or not version:
            return []
        lic = headers.get("License-Expression") or headers.get("License") or ""
        licenses = (lic.strip(),) if lic.strip() and len(lic) < 200 and "\n" not in lic.strip() else ()
        norm = pep503(str(name))
        return [
            Package(
                norm,
                str(version).strip(),
                "pypi",
                "PyPI",
                f"pkg:pypi/{norm}@{quote(str(version).strip())}",
                "/" + path,
                licenses=licenses,
            )
        ]
