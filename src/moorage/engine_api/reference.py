"""Docker's image reference grammar, as the engine and the registry client read it.

Pure: ``parse_image_ref("busybox")`` is ``docker.io/library/busybox``, as ``docker pull``
resolves it. Used by policy (registry allow-lists), image trust and the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ImageRef", "parse_image_ref"]


@dataclass(frozen=True)
class ImageRef:
    """A parsed reference: registry, repository, and a tag and/or digest (or a bare image ID)."""

    registry: str
    repository: str
    tag: str | None
    digest: str | None
    is_id: bool = False

    @property
    def name(self) -> str:
        """``registry/repository``, the form registry allow-lists match."""
        return f"{self.registry}/{self.repository}"


def parse_image_ref(ref: str) -> ImageRef:
    """Docker's reference grammar, with its defaults (``docker.io``, ``library/``)."""
    ref = ref.strip()
    bare = ref.removeprefix("sha256:")
    if (
        len(bare) >= 12
        and all(c in "0123456789abcdef" for c in bare)
        and (ref.startswith("sha256:") or len(bare) == 64)
    ):
        return ImageRef("", bare, None, f"sha256:{bare}" if len(bare) == 64 else None, True)
    name, _, digest = ref.partition("@")
    tag = None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, repo = first, rest
    else:
        registry, repo = "docker.io", name
    if registry == "docker.io" and "/" not in repo:
        repo = f"library/{repo}"
    return ImageRef(registry.lower(), repo, tag, digest or None)
