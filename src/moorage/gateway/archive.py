"""The image names a ``docker load`` archive writes, read before the engine loads it.

An archive names its own tags (``manifest.json`` ``RepoTags``, the legacy
``repositories`` file, an OCI index's ``io.containerd.image.name`` annotations),
and loading it moves those names onto its images, whoever held them. The gateway
spools the archive to a temporary file, reads the names here, checks them as it
checks a tag, and only then sends the same bytes on.
"""

from __future__ import annotations

import json
import posixpath
import tarfile
from typing import IO, Any

from moorage.admission.errors import ClientError

__all__ = ["archive_names", "context_dockerfile"]

_NAME_ANNOTATIONS = ("io.containerd.image.name",)


def _member(tar: tarfile.TarFile, name: str) -> Any:
    try:
        info = tar.getmember(name)
    except KeyError:
        return None
    f = tar.extractfile(info)
    if f is None or info.size > 16 << 20:
        raise ClientError(f"moorage: the image archive's {name} is not a readable file")
    try:
        return json.loads(f.read())
    except ValueError as exc:
        raise ClientError(f"moorage: the image archive's {name} is not valid JSON: {exc}") from exc


def archive_names(f: IO[bytes]) -> list[str]:
    """Every image name the archive in ``f`` would write (``repo:tag``)."""
    f.seek(0)
    try:
        with tarfile.open(fileobj=f, mode="r:*") as tar:
            names: list[str] = []
            manifest = _member(tar, "manifest.json")
            for entry in manifest if isinstance(manifest, list) else ():
                for tag in (entry.get("RepoTags") or []) if isinstance(entry, dict) else ():
                    names.append(str(tag))
            repos = _member(tar, "repositories")
            if isinstance(repos, dict):
                for repo, tags in repos.items():
                    for tag in tags if isinstance(tags, dict) else ():
                        names.append(f"{repo}:{tag}")
            index = _member(tar, "index.json")
            for desc in (index.get("manifests") or []) if isinstance(index, dict) else ():
                annotations = desc.get("annotations") if isinstance(desc, dict) else None
                for key in _NAME_ANNOTATIONS:
                    if isinstance(annotations, dict) and isinstance(annotations.get(key), str):
                        names.append(annotations[key])
            if manifest is None and repos is None and index is None:
                raise ClientError("moorage: the body is not an image archive (no manifest.json, "
                                     "repositories or index.json)")  # fmt: skip
            return list(dict.fromkeys(names))
    except tarfile.TarError as exc:
        raise ClientError(f"moorage: the image archive can't be read as a tar file: {exc}") from exc
    finally:
        f.seek(0)


def context_dockerfile(f: IO[bytes], name: str) -> bytes:
    """The Dockerfile a build context holds at ``name`` (the build's ``dockerfile``
    parameter, ``Dockerfile`` by default; the engine falls back to ``dockerfile``).
    The context may be compressed, as the engine accepts it. A file that isn't there
    or isn't a regular file is refused: Moorage must read what the engine will."""
    f.seek(0)
    wanted = posixpath.normpath(name.lstrip("/")) if name else "Dockerfile"
    candidates = [wanted] if name else ["Dockerfile", "dockerfile"]
    try:
        with tarfile.open(fileobj=f, mode="r:*") as tar:
            members = {posixpath.normpath(m.name.lstrip("/")): m for m in tar.getmembers()}
            for candidate in candidates:
                info = members.get(candidate)
                if info is None:
                    continue
                if not info.isfile():
                    raise ClientError(f"moorage: the build's Dockerfile {candidate} is not a regular file "
                                         "in the context (a link Moorage would have to follow)")  # fmt: skip
                if info.size > _MAX_DOCKERFILE:
                    raise ClientError(
                        status=413, message=f"moorage: the build's Dockerfile is over {_MAX_DOCKERFILE} bytes"
                    )
                data = tar.extractfile(info)
                assert data is not None  # a regular file
                return data.read()
    except tarfile.TarError as exc:
        raise ClientError(f"moorage: the build context can't be read as a tar archive: {exc}") from exc
    finally:
        f.seek(0)
    raise ClientError(f"moorage: the build context holds no Dockerfile at {candidates[0]!r}")


_MAX_DOCKERFILE = 4 << 20
