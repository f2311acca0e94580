"""What every rule family shares: a rule's documentation (:class:`RuleDoc`), a
violation (:class:`Finding`), and reading a request body as the engine reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from moorage.engine_api.gojson import Struct

__all__ = [
    "Finding",
    "RuleDoc",
]


@dataclass(frozen=True)
class RuleDoc:
    """A built-in rule as ``moorage policy explain`` and docs/policy.md show it: its id,
    its family, the packs that enforce it ("" when a policy document configures it),
    what it checks, why, the request fields it reads and how to fix a request."""

    id: str
    family: str
    packs: str  # "baseline, restricted" / "restricted" / "" (configured)
    checks: str
    why: str
    fields: str
    fix: str


class Finding(msgspec.Struct, frozen=True):
    """One violation: the rule, where in the request, what was found, how to fix it.
    (A frozen struct, not a dataclass: a decision makes one per violation, and a
    struct is made in a tenth of the time.)"""

    rule: str
    path: str
    value: object
    message: str
    fix: str


def _get(obj: object, key: str) -> object:
    """A field as the engine finds it. A body the gateway decoded (a Struct) already
    has the engine's field names; anything else (a compose file, a test, a policy
    test case) is matched case-insensitively, as the engine would."""
    if type(obj) is Struct:
        return obj.get(key)
    if not isinstance(obj, dict):
        return None
    if key in obj:
        return obj[key]
    folded = key.lower()
    return next((v for k, v in obj.items() if isinstance(k, str) and k.lower() == folded), None)


def _dict(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[object]:
    """A list field; a lone string is a one-item list, as the engine's StrSlice reads it."""
    if isinstance(value, list):
        return value
    return [value] if isinstance(value, str) else []


def _text(value: object) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _finding(rule: str, path: str, value: object, message: str, fix: str) -> Finding:
    return Finding(rule, path, value, message, fix)


def _human(n: float) -> str:
    for unit, size in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
        if n >= size and n % (size // 8 or 1) == 0:
            return f"{n / size:g}{unit}"
    return f"{int(n)}"
