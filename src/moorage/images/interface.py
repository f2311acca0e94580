"""The image-source seam: an :class:`ImageSource` finds an image by reference and
opens it as a :class:`ResolvedImage` (identity, config, layers); implementations
are in :mod:`moorage.images.sources`.

Also the package's base error: every failure in ``images/`` is an
:class:`ImageError` subclass whose message says what happened and what to do.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ImageError",
    "ImageSource",
    "Layer",
    "ResolvedImage",
    "SignatureError",
    "SourceError",
]


class ImageError(Exception):
    """Base error of the image-trust package."""


class SourceError(ImageError):
    """An image could not be read from its source (missing, unreachable, malformed)."""


class SignatureError(ImageError):
    """A signature could not be made or does not verify; the message says why."""


@dataclass(frozen=True)
class Layer:
    """One filesystem layer: its digest and a way to open its (maybe compressed) tar."""

    digest: str
    media_type: str
    open: Any  # Callable[[], AbstractContextManager[IO[bytes]]]


class ResolvedImage(ABC):
    """An image a source found: its identity, config and layers, in order."""

    reference: str
    digest: str  # the manifest digest when known (registry, RepoDigests), else the image id
    image_id: str  # sha256 of the config blob
    repo_digests: tuple[str, ...]
    config: dict[str, Any]

    @abstractmethod
    def layers(self) -> list[Layer]:
        """The filesystem layers, base first."""

    def close(self) -> None:  # noqa: B027 (a default that does nothing is intended)
        """Release what the source holds (temporary files, connections)."""


class ImageSource(ABC):
    """Finds an image by reference and opens it."""

    name: str = "source"

    @abstractmethod
    def resolve(self, reference: str) -> AbstractContextManager[ResolvedImage]:
        """Find ``reference`` and open it; the image is released when the context ends."""
