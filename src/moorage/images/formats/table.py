"""A table for a person at a terminal: heading lines, one row per result, footer lines."""

from __future__ import annotations

import re
from collections.abc import Sequence

from moorage.images.formats.interface import Line, Painter, ReportFormat, ReportRun, plain

__all__ = ["TableFormat", "columns"]

_ESCAPE = re.compile(r"\033\[[0-9;]*m")


def columns(headers: Sequence[str], rows: Sequence[Sequence[str]], paint: Painter = plain) -> str:
    """Column-aligned text with a bold header; colour codes don't count toward width."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(_ESCAPE.sub("", cell)))
    lines = []
    for row in [list(headers), *[list(r) for r in rows]]:
        cells = [c + " " * (widths[i] - len(_ESCAPE.sub("", c))) for i, c in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
    lines[0] = paint(lines[0], "bold")
    return "\n".join(lines)


class TableFormat(ReportFormat):
    """The heading, the results as a table (suppressed ones only when asked), a note
    of how many are hidden, and the footer."""

    interactive = True

    def __init__(self, show_suppressed: bool = False, paint: Painter = plain) -> None:
        self.show_suppressed = show_suppressed
        self.paint = paint

    def _line(self, line: Line) -> str:
        return "".join(self.paint(s.text, s.style) if s.style else s.text for s in line)

    def render(self, run: ReportRun) -> str:
        """The table text; colour only as the painter adds it."""
        out = [self._line(line) for line in run.heading]
        shown = [r for r in run.results if self.show_suppressed or not r.suppressed]
        rows = [[self.paint(c.text, c.style) if c.style else c.text for c in r.cells] for r in shown]
        if rows:
            if out:
                out.append("")
            out.append(columns(run.columns, rows, self.paint))
        hidden = sum(1 for r in run.results if r.suppressed)
        if hidden and not self.show_suppressed:
            out.append(self.paint(f"\n{hidden} suppressed finding(s) not shown (--show-suppressed)", "dim"))
        out.extend(self._line(line) for line in run.footer)
        return "\n".join(out)
