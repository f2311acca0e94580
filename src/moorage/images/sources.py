"""Image sources: the engine, a registry, a ``docker save`` archive, an OCI layout.

All four end in the same :class:`ResolvedImage`: a digest, the config, and the
layers in order, each opened lazily as a stream.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import platform
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from moorage.engine_api.reference import parse_image_ref
from moorage.images.interface import ImageSource, Layer, ResolvedImage, SourceError
from moorage.images.registry import DOCKER_LIST, OCI_INDEX, Registry, RegistryError

__all__ = [
    "ArchiveSource",
    "EngineSource",
    "OciLayoutSource",
    "RegistrySource",
    "default_platform",
    "repo_digest_for",
]


def default_platform() -> str:
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)
    return f"linux/{arch}"


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:
        raise SourceError(f"{what} is not valid JSON: {exc}") from exc


def _pick_platform(manifests: list[Any], want: str, what: str) -> dict[str, Any]:
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


# ----------------------------------------------------------- docker-archive
class _ArchiveImage(ResolvedImage):
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
            manifest = _json(self._read("manifest.json"), f"{path}: manifest.json")
            if not isinstance(manifest, list) or not manifest or not isinstance(manifest[0], dict):
                raise SourceError(f"{path}: manifest.json is not a list of images")
            entry = self._choose(manifest, reference)
            config_name = str(entry.get("Config", ""))
            self._layer_names = [str(x) for x in entry.get("Layers") or []]
            self._types = ["application/vnd.docker.image.rootfs.diff.tar"] * len(self._layer_names)
        elif "index.json" in names:  # an OCI image layout packed as a tar
            layout = _Layout(lambda n: self._read(n), str(path))
            manifest_doc = layout.manifest(reference)
            config_name = "blobs/" + manifest_doc["config"]["digest"].replace(":", "/")
            self._layer_names = ["blobs/" + d["digest"].replace(":", "/") for d in manifest_doc["layers"]]
            self._types = [str(d.get("mediaType", "")) for d in manifest_doc["layers"]]
            digest = digest or layout.digest
        else:
            raise SourceError(f"{path} has neither manifest.json nor index.json: not an image archive")
        config_raw = self._read(config_name)
        self.image_id = "sha256:" + hashlib.sha256(config_raw).hexdigest()
        self.config = _json(config_raw, f"{path}: the image config")
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
        if not self.path.is_file():
            raise SourceError(f"{self.path} does not exist or is not a file")
        image = _ArchiveImage(self.path, reference)
        try:
            yield image
        finally:
            image.close()


# ----------------------------------------------------------------- OCI layout
class _Layout:
    """Reads an OCI image layout through a ``read(name)`` function."""

    def __init__(self, read: Callable[[str], bytes], where: str, plat: str | None = None) -> None:
        self.read = read
        self.where = where
        self.platform = plat or default_platform()
        self.digest = ""

    def blob(self, digest: str) -> bytes:
        algo, _, hexd = digest.partition(":")
        data = self.read(f"blobs/{algo}/{hexd}")
        if algo == "sha256" and hashlib.sha256(data).hexdigest() != hexd:
            raise SourceError(f"{self.where}: blob {digest} does not match its digest")
        return data

    def manifest(self, reference: str) -> dict[str, Any]:
        index = _json(self.read("index.json"), f"{self.where}: index.json")
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
            doc = _json(self.blob(str(desc["digest"])), f"{self.where}: manifest {desc['digest']}")
            mtype = doc.get("mediaType") or desc.get("mediaType")
            if mtype in (OCI_INDEX, DOCKER_LIST) or "manifests" in doc:
                desc = _pick_platform(doc.get("manifests") or [], self.platform, self.where)
                continue
            if not isinstance(doc.get("layers"), list) or "config" not in doc:
                raise SourceError(f"{self.where}: manifest {desc['digest']} has no config or layers")
            return dict(doc)
        raise SourceError(f"{self.where}: image indexes nest too deep")


class _OciImage(ResolvedImage):
    def __init__(self, root: Path, reference: str, plat: str | None) -> None:
        self.root = root
        self.reference = reference
        layout = _Layout(self._read, str(root), plat)
        self._manifest = layout.manifest(reference)
        config_raw = layout.blob(self._manifest["config"]["digest"])
        self.config = _json(config_raw, f"{root}: the image config")
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
        if not (self.root / "index.json").is_file():
            raise SourceError(f"{self.root} is not an OCI layout: index.json is missing")
        yield _OciImage(self.root, reference, self.platform)


# --------------------------------------------------------------------- engine
class EngineSource(ImageSource):
    """An image in a Docker engine, exported with ``GET /images/{name}/get``.

    ``client`` is an engine client with ``call(method, path)`` and
    ``download(path, file)`` (see :class:`moorage.engine.EngineClient`)."""

    name = "engine"

    def __init__(self, client: Any, tmp_dir: Path | None = None) -> None:
        self.client = client
        self.tmp_dir = tmp_dir

    def inspect(self, reference: str) -> dict[str, Any]:
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
        self._archive: _ArchiveImage | None = None

    def _export(self) -> _ArchiveImage:
        if self._archive is None:
            tmp = Path(tempfile.mkdtemp(prefix="moorage-scan-", dir=self.source.tmp_dir))
            try:
                path = tmp / "image.tar"
                with open(path, "wb") as out:
                    self.source.client.download(f"/images/{quote(self.image_id, safe='')}/get", out)
                self._archive = _ArchiveImage(path, "", owned_tmp=tmp)
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


# ------------------------------------------------------------------- registry
class _RegistryImage(ResolvedImage):
    def __init__(self, registry: Registry, repo: str, reference: str, tag_or_digest: str, plat: str) -> None:
        self.registry = registry
        self.repo = repo
        self.reference = reference
        top = registry.get_manifest(repo, tag_or_digest)
        self.digest = top.digest
        manifest = top
        if top.media_type in (OCI_INDEX, DOCKER_LIST) or "manifests" in top.json():
            desc = _pick_platform(top.json().get("manifests") or [], plat, reference)
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
        self.config = _json(config_raw, f"{reference}: the image config")
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
