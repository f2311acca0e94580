"""Version order per ecosystem: dpkg, apk, PEP 440, SemVer.

PEP 440 is pypa's ``packaging``. dpkg and apk are written here, after dpkg's
``verrevcmp`` and apk-tools' ordering, and tested against ``dpkg
--compare-versions`` itself: no kept Python library implements them. SemVer is
the 2.0.0 precedence rules, short enough to keep beside them.

Each ecosystem sorts versions its own way, and a vulnerability range is only as
right as the comparison behind it. Every function here returns a sort key (or
compares two strings) and raises :class:`VersionError` for a string the ecosystem
would not accept, so a caller can tell "not affected" from "can't tell".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from packaging.version import InvalidVersion, Version

__all__ = [
    "VersionError",
    "apk_compare",
    "compare",
    "dpkg_compare",
    "pep440_compare",
    "pep440_key",
    "semver_compare",
]


class VersionError(ValueError):
    """A version string the ecosystem's grammar does not accept."""


def _sign(n: int) -> int:
    return (n > 0) - (n < 0)


# ----------------------------------------------------------------------- dpkg
def _dpkg_order(c: str) -> int:
    if c == "~":
        return -1
    if c.isdigit():
        return 0
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


def _verrevcmp(a: str, b: str) -> int:
    """dpkg's comparison of an upstream version or a revision (deb-version(7))."""
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _dpkg_order(a[i]) if i < len(a) else 0
            bc = _dpkg_order(b[j]) if j < len(b) else 0
            if ac != bc:
                return _sign(ac - bc)
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return _sign(first_diff)
    return 0


_DPKG_UPSTREAM = re.compile(r"^[0-9][A-Za-z0-9.+~:-]*$")


@lru_cache(maxsize=65536)
def _dpkg_parse(v: str) -> tuple[int, str, str]:
    v = v.strip()
    epoch, colon, rest = v.partition(":")
    if colon:
        if not epoch.isdigit():
            raise VersionError(f"dpkg version {v!r}: the epoch {epoch!r} is not a number")
        ep = int(epoch)
    else:
        ep, rest = 0, v
    upstream, dash, revision = rest.rpartition("-")
    if not dash:
        upstream, revision = rest, ""
    elif not revision:
        raise VersionError(f"dpkg version {v!r}: the revision after '-' is empty")
    if not upstream:
        raise VersionError(f"dpkg version {v!r}: the upstream part is empty")
    if not upstream[0].isdigit():
        raise VersionError(f"dpkg version {v!r}: the upstream part must start with a digit")
    if not _DPKG_UPSTREAM.match(upstream) or not re.fullmatch(r"[A-Za-z0-9.+~]*", revision):
        raise VersionError(f"dpkg version {v!r}: invalid character")
    return ep, upstream, revision


def dpkg_compare(a: str, b: str) -> int:
    """-1, 0 or 1, as ``dpkg --compare-versions a lt|eq|gt b`` would say."""
    ea, ua, ra = _dpkg_parse(a)
    eb, ub, rb = _dpkg_parse(b)
    if ea != eb:
        return _sign(ea - eb)
    return _verrevcmp(ua, ub) or _verrevcmp(ra, rb)


# ------------------------------------------------------------------------ apk
_APK_SUFFIX = {"alpha": 0, "beta": 1, "pre": 2, "rc": 3, "": 4, "cvs": 5, "svn": 6, "git": 7, "hg": 8, "p": 9}
_APK = re.compile(
    r"^(?P<nums>[0-9]+(?:\.[0-9]+)*)(?P<letter>[a-z]?)"
    r"(?P<suffixes>(?:_(?:alpha|beta|pre|rc|cvs|svn|git|hg|p)[0-9]*)*)"
    r"(?:~(?P<hash>[0-9a-f]+))?(?:-r(?P<rev>[0-9]+))?$"
)


@lru_cache(maxsize=65536)
def _apk_key(v: str) -> tuple[Any, ...]:
    m = _APK.match(v.strip())
    if not m:
        raise VersionError(f"apk version {v!r} does not follow apk's grammar (1.2.3[a][_suffixN][-rN])")
    nums = tuple(int(x) for x in m["nums"].split("."))
    suffixes = tuple(
        (_APK_SUFFIX[s.rstrip("0123456789")], int(s.lstrip("abcdefghijklmnopqrstuvwxyz") or 0))
        for s in m["suffixes"].split("_")[1:]
    )
    # No suffix sorts between the pre-release ones (alpha..rc) and the post ones (p..).
    return (nums, m["letter"] or "", (*suffixes, (4, 0)), m["hash"] or "", int(m["rev"] or 0))


def apk_compare(a: str, b: str) -> int:
    """Compare two apk versions as ``apk version -t`` does: -1, 0 or 1."""
    ka, kb = _apk_key(a), _apk_key(b)
    # The first components compare numerically, the rest as apk does: a longer list wins.
    return (ka > kb) - (ka < kb)


# -------------------------------------------------------------------- PEP 440
@lru_cache(maxsize=65536)
def pep440_key(v: str) -> Version:
    """The version as PEP 440 orders it (pypa's ``packaging``, the reference
    implementation pip uses)."""
    try:
        return Version(v)
    except InvalidVersion as exc:
        raise VersionError(f"{v!r} is not a PEP 440 version") from exc


def pep440_compare(a: str, b: str) -> int:
    """Compare two PEP 440 versions: -1, 0 or 1."""
    ka, kb = pep440_key(a), pep440_key(b)
    return (ka > kb) - (ka < kb)


# --------------------------------------------------------------------- SemVer
_SEMVER = re.compile(
    r"^v?(?P<major>0|[1-9][0-9]*)(?:\.(?P<minor>[0-9]+))?(?:\.(?P<patch>[0-9]+))?"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z.-]+)?$"
)


@lru_cache(maxsize=65536)
def _semver_key(v: str) -> tuple[Any, ...]:
    m = _SEMVER.match(v.strip())
    if not m:
        raise VersionError(f"{v!r} is not a SemVer version (MAJOR.MINOR.PATCH[-pre][+build])")
    core = (int(m["major"]), int(m["minor"] or 0), int(m["patch"] or 0))
    if m["pre"] is None:
        return (core, 1, ())
    # Numeric identifiers sort below alphanumeric ones; a shorter list of equal
    # identifiers sorts first.
    ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in m["pre"].split("."))
    return (core, 0, ids)


def semver_compare(a: str, b: str) -> int:
    """Compare two SemVer 2.0 versions (build metadata ignored): -1, 0 or 1."""
    ka, kb = _semver_key(a), _semver_key(b)
    return (ka > kb) - (ka < kb)


_BY_ECOSYSTEM: dict[str, Callable[[str, str], int]] = {
    "debian": dpkg_compare,
    "ubuntu": dpkg_compare,
    "alpine": apk_compare,
    "pypi": pep440_compare,
    "npm": semver_compare,
    "semver": semver_compare,
}


def compare(ecosystem: str, a: str, b: str) -> int:
    """Compare two versions the way ``ecosystem`` (an OSV ecosystem name such as
    ``Debian:12`` or ``PyPI``) orders them."""
    base = ecosystem.partition(":")[0].lower()
    fn = _BY_ECOSYSTEM.get(base)
    if fn is None:
        raise VersionError(f"no version order known for the ecosystem {ecosystem!r}")
    return fn(a, b)
