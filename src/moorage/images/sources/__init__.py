"""Image sources: the engine, a registry, a ``docker save`` archive, an OCI layout.

All four end in the same :class:`~moorage.images.interface.ResolvedImage` (the seam
is :mod:`moorage.images.interface`): a digest, the config, and the layers in order,
each opened lazily as a stream. :class:`~.choice.SourceChoice` picks one by name.
"""

from moorage.images.sources.archive import ArchiveSource
from moorage.images.sources.engine import EngineSource, repo_digest_for
from moorage.images.sources.oci import OciLayoutSource
from moorage.images.sources.platform import default_platform
from moorage.images.sources.registry import RegistrySource

__all__ = [
    "ArchiveSource",
    "EngineSource",
    "OciLayoutSource",
    "RegistrySource",
    "default_platform",
    "repo_digest_for",
]
