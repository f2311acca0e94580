"""Platforms and image indexes: which manifest of a multi-platform image to read."""

from __future__ import annotations

import json
import platform
from typing import Any

from moorage.images.interface import SourceError

__all__ = ["default_platform", "pick_platform", "read_json"]


def default_platform() -> str:
    """This machine's platform as an image index names it, e.g. ``linux/amd64``."""
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)
    return f"linux/{arch}"


def read_json(data: bytes, what: str) -> Any:
    """``data`` parsed as JSON; :class:`SourceError` naming ``what`` when it isn't."""
    try:
        return json.loads(data)
    except ValueError as exc:
        raise SourceError(f"{what} is not valid JSON: {exc}") from exc


def pick_platform(manifests: list[Any], want: str, what: str) -> dict[str, Any]:
    """The entry of an image index for platform ``want`` (``os/arch[/variant]``),
    skipping attestation manifests; the error lists the platforms there are."""
    os_, _, rest = want.partition("/")
    arch, _, variant = rest.partition("/")
    candidates = []
    for m in manifests:
        if not isinstance(m, dict):
            continue
        p = m.get("platform") or {}
        annotations = m.get("annotations") or {}
        if annotations.get("vnd.docker.reference.type") == "attestation-manifest":
            continue
        if (
            p.get("os") == os_
            and p.get("architecture") == arch
            and (not variant or p.get("variant") == variant)
        ):
            candidates.append(m)
    if not candidates:
        have = sorted(
            {
                f"{(m.get('platform') or {}).get('os')}/{(m.get('platform') or {}).get('architecture')}"
                for m in manifests
                if isinstance(m, dict)
            }
        )
        raise SourceError(
            f"{what} has no image for {want} (it has: {', '.join(have) or 'none'}); "
            f"choose one with --platform"
        )
    return dict(candidates[0])
