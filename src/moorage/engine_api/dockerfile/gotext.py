"""Go's character classes and case rules, as the engine's Dockerfile reader applies them."""

from __future__ import annotations

import re

# unicode.IsSpace: the Latin-1 spaces plus the White_Space property (stable since Unicode 6.3).
_GO_SPACE = frozenset("\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000") | frozenset(
    chr(c) for c in range(0x2000, 0x200B)
)
# The same test applied to single bytes (rune(byte)), as extractBuilderFlags does.
_GO_SPACE_BYTE = frozenset("\t\n\v\f\r \x85\xa0")
_RE_GO_INT = re.compile(r"[+-]?[0-9]+")  # strconv.ParseInt(s, 10, 0) syntax


def _is_surrogate(c: str) -> bool:
    return "\udc80" <= c <= "\udcff"


def _go_trim_left(s: str) -> str:
    """bytes.TrimLeftFunc(s, unicode.IsSpace); an invalid byte decodes to U+FFFD, not a space."""
    i = 0
    while i < len(s) and s[i] in _GO_SPACE:
        i += 1
    return s[i:]


def _go_trim(s: str) -> str:
    """strings.TrimSpace."""
    s = _go_trim_left(s)
    j = len(s)
    while j > 0 and s[j - 1] in _GO_SPACE:
        j -= 1
    return s[:j]


def _go_lower(s: str) -> str:
    """strings.ToLower with Go's simple case mapping.

    Only U+0130 and the Kelvin sign lower to ASCII letters (Python's full mapping turns U+0130
    into two characters), which matters because stage names and instruction names are ASCII.
    """
    out = []
    for c in s:
        if c == "\u0130":
            out.append("i")
        elif c == "\u212a":
            out.append("k")
        else:
            low = c.lower()
            out.append(low if len(low) == 1 else c)
    return "".join(out)


def _go_equal_fold_ascii(s: str, lower_ascii: str) -> bool:
    """strings.EqualFold(s, t) for an all-lowercase ASCII ``t``: simple folding, so U+017F (long
    s) matches ``s`` and U+212A (Kelvin) matches ``k``, but U+0130 matches nothing ASCII."""
    if len(s) != len(lower_ascii):
        return False
    for a, b in zip(s, lower_ascii, strict=True):
        if a.lower() == b and a.isascii():
            continue
        if (a, b) in (("\u017f", "s"), ("\u212a", "k")):
            continue
        return False
    return True


def _go_parse_int(s: str) -> int | None:
    """strconv.ParseInt(s, 10, 0) on a 64-bit engine; None where Go returns an error."""
    if not _RE_GO_INT.fullmatch(s):
        return None
    n = int(s)
    return n if -(2**63) <= n < 2**63 else None
