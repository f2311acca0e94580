"""SBOMs validate against the CycloneDX 1.6 schema, and SPDX 2.3 names every package."""

from __future__ import annotations

import json

from moorage.images.catalogers.interface import Inventory, OSInfo, Package
from moorage.images.formats.sbom import cyclonedx, spdx


def test_sboms_are_valid_cyclonedx_16_and_spdx_23() -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    inv = Inventory("sha256:" + "a" * 64, "sha256:" + "b" * 64, OSInfo("debian", "12", "Debian 12"), (
        Package("libc6", "2.36-9+deb12u4", "deb", "Debian:12", "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64",
                "/var/lib/dpkg/status", "glibc", "2.36-9+deb12u4"),
        Package("requests", "2.19.0", "pypi", "PyPI", "pkg:pypi/requests@2.19.0", "/x/METADATA", licenses=("Apache-2.0",)),
    ), reference="registry.example/app:1")  # fmt: skip
    doc = cyclonedx(inv)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(doc) is None
    parsed = json.loads(doc)
    assert parsed["specVersion"] == "1.6"
    assert {c["purl"] for c in parsed["components"] if "purl" in c} == {p.purl for p in inv.packages}
    s = json.loads(spdx(inv))
    assert s["spdxVersion"] == "SPDX-2.3" and len(s["packages"]) == 4
    assert {r["referenceLocator"] for p in s["packages"] for r in p.get("externalRefs", [])} == {
        p.purl for p in inv.packages
    }
    assert sum(r["relationshipType"] == "CONTAINS" for r in s["relationships"]) == 3
