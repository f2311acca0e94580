"""Images straight from an OCI registry (the Distribution API), without an engine."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator
from typing import IO

from moorage.engine_api.reference import parse_image_ref
from moorage.images.interface import ImageSource, Layer, ResolvedImage, SourceError
from moorage.images.registry import DOCKER_LIST, OCI_INDEX, Registry, RegistryError
from moorage.images.sources.platform import default_platform, pick_platform, read_json

__all__ = ["RegistrySource"]


class _RegistryImage(ResolvedImage):
    def __init__(self, registry: Registry, repo: str, reference: str, tag_or_digest: str, plat: str) -> None:
        self.registry = registry
        self.repo = repo
        self.reference = reference
        top = registry.get_manifest(repo, tag_or_digest)
        self.digest = top.digest
        manifest = top
        if top.media_type in (OCI_INDEX, DOCKER_LIST) or "manifests" in top.json():
            desc = pick_platform(top.json().get("manifests") or [], plat, reference)
            manifest = registry.get_manifest(repo, str(desc["digest"]))
        doc = manifest.json()
        if not isinstance(doc.get("layers"), list) or not isinstance(doc.get("config"), dict):
            raise RegistryError(
                f"{reference}: manifest {manifest.digest} has no config or layers "
                f"(schema 1 manifests are not supported)"
            )
        self.platform_digest = manifest.digest
        self._layers = doc["layers"]
        config_raw = registry.get_blob(repo, str(doc["config"]["digest"]))
        self.config = read_json(config_raw, f"{reference}: the image config")
        self.image_id = "sha256:" + hashlib.sha256(config_raw).hexdigest()
        self.repo_digests = (f"{registry.host}/{repo}@{self.digest}",)

    def layers(self) -> list[Layer]:
        out = []
        for d in self._layers:
            digest = str(d["digest"])

            @contextlib.contextmanager
            def opener(digest: str = digest) -> Iterator[IO[bytes]]:
                resp = self.registry.open_blob(self.repo, digest)
                try:
                    yield resp
                finally:
                    resp.close()

            out.append(Layer(digest, str(d.get("mediaType", "")), opener))
        return out


class RegistrySource(ImageSource):
    """An image straight from an OCI registry (Distribution API)."""

    name = "registry"

    def __init__(
        self, registry_for: Callable[[str], Registry] | None = None, platform_: str | None = None
    ) -> None:
        self.registry_for = registry_for or (lambda host: Registry(host))
        self.platform = platform_ or default_platform()

    @contextlib.contextmanager
    def resolve(self, reference: str) -> Iterator[ResolvedImage]:
        """Open ``reference`` in this source; released when the context ends."""
        ref = parse_image_ref(reference)
        if ref.is_id:
            raise SourceError(
                f"{reference!r} is an image id; a registry needs a name (repo:tag or repo@digest)"
            )
        yield _RegistryImage(
            self.registry_for(ref.registry),
            ref.repository,
            reference,
            ref.digest or ref.tag or "latest",
            self.platform,
        )
