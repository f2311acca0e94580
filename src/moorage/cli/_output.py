"""Readable terminal output: tables, colour when it is a terminal, JSON for machines."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from moorage.images.formats.table import columns

_CODES = {"green": "32", "red": "31", "yellow": "33", "bold": "1", "dim": "2"}


def _colour_on(stream: Any) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)()) and "NO_COLOR" not in os.environ


def paint(text: str, colour: str, stream: Any = None) -> str:
    """``text`` in ``colour`` when ``stream`` (default stdout) is a terminal and NO_COLOR is unset."""
    if not _colour_on(stream or sys.stdout):
        return text
    return f"\033[{_CODES[colour]}m{text}\033[0m"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A column-aligned table with a bold header when stdout is a terminal (colour
    codes don't count toward width): the report formats' ``columns``."""
    return columns(headers, rows, paint)


def emit_json(data: Any) -> None:
    """Print ``data`` as indented JSON with sorted keys, for scripts."""
    print(json.dumps(data, indent=2, sort_keys=True))


def step(message: str) -> None:
    """A progress line on stderr, so stdout stays clean for `eval` and pipes."""
    print(paint("•", "dim", sys.stderr) + " " + message, file=sys.stderr, flush=True)


def error(message: str) -> None:
    """An ``error:`` line on stderr; the message says what happened and what to do."""
    print(paint("error:", "red", sys.stderr) + " " + message, file=sys.stderr)
