"""SBOMs from an inventory: CycloneDX 1.6 JSON (cyclonedx-python-lib) and SPDX 2.3 JSON."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from typing import Any

from moorage import __version__
from moorage.images.catalogers.interface import Inventory
from moorage.images.formats.interface import FormatError, ReportFormat, ReportRun

__all__ = ["CycloneDXFormat", "SPDXFormat", "cyclonedx", "spdx"]


def cyclonedx(inv: Inventory, now: dt.datetime | None = None) -> str:
    """A CycloneDX 1.6 JSON document: the image as the metadata component, the OS,
    and one component per package with its purl and where it was found."""
    from cyclonedx.model import Property
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.license import LicenseExpression
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    bom = Bom()
    bom.metadata.timestamp = now or dt.datetime.now(dt.UTC)
    name = inv.reference or inv.digest
    image = Component(
        name=name.split("@")[0],
        version=inv.digest,
        type=ComponentType.CONTAINER,
        bom_ref=inv.digest,
        properties=[Property(name="moorage:image:id", value=inv.image_id)],
    )
    bom.metadata.component = image
    if inv.os is not None:
        bom.components.add(
            Component(
                name=inv.os.id,
                version=inv.os.version_id or None,
                type=ComponentType.OPERATING_SYSTEM,
                description=inv.os.pretty_name or None,
                bom_ref=f"os:{inv.os.id}:{inv.os.version_id}",
            )
        )
    for n, p in enumerate(inv.packages):
        licenses = []
        for lic in p.licenses:
            try:
                licenses.append(LicenseExpression(lic))
            except (ValueError, TypeError):
                continue
        comp = Component(
            name=p.name,
            version=p.version,
            type=ComponentType.LIBRARY,
            purl=PackageURL.from_string(p.purl),
            bom_ref=f"{p.purl}#{n}",
            properties=[
                Property(name="moorage:package:path", value=p.path),
                Property(name="moorage:package:type", value=p.type),
            ],
        )
        if licenses:
            comp.licenses.update(licenses[:1])
        bom.components.add(comp)
        bom.register_dependency(image, [comp])
    return str(JsonV1Dot6(bom).output_as_string(indent=2))


def _spdx_id(text: str) -> str:
    return "SPDXRef-" + re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-")[:120]


def spdx(inv: Inventory, now: dt.datetime | None = None) -> str:
    """An SPDX 2.3 JSON document: the image package DESCRIBED, CONTAINS each package."""
    created = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    name = inv.reference or inv.digest
    image_id = _spdx_id(f"Image-{inv.digest}")
    packages: list[dict[str, Any]] = [
        {
            "SPDXID": image_id,
            "name": name.split("@")[0],
            "versionInfo": inv.digest,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": False,
            "primaryPackagePurpose": "CONTAINER",
            "checksums": [{"algorithm": "SHA256", "checksumValue": inv.digest.partition(":")[2]}],
        }
    ]
    relationships = [
        {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": image_id}
    ]
    if inv.os is not None:
        os_id = _spdx_id(f"OperatingSystem-{inv.os.id}-{inv.os.version_id}")
        packages.append(
            {
                "SPDXID": os_id,
                "name": inv.os.id,
                "versionInfo": inv.os.version_id or "NOASSERTION",
                "downloadLocation": "NOASSERTION",
                "filesAnalyzed": False,
                "primaryPackagePurpose": "OPERATING-SYSTEM",
            }
        )
        relationships.append(
            {"spdxElementId": image_id, "relationshipType": "CONTAINS", "relatedSpdxElement": os_id}
        )
    for n, p in enumerate(inv.packages):
        pid = _spdx_id(f"Package-{p.type}-{p.name}-{n}")
        lic = (
            p.licenses[0]
            if p.licenses and re.fullmatch(r"[A-Za-z0-9.+ ()-]+", p.licenses[0])
            else "NOASSERTION"
        )
        packages.append(
            {
                "SPDXID": pid,
                "name": p.name,
                "versionInfo": p.version,
                "downloadLocation": "NOASSERTION",
                "filesAnalyzed": False,
                "licenseConcluded": "NOASSERTION",
                "licenseDeclared": lic,
                "copyrightText": "NOASSERTION",
                "sourceInfo": f"found in {p.path}",
                "primaryPackagePurpose": "LIBRARY",
                "externalRefs": [
                    {
                        "referenceCategory": "PACKAGE-MANAGER",
                        "referenceType": "purl",
                        "referenceLocator": p.purl,
                    }
                ],
            }
        )
        relationships.append(
            {"spdxElementId": image_id, "relationshipType": "CONTAINS", "relatedSpdxElement": pid}
        )
    doc = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": f"https://spdx.org/spdxdocs/moorage-{inv.digest.partition(':')[2][:16]}-{uuid.uuid4()}",
        "creationInfo": {"created": created, "creators": [f"Tool: moorage-{__version__}"]},
        "packages": packages,
        "relationships": relationships,
    }
    return json.dumps(doc, indent=2)


def _inventory(run: ReportRun, what: str) -> Inventory:
    if run.inventory is None:
        raise FormatError(f"a {what} SBOM describes an image, and this report has none; use --format sarif")
    return run.inventory


class CycloneDXFormat(ReportFormat):
    """The run's inventory as CycloneDX 1.6 JSON."""

    def render(self, run: ReportRun) -> str:
        """The SBOM; :class:`FormatError` when the run describes no image."""
        return cyclonedx(_inventory(run, "CycloneDX"))


class SPDXFormat(ReportFormat):
    """The run's inventory as SPDX 2.3 JSON."""

    def render(self, run: ReportRun) -> str:
        """The SBOM; :class:`FormatError` when the run describes no image."""
        return spdx(_inventory(run, "SPDX"))
