"""The report-format seam: a neutral, frozen result model that any check can
produce, and :class:`ReportFormat`, which renders it.

The model follows SARIF's shape, because SARIF is the richest format that must be
written: a run has a tool, rules (what is checked, and how to fix it) and results
(one rule, one level, a message, where). What a person at a terminal reads is
carried alongside: heading lines, table cells and footer lines, each a run of
styled spans, so the table format knows nothing of images or policies. Formats
that describe something other than results (the producer's own JSON document, an
SBOM of an inventory) take it from the run too; a run without it can't be
rendered in that format, and says so.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from moorage.images.catalogers.interface import Inventory
from moorage.images.interface import ImageError

__all__ = [
    "FormatError",
    "Level",
    "Line",
    "Location",
    "Painter",
    "ReportFormat",
    "ReportRun",
    "Result",
    "Rule",
    "Span",
    "Tool",
    "plain",
]

Level = Literal["error", "warning", "note"]
"""How serious a result is, in SARIF's words: a denial or a severe finding is an error."""

Painter = Callable[[str, str], str]
"""Styles text for a terminal: ``(text, style) -> text``; styles are ``bold``,
``red``, ``yellow``, ``green`` and ``dim``."""


def plain(text: str, style: str) -> str:
    """The painter that leaves text as it is (not a terminal, or ``NO_COLOR``)."""
    return text


class FormatError(ImageError):
    """A run can't be rendered in the format asked for; the message says which to use."""


@dataclass(frozen=True)
class Span:
    """Some text and how to style it; no style leaves it plain."""

    text: str
    style: str = ""


Line = tuple[Span, ...]
"""One line of terminal output, as styled spans."""


@dataclass(frozen=True)
class Tool:
    """What produced the report."""

    name: str
    version: str = ""
    semantic_version: str = ""
    information_uri: str = ""


@dataclass(frozen=True)
class Rule:
    """What a result was checked against: its id, what it checks, why, how to fix.

    ``full_description`` and ``help`` are left out of a report when None, and
    written (even empty) otherwise.
    """

    id: str
    short_description: str
    name: str = ""
    full_description: str | None = None
    help: str | None = None
    help_uri: str = ""
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Location:
    """Where a result is: a file or path (``uri``, maybe a line) and a logical name
    (an image, ``services.web:privileged``)."""

    uri: str = ""
    start_line: int | None = None
    logical_name: str = ""
    logical_kind: str = ""
    qualified_name: str = ""


@dataclass(frozen=True)
class Result:
    """One rule's verdict on one thing.

    A suppressed result (``suppressed`` says why) stays in the run so a person can
    ask to see it, but machine formats leave it out. ``cells`` is its row in a table.
    """

    rule_id: str
    level: Level
    message: str
    locations: tuple[Location, ...] = ()
    properties: Mapping[str, Any] = field(default_factory=dict)
    suppressed: str = ""
    cells: Line = ()


@dataclass(frozen=True)
class ReportRun:
    """One run of one tool: what every format renders."""

    tool: Tool
    rules: tuple[Rule, ...] = ()
    results: tuple[Result, ...] = ()
    properties: Mapping[str, Any] = field(default_factory=dict)
    heading: tuple[Line, ...] = ()
    columns: tuple[str, ...] = ()
    footer: tuple[Line, ...] = ()
    warnings: tuple[str, ...] = ()
    document: Mapping[str, Any] | None = None  # the producer's own JSON document
    inventory: Inventory | None = None  # what an SBOM describes

    @property
    def active(self) -> tuple[Result, ...]:
        """The results not suppressed."""
        return tuple(r for r in self.results if not r.suppressed)

    def rule(self, rule_id: str) -> Rule | None:
        """The rule with this id, if the run describes it."""
        return next((r for r in self.rules if r.id == rule_id), None)


class ReportFormat(ABC):
    """Renders a :class:`ReportRun` as text."""

    interactive: ClassVar[bool] = False
    """Whether the format is for a person at a terminal: then progress, warnings and
    the reason for a failing exit go to stderr as well."""

    @abstractmethod
    def render(self, run: ReportRun) -> str:
        """The report, without a trailing newline; :class:`FormatError` when the run
        lacks what this format describes."""
