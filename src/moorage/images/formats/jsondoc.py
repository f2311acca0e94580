"""JSON: the producer's own document, whose schema its consumers already rely on."""

from __future__ import annotations

import json

from moorage.images.formats.interface import FormatError, ReportFormat, ReportRun

__all__ = ["JsonFormat"]


class JsonFormat(ReportFormat):
    """The run's JSON document, keys sorted and indented."""

    def render(self, run: ReportRun) -> str:
        """The document; :class:`FormatError` when the producer wrote none."""
        if run.document is None:
            raise FormatError(f"{run.tool.name} wrote no JSON document for this report; use --format sarif")
        return json.dumps(run.document, indent=2, sort_keys=True)
