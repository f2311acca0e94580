"""Pick a report format by name (``--format``), as pip-audit's ``OutputFormatChoice`` does."""

from __future__ import annotations

import enum

from moorage.images.formats.interface import Painter, ReportFormat, plain
from moorage.images.formats.jsondoc import JsonFormat
from moorage.images.formats.sarif import SarifFormat
from moorage.images.formats.sbom import CycloneDXFormat, SPDXFormat
from moorage.images.formats.table import TableFormat

__all__ = ["OutputFormat"]


@enum.unique
class OutputFormat(enum.StrEnum):
    """The report formats, by the name ``--format`` takes."""

    TABLE = "table"
    JSON = "json"
    SARIF = "sarif"
    CYCLONEDX = "cyclonedx"
    SPDX = "spdx"

    def to_format(self, show_suppressed: bool = False, paint: Painter = plain) -> ReportFormat:
        """The format; ``show_suppressed`` and ``paint`` matter to the table only."""
        match self:
            case OutputFormat.TABLE:
                return TableFormat(show_suppressed, paint)
            case OutputFormat.JSON:
                return JsonFormat()
            case OutputFormat.SARIF:
                return SarifFormat()
            case OutputFormat.CYCLONEDX:
                return CycloneDXFormat()
            case OutputFormat.SPDX:
                return SPDXFormat()
