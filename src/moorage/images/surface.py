"""An image's attack surface: the shells and package managers it carries, found both
in its package databases and as files on well-known paths.

A package database is not enough: an image ``FROM scratch`` with a static busybox has
no database but has ``/bin/busybox`` and ``/bin/sh``. The layer reader records the
path entries :func:`wants_executable` accepts (a file, a symlink or a hard link is
enough: ``/bin/sh -> busybox`` counts), and :func:`shells` and
:func:`package_managers` merge them with what the catalogers found.
"""

from __future__ import annotations

import posixpath
import re

from moorage.images.catalogers.interface import Inventory, Package

__all__ = [
    "BIN_DIRS",
    "MANAGER_NAMES",
    "MANAGER_PACKAGES",
    "SHELL_NAMES",
    "SHELL_PACKAGES",
    "package_managers",
    "shells",
    "wants_executable",
]

BIN_DIRS = frozenset({"bin", "sbin", "usr/bin", "usr/sbin", "usr/local/bin", "usr/local/sbin"})
"""The folders (no leading slash) searched for shells and package managers; with
usrmerge, ``/bin`` is a symlink to ``usr/bin`` and the files are found there."""

SHELL_NAMES = frozenset({
    "sh", "ash", "bash", "rbash", "dash", "zsh", "ksh", "ksh93", "mksh", "pdksh", "oksh", "loksh",
    "csh", "tcsh", "fish", "yash", "posh", "busybox", "toybox",
})  # fmt: skip
"""Executable names that are a shell (busybox and toybox carry one)."""

MANAGER_NAMES = frozenset({
    "apt", "apt-get", "aptitude", "dpkg", "apk", "rpm", "yum", "dnf", "dnf5", "microdnf", "tdnf",
    "zypper", "pacman", "opkg", "pip", "pip2", "pip3", "pipx", "easy_install", "npm", "npx", "yarn",
    "yarnpkg", "pnpm", "corepack", "gem", "conda", "mamba",
})  # fmt: skip
"""Executable names that install software (``pip3.11`` and the like count as ``pip``)."""

_VERSIONED = re.compile(r"^(pip|easy_install|gem)[0-9][0-9.]*$|^(pip[0-9]*)-[0-9.]+$")

SHELL_PACKAGES: dict[str, frozenset[str]] = {
    "deb": frozenset({"bash", "dash", "zsh", "mksh", "ksh", "ksh93", "ksh93u+m", "tcsh", "csh", "fish",
                      "yash", "posh", "busybox", "busybox-static", "toybox"}),
    "apk": frozenset({"bash", "dash", "zsh", "mksh", "oksh", "loksh", "yash", "tcsh", "fish",
                      "busybox", "busybox-binsh", "busybox-static", "toybox"}),
    "rpm": frozenset({"bash", "dash", "zsh", "ksh", "mksh", "tcsh", "fish", "busybox", "toybox"}),
}  # fmt: skip
"""Packages, by inventory type, that install a shell."""

MANAGER_PACKAGES: dict[str, frozenset[str]] = {
    "deb": frozenset({"apt", "dpkg", "aptitude", "python3-pip", "python-pip", "pipx", "npm", "yarnpkg",
                      "rubygems", "rpm", "yum", "dnf", "microdnf", "zypper", "pacman", "opkg"}),
    "apk": frozenset({"apk-tools", "py3-pip", "py-pip", "npm", "yarn", "pnpm", "rpm", "dpkg"}),
    "rpm": frozenset({"rpm", "yum", "dnf", "dnf5", "microdnf", "tdnf", "zypper", "python3-pip",
                      "python-pip", "npm", "nodejs-npm", "yarnpkg", "rubygems", "dpkg"}),
    "pypi": frozenset({"pip", "pipx", "pipenv"}),
    "npm": frozenset({"npm", "yarn", "pnpm", "corepack"}),
}  # fmt: skip
"""Packages, by inventory type, that install a package manager."""


def _base_name(path: str) -> str | None:
    """The executable's name when ``path`` (no leading slash) is in one of :data:`BIN_DIRS`."""
    folder, name = posixpath.split(path)
    return name if folder in BIN_DIRS else None


def _is_shell(name: str) -> bool:
    return name in SHELL_NAMES


def _is_manager(name: str) -> bool:
    return name in MANAGER_NAMES or _VERSIONED.match(name) is not None


def wants_executable(path: str) -> bool:
    """Whether ``path`` (no leading slash) is a shell or package manager on a well-known path."""
    name = _base_name(path)
    return name is not None and (_is_shell(name) or _is_manager(name))


def _shown(p: Package) -> str:
    return f"{p.name} {p.version} ({p.type})"


def shells(inv: Inventory) -> tuple[str, ...]:
    """The shells ``inv`` carries: their paths (``/bin/sh``), then the packages that install
    one (``bash 5.2.15-2 (deb)``)."""
    paths = [p for p in inv.executables if (n := _base_name(p.lstrip("/"))) is not None and _is_shell(n)]
    pkgs = [_shown(p) for p in inv.packages if p.name.lower() in SHELL_PACKAGES.get(p.type, frozenset())]
    return (*paths, *pkgs)


def package_managers(inv: Inventory) -> tuple[str, ...]:
    """The package managers ``inv`` carries: their paths (``/usr/bin/apt``), then the
    packages that install one (``pip 23.0.1 (pypi)``)."""
    paths = [p for p in inv.executables if (n := _base_name(p.lstrip("/"))) is not None and _is_manager(n)]
    pkgs = [_shown(p) for p in inv.packages if p.name.lower() in MANAGER_PACKAGES.get(p.type, frozenset())]
    return (*paths, *pkgs)
