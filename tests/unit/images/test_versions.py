"""Version order per ecosystem, checked against each ecosystem's own tools."""

from __future__ import annotations

import random
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.version import InvalidVersion, Version

from moorage.images.versions import (
    VersionError,
    apk_compare,
    compare,
    dpkg_compare,
    pep440_compare,
    semver_compare,
)


def _dpkg_version(rng: random.Random) -> str:
    def part(first_digit: bool, alphabet: str) -> str:
        n = rng.randint(1, 6)
        chars = [rng.choice("0123456789")] if first_digit else []
        chars += [rng.choice(alphabet) for _ in range(n)]
        return "".join(chars)

    upstream = part(True, "0123456789..~+abcz")
    v = upstream
    if rng.random() < 0.6:
        v += "-" + part(False, "0123456789.~+abz") if rng.random() < 0.9 else "-0"
    if rng.random() < 0.2:
        v = f"{rng.randint(0, 2)}:{v}"
    return v


def _dpkg_pairs(n: int, seed: int = 4401) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    pairs: list[tuple[str, str]] = []
    while len(pairs) < n:
        a = _dpkg_version(rng)
        r = rng.random()
        if r < 0.4:  # a near neighbour: one character changed, added or removed
            chars = list(a)
            i = rng.randrange(1, len(chars) + 1)
            op = rng.choice(["add", "del", "swap"])
            if op == "add":
                chars.insert(i, rng.choice("0123456789~.+a"))
            elif op == "del" and i < len(chars):
                del chars[i]
            elif i < len(chars):
                chars[i] = rng.choice("0123456789~a")
            b = "".join(chars)
        elif r < 0.5:
            b = a
        else:
            b = _dpkg_version(rng)
        try:
            dpkg_compare(a, "0")
            dpkg_compare(b, "0")
        except VersionError:
            continue
        pairs.append((a, b))
    return pairs


def _dpkg_says(pair: tuple[str, str]) -> int:
    a, b = pair
    if (
        subprocess.run(
            ["dpkg", "--compare-versions", a, "lt", b], check=False, capture_output=True
        ).returncode
        == 0
    ):
        return -1
    if (
        subprocess.run(
            ["dpkg", "--compare-versions", a, "eq", b], check=False, capture_output=True
        ).returncode
        == 0
    ):
        return 0
    return 1


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="needs the real dpkg binary")
def test_dpkg_agrees_with_dpkg_compare_versions_on_10000_pairs() -> None:
    pairs = _dpkg_pairs(10_000)
    with ThreadPoolExecutor(max_workers=4) as pool:
        truth = list(pool.map(_dpkg_says, pairs, chunksize=64))
    wrong = [
        (a, b, t, dpkg_compare(a, b))
        for (a, b), t in zip(pairs, truth, strict=True)
        if dpkg_compare(a, b) != t
    ]
    assert not wrong, f"{len(wrong)} of 10000 disagree, e.g. {wrong[:5]}"
    assert {-1, 0, 1} <= set(truth)


@pytest.mark.parametrize(
    ("a", "b", "want"),
    [
        ("1.0~rc1", "1.0", -1),
        ("1:0.1", "9.9", 1),
        ("2.36-9+deb12u4", "2.36-9+deb12u10", -1),
        ("1.0", "1.0-0", 0),
        ("7.88.1-10+deb12u5", "7.88.1-10+deb12u5", 0),
        ("1.2a", "1.2+", -1),
        ("0~", "0", -1),
    ],
)
def test_dpkg_known_orders(a: str, b: str, want: int) -> None:
    assert dpkg_compare(a, b) == want


@pytest.mark.parametrize("bad", ["", "a1.0", "x:1.0", "1.0 2", "1.0-a_b"])
def test_dpkg_rejects_bad_versions(bad: str) -> None:
    with pytest.raises(VersionError):
        dpkg_compare(bad, "1.0")


_PEP440_PARTS = st.builds(
    lambda ep, rel, pre, post, dev, local: f"{ep}{rel}{pre}{post}{dev}{local}",
    st.sampled_from(["", "", "", "1!", "0!"]),
    st.lists(st.integers(0, 12), min_size=1, max_size=4).map(lambda xs: ".".join(map(str, xs))),
    st.sampled_from(["", "", "a1", "b2", "rc0", "c3", "-alpha", ".beta4", "pre", "preview1", "RC2"]),
    st.sampled_from(["", "", ".post1", "-3", "post", ".rev2", "r1", "_post0"]),
    st.sampled_from(["", "", ".dev0", "dev3", "-dev", ".DEV2"]),
    st.sampled_from(["", "", "+local", "+1.abc", "+ubuntu-2", "+0", "+abc.5"]),
)


@settings(max_examples=3000, deadline=None)
@given(_PEP440_PARTS, _PEP440_PARTS)
def test_pep440_agrees_with_packaging(a: str, b: str) -> None:
    try:
        va, vb = Version(a), Version(b)
    except InvalidVersion:
        with pytest.raises(VersionError):
            pep440_compare(a, b)
        return
    want = (va > vb) - (va < vb)
    assert pep440_compare(a, b) == want, (a, b)


def test_pep440_agrees_on_real_versions_from_osv_fixture() -> None:
    real = [
        "1.0",
        "1.0.post1",
        "1.0a1",
        "1.0b2.dev3",
        "2.0.0rc1",
        "0.9.9",
        "1!0.1",
        "1.0+local.7",
        "1.0.0",
        "2.28.2",
        "2.31.0",
        "1.26.17",
        "3.1.4",
        "0.20.1",
        "2.0.0.dev0",
        "1.0-1",
    ]
    for a in real:
        for b in real:
            va, vb = Version(a), Version(b)
            assert pep440_compare(a, b) == (va > vb) - (va < vb), (a, b)


@pytest.mark.parametrize(
    ("a", "b", "want"),
    [
        ("1.2.3_rc1-r0", "1.2.3-r0", -1),
        ("1.2.3-r1", "1.2.3-r0", 1),
        ("1.2.3_p1-r0", "1.2.3-r0", 1),
        ("1.2.3a-r0", "1.2.3-r0", 1),
        ("1.10.0-r0", "1.9.9-r5", 1),
        ("3.0.12-r1", "3.0.12-r1", 0),
        ("1.2_alpha1", "1.2_beta1", -1),
    ],
)
def test_apk_orders(a: str, b: str, want: int) -> None:
    assert apk_compare(a, b) == want


@pytest.mark.parametrize(
    ("a", "b", "want"),
    [
        ("1.0.0-alpha", "1.0.0-alpha.1", -1),
        ("1.0.0-alpha.1", "1.0.0-alpha.beta", -1),
        ("1.0.0-beta.2", "1.0.0-beta.11", -1),
        ("1.0.0-rc.1", "1.0.0", -1),
        ("1.0.0+build.1", "1.0.0", 0),
        ("4.17.20", "4.17.21", -1),
        ("10.0.0", "9.99.99", 1),
    ],
)
def test_semver_orders(a: str, b: str, want: int) -> None:
    assert semver_compare(a, b) == want


def test_compare_dispatches_on_osv_ecosystem() -> None:
    assert compare("Debian:12", "1.0~b1", "1.0") == -1
    assert compare("PyPI", "1.0rc1", "1.0") == -1
    assert compare("npm", "1.0.0-rc.1", "1.0.0") == -1
    assert compare("Alpine:v3.19", "1.0-r1", "1.0-r0") == 1
    with pytest.raises(VersionError, match="no version order"):
        compare("Hex", "1", "2")
