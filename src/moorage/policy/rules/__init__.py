"""The built-in rules: each one's id, documentation and fix (:data:`RULES`), and its
check, one function per rule id in the family's module. :mod:`moorage.policy.builtin`
pairs the two into rule objects and composes the packs of them.

:func:`reference_markdown` renders them as the rule reference of docs/policy.md, so
the reference can't drift from the code.
"""

from moorage.policy.rules.base import RuleDoc
from moorage.policy.rules.catalog import RULES, lookup, reference_markdown, with_reference

__all__ = [
    "RULES",
    "RuleDoc",
    "lookup",
    "reference_markdown",
    "with_reference",
]
