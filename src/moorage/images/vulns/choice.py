"""Pick a vulnerability source by name, as ``--vuln-source`` style options do."""

from __future__ import annotations

import enum
from pathlib import Path

from moorage.images.vulns.interface import VulnerabilitySource
from moorage.images.vulns.osv import OsvDatabase

__all__ = ["VulnerabilitySourceChoice"]


@enum.unique
class VulnerabilitySourceChoice(enum.StrEnum):
    """The vulnerability sources Moorage has, by name."""

    OSV = "osv"

    def to_source(self, path: Path) -> VulnerabilitySource:
        """A source of this kind whose data lives at ``path``."""
        match self:
            case VulnerabilitySourceChoice.OSV:
                return OsvDatabase(path)
