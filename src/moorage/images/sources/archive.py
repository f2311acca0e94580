"""``docker save`` archives, classic or OCI-layout flavour."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from moorage.images.interface import ImageSource, Layer, ResolvedImage, SourceError
from moorage.images.sources.oci import OciLayout
from moorage.images.sources.platform import read_json

__all__ = ["ArchiveImage", "ArchiveSource"]


class ArchiveImage(ResolvedImage):
    """An image inside a ``docker save`` tar, which stays open until :meth:`close`."""

    def __init__(
        self,
        path: Path,
        reference: str,
        owned_tmp: Path | None = None,
        repo_digests: tuple[str, ...] = (),
        digest: str | None = None,
    ) -> None:
        self.path = path
        self.reference = reference
        self._tmp = owned_tmp
        try:
            self._tar = tarfile.open(path, "r:")  # noqa: SIM115 (held open until close())
        except (tarfile.TarError, OSError) as exc:
            raise SourceError(f"{path} is not a docker-archive or OCI tar: {exc}") from exc
        names = set(self._tar.getnames())
        if "manifest.json" in names:
            manifest = read_json(self._read("manifest.json"), f"{path}: manifest.json")
            if not isinstance(manifest, list) or not manifest or not isinstance(manifest[0], dict):
                raise SourceError(f"{path}: manifest.json is not a list of images")
            entry = self._choose(manifest, reference)
            config_name = str(entry.get("Config", ""))
            self._layer_names = [str(x) for x in entry.get("Layers") or []]
            self._types = ["application/vnd.docker.image.rootfs.diff.tar"] * len(self._layer_names)
        elif "index.json" in names:  # an OCI image layout packed as a tar
            layout = OciLayout(lambda n: self._read(n), str(path))
            manifest_doc = layout.manifest(reference)
            config_name = "blobs/" + manifest_doc["config"]["digest"].replace(":", "/")
            self._layer_names = ["blobs/" + d["digest"].replace(":", "/") for d in manifest_doc["layers"]]
            self._types = [str(d.get("mediaType", "")) for d in manifest_doc["layers"]]
            digest = digest or layout.digest
        else:
            raise SourceError(f"{path} has neither manifest.json nor index.json: not an image archive")
        config_raw = self._read(config_name)
        self.image_id = "sha256:" + hashlib.sha256(config_raw).hexdigest()
        self.config = read_json(config_raw, f"{path}: the image config")
        self.repo_digests = repo_digests
        self.digest = digest or self.image_id

    def _choose(self, manifest: list[Any], reference: str) -> dict[str, Any]:
        if len(manifest) == 1 or not reference:
            return dict(manifest[0])
        for entry in manifest:
            if reference in (entry.get("RepoTags") or []):
                return dict(entry)
        tags = [t for e in manifest for t in (e.get("RepoTags") or [])]
        raise SourceError(f"{self.path} holds several images; name one of: {', '.join(tags)}")

    def _read(self, name: str) -> bytes:
        try:
            member = self._tar.getmember(name.removeprefix("./"))
            f = self._tar.extractfile(member)
        except KeyError as exc:
            raise SourceError(f"{self.path} is missing {name}") from exc
        if f is None:
            raise SourceError(f"{self.path}: {name} is not a file")
        return f.read()

    def layers(self) -> list[Layer]:
        """The layers the archive's manifest lists, read from the tar on demand."""
        out = []
        for name, mtype in zip(self._layer_names, self._types, strict=True):

            @contextlib.contextmanager
            def opener(name: str = name) -> Iterator[IO[bytes]]:
                try:
                    f = self._tar.extractfile(name)
                except KeyError as exc:
                    raise SourceError(f"{self.path} is missing the layer {name}") from exc
                if f is None:
                    raise SourceError(f"{self.path}: layer {name} is not a file")
                yield f

            digest = name.split("/")[-2] if name.endswith("layer.tar") else name.rsplit("/", 1)[-1]
            out.append(Layer(f"sha256:{digest}" if ":" not in digest else digest, mtype, opener))
        return out

    def close(self) -> None:
        """Close the tar, and remove the export it came from if it owns one."""
        self._tar.close()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)


class ArchiveSource(ImageSource):
    """A ``docker save`` tarball (classic or OCI-layout flavour)."""

    name = "archive"

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def resolve(self, reference: str = "") -> Iterator[ResolvedImage]:
        """Open ``reference`` in this source; released when the context ends."""
        if not self.path.is_file():
            raise SourceError(f"{self.path} does not exist or is not a file")
        image = ArchiveImage(self.path, reference)
        try:
            yield image
        finally:
            image.close()
