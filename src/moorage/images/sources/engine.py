"""Images in a Docker engine, exported with ``GET /images/{name}/get``."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from moorage.engine_api.reference import parse_image_ref
from moorage.images.interface import ImageSource, Layer, ResolvedImage, SourceError
from moorage.images.sources.archive import ArchiveImage

__all__ = ["EngineSource", "repo_digest_for"]


class EngineSource(ImageSource):
    """An image in a Docker engine, exported with ``GET /images/{name}/get``.

    ``client`` is an engine client with ``call(method, path)`` and
    ``download(path, file)`` (see :class:`moorage.engine.EngineClient`)."""

    name = "engine"

    def __init__(self, client: Any, tmp_dir: Path | None = None) -> None:
        self.client = client
        self.tmp_dir = tmp_dir

    def inspect(self, reference: str) -> dict[str, Any]:
        """The engine's inspect of ``reference``; :class:`SourceError` saying what to do when it has none."""
        try:
            doc = self.client.call("GET", f"/images/{quote(reference, safe='')}/json")
        except Exception as exc:
            status = getattr(exc, "status", 0)
            if status == 404:
                raise SourceError(f"the engine has no image {reference!r}; pull or build it first") from exc
            raise SourceError(f"the engine could not inspect {reference!r}: {exc}") from exc
        if not isinstance(doc, dict) or not doc.get("Id"):
            raise SourceError(f"the engine answered the inspect of {reference!r} with something unexpected")
        return doc

    @contextlib.contextmanager
    def resolve(self, reference: str) -> Iterator[ResolvedImage]:
        """Open ``reference`` in this source; released when the context ends."""
        image = _EngineImage(self, reference, self.inspect(reference))
        try:
            yield image
        finally:
            image.close()


class _EngineImage(ResolvedImage):
    """Identity from the inspect; the export (``/images/{id}/get``) only when the
    config or layers are needed, so a cached report costs one inspect."""

    def __init__(self, source: EngineSource, reference: str, doc: dict[str, Any]) -> None:
        self.source = source
        self.reference = reference
        self.image_id = str(doc["Id"])
        self.repo_digests = tuple(str(d) for d in doc.get("RepoDigests") or [])
        self.digest = repo_digest_for(reference, self.repo_digests) or self.image_id
        self._archive: ArchiveImage | None = None

    def _export(self) -> ArchiveImage:
        if self._archive is None:
            tmp = Path(tempfile.mkdtemp(prefix="moorage-scan-", dir=self.source.tmp_dir))
            try:
                path = tmp / "image.tar"
                with open(path, "wb") as out:
                    self.source.client.download(f"/images/{quote(self.image_id, safe='')}/get", out)
                self._archive = ArchiveImage(path, "", owned_tmp=tmp)
            except Exception as exc:
                shutil.rmtree(tmp, ignore_errors=True)
                raise SourceError(f"exporting {self.reference!r} from the engine failed: {exc}") from exc
        return self._archive

    @property
    def config(self) -> dict[str, Any]:  # type: ignore[override]
        return self._export().config

    def layers(self) -> list[Layer]:
        return self._export().layers()

    def close(self) -> None:
        if self._archive is not None:
            self._archive.close()


def repo_digest_for(reference: str, repo_digests: tuple[str, ...]) -> str | None:
    """The registry digest of ``reference`` among an image's RepoDigests."""
    ref = parse_image_ref(reference)
    for rd in repo_digests:
        name, _, digest = rd.partition("@")
        if parse_image_ref(name).name == ref.name:
            return digest
    return repo_digests[0].partition("@")[2] if repo_digests and ref.is_id else None
