"""OCI image layouts: a folder (``oci-layout``, ``index.json``, ``blobs/``), or the
same packed in a tar (read through :class:`OciLayout`'s ``read`` function)."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from moorage.images.interface import ImageSource, Layer, ResolvedImage, SourceError
from moorage.images.registry import DOCKER_LIST, OCI_INDEX
from moorage.images.sources.platform import default_platform, pick_platform, read_json

__all__ = ["OciLayout", "OciLayoutSource"]


class OciLayout:
    """Reads an OCI image layout through a ``read(name)`` function."""

    def __init__(self, read: Callable[[str], bytes], where: str, plat: str | None = None) -> None:
        self.read = read
        self.where = where
        self.platform = plat or default_platform()
        self.digest = ""

    def blob(self, digest: str) -> bytes:
        """The blob ``digest`` of the layout, checked against its digest."""
        algo, _, hexd = digest.partition(":")
        data = self.read(f"blobs/{algo}/{hexd}")
        if algo == "sha256" and hashlib.sha256(data).hexdigest() != hexd:
            raise SourceError(f"{self.where}: blob {digest} does not match its digest")
        return data

    def manifest(self, reference: str) -> dict[str, Any]:
        """The image manifest of ``reference`` (or the first), through indexes to this platform."""
        index = read_json(self.read("index.json"), f"{self.where}: index.json")
        manifests = index.get("manifests") if isinstance(index, dict) else None
        if not isinstance(manifests, list) or not manifests:
            raise SourceError(f"{self.where}: index.json lists no manifests")
        if reference:
            named = [
                m
                for m in manifests
                if isinstance(m, dict)
                and reference
                in (
                    (m.get("annotations") or {}).get("org.opencontainers.image.ref.name"),
                    (m.get("annotations") or {}).get("io.containerd.image.name"),
                )
            ]
            manifests = named or manifests
        desc = manifests[0]
        self.digest = str(desc.get("digest", ""))
        for _ in range(4):
            doc = read_json(self.blob(str(desc["digest"])), f"{self.where}: manifest {desc['digest']}")
            mtype = doc.get("mediaType") or desc.get("mediaType")
            if mtype in (OCI_INDEX, DOCKER_LIST) or "manifests" in doc:
                desc = pick_platform(doc.get("manifests") or [], self.platform, self.where)
                continue
            if not isinstance(doc.get("layers"), list) or "config" not in doc:
                raise SourceError(f"{self.where}: manifest {desc['digest']} has no config or layers")
            return dict(doc)
        raise SourceError(f"{self.where}: image indexes nest too deep")


class _OciImage(ResolvedImage):
    def __init__(self, root: Path, reference: str, plat: str | None) -> None:
        self.root = root
        self.reference = reference
        layout = OciLayout(self._read, str(root), plat)
        self._manifest = layout.manifest(reference)
        config_raw = layout.blob(self._manifest["config"]["digest"])
        self.config = read_json(config_raw, f"{root}: the image config")
        self.image_id = "sha256:" + hashlib.sha256(config_raw).hexdigest()
        self.digest = layout.digest
        self.repo_digests = ()

    def _read(self, name: str) -> bytes:
        try:
            return (self.root / name).read_bytes()
        except OSError as exc:
            raise SourceError(f"{self.root} is missing {name}: not a complete OCI layout") from exc

    def layers(self) -> list[Layer]:
        out = []
        for d in self._manifest["layers"]:
            algo, _, hexd = str(d["digest"]).partition(":")
            path = self.root / "blobs" / algo / hexd

            @contextlib.contextmanager
            def opener(path: Path = path) -> Iterator[IO[bytes]]:
                try:
                    f = open(path, "rb")  # noqa: SIM115 (closed by the with below)
                except OSError as exc:
                    raise SourceError(f"{self.root} is missing the layer blob {path.name}") from exc
                with f:
                    yield f

            out.append(Layer(str(d["digest"]), str(d.get("mediaType", "")), opener))
        return out


class OciLayoutSource(ImageSource):
    """An OCI image layout folder (``oci-layout``, ``index.json``, ``blobs/``)."""

    name = "oci"

    def __init__(self, root: Path, platform_: str | None = None) -> None:
        self.root = root
        self.platform = platform_

    @contextlib.contextmanager
    def resolve(self, reference: str = "") -> Iterator[ResolvedImage]:
        """Open ``reference`` in this source; released when the context ends."""
        if not (self.root / "index.json").is_file():
            raise SourceError(f"{self.root} is not an OCI layout: index.json is missing")
        yield _OciImage(self.root, reference, self.platform)
