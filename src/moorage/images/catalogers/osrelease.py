"""The distribution an image is built on, from ``os-release``."""

from __future__ import annotations

from moorage.images.catalogers.interface import OSInfo

__all__ = ["OS_RELEASE", "parse_os_release"]

OS_RELEASE = ("etc/os-release", "usr/lib/os-release")
"""Where ``os-release`` lives, in the order systemd looks."""


def parse_os_release(data: bytes) -> OSInfo | None:
    """The ``ID``, ``VERSION_ID``, ``PRETTY_NAME`` and ``VERSION_CODENAME`` of an
    ``os-release`` file; None when it names no ``ID``."""
    values: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        key, eq, value = line.strip().partition("=")
        if not eq or key.startswith("#"):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key] = value
    if "ID" not in values:
        return None
    return OSInfo(
        values["ID"].lower(),
        values.get("VERSION_ID", ""),
        values.get("PRETTY_NAME", ""),
        values.get("VERSION_CODENAME", ""),
    )
