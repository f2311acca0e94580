"""Units a policy document writes values in: sizes, CPU counts, durations, digests.

Each parser reads a value as Docker (or the document's author) writes it and raises
ValueError saying what is wrong and what a good value looks like. Pure.
"""

from __future__ import annotations

import math
import re

__all__ = ["parse_cpus", "parse_digest", "parse_duration", "parse_size"]

_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([bkmgt]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(value: object) -> int:
    """``512m``, ``2g``, ``1.5GiB`` or a byte count, as Docker reads ``--memory``."""
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int):
        return value
    m = _SIZE_RE.match(str(value))
    if not m:
        raise ValueError(f"not a size: {value!r} (use e.g. 512m or 2g)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def parse_cpus(value: object) -> float:
    """A CPU count: a finite number above 0 (``1``, ``0.5``)."""
    if isinstance(value, bool):
        raise ValueError(f"not a CPU count: {value!r}")
    try:
        cpus = float(value if isinstance(value, int | float) else str(value))
    except ValueError:
        raise ValueError(f"not a CPU count: {value!r} (use e.g. 0.5 or 2)") from None
    if not math.isfinite(cpus) or cpus <= 0:
        raise ValueError(f"not a CPU count: {value!r} (a number above 0, e.g. 0.5 or 2)")
    return cpus


_DURATION_RE = re.compile(r"^\s*([0-9]+)\s*([smhdw])\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(value: object) -> int:
    """``90s``, ``30m``, ``12h``, ``7d``, ``2w`` or a number of seconds, as seconds."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int):
        seconds = value
    else:
        m = _DURATION_RE.match(str(value))
        if not m:
            raise ValueError(f"not a duration: {value!r} (use e.g. 12h, 7d or 2w)")
        seconds = int(m.group(1)) * _SECONDS[m.group(2)]
    if seconds <= 0:
        raise ValueError(f"not a duration: {value!r} (must be more than 0)")
    return seconds


_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


def parse_digest(value: object) -> str:
    """A content digest, ``sha256:`` and 64 lower-case hex digits."""
    if not isinstance(value, str) or not _DIGEST_RE.match(value):
        raise ValueError(f"not a digest: {value!r} (use sha256: and 64 hex digits)")
    return value
