"""What a built-in rule is: its id, its documentation and its fix, as one object."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RuleDoc"]


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
