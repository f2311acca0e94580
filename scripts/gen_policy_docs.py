"""Rewrite the rule reference in docs/policy.md from the rule objects.

Run after changing a rule's documentation: ``python scripts/gen_policy_docs.py``.
A unit test fails while docs/policy.md differs from what this writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

from moorage.policy.rules import with_reference

DOC = Path(__file__).resolve().parents[1] / "docs" / "policy.md"


def main() -> int:
    """Regenerate the section between the markers; print whether it changed."""
    text = DOC.read_text()
    new = with_reference(text)
    if new != text:
        DOC.write_text(new)
        print(f"{DOC}: rule reference regenerated")
    else:
        print(f"{DOC}: up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
