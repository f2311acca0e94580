"""Pick an image source by name (``--from``), or from what the target is."""

from __future__ import annotations

import enum
from collections.abc import Callable
from pathlib import Path
from typing import Any

from moorage.images.interface import ImageSource
from moorage.images.sources.archive import ArchiveSource
from moorage.images.sources.engine import EngineSource
from moorage.images.sources.oci import OciLayoutSource
from moorage.images.sources.registry import RegistrySource

__all__ = ["SourceChoice"]


@enum.unique
class SourceChoice(enum.StrEnum):
    """The image sources, by the name ``--from`` takes."""

    ENGINE = "engine"
    REGISTRY = "registry"
    ARCHIVE = "archive"
    OCI = "oci"

    @classmethod
    def for_target(cls, target: str) -> SourceChoice:
        """A folder is an OCI layout, a file an archive, anything else a name the engine knows."""
        path = Path(target)
        return cls.OCI if path.is_dir() else cls.ARCHIVE if path.is_file() else cls.ENGINE

    def to_source(
        self, target: str, platform: str | None, engine_client: Callable[[], Any]
    ) -> tuple[ImageSource, str]:
        """The source, and the reference to resolve in it (empty for a path).

        ``engine_client`` is called only for the engine source, so choosing another
        never needs an engine.
        """
        match self:
            case SourceChoice.ARCHIVE:
                return ArchiveSource(Path(target)), ""
            case SourceChoice.OCI:
                return OciLayoutSource(Path(target), platform), ""
            case SourceChoice.REGISTRY:
                return RegistrySource(platform_=platform), target
            case SourceChoice.ENGINE:
                return EngineSource(engine_client()), target
