"""Images: registries, tags and digests, and image trust (signatures, vulnerabilities,
packages, SBOM, database freshness) from facts gathered before the decision. Pure.
"""

from __future__ import annotations

import fnmatch

from moorage.engine_api.reference import ImageRef, parse_image_ref
from moorage.policy.rules.base import Finding, _finding, _get
from moorage.policy.rules.image_trust import (
    TRUST_KEYS,
    TRUST_KINDS,
    ImageFacts,
    check_image_trust,
    needs_trust,
)
from moorage.policy.schema import ImagesSpec

__all__ = [
    "TRUST_KEYS",
    "TRUST_KINDS",
    "ImageFacts",
    "NamedImage",
    "check_image_trust",
    "check_images",
    "image_digest",
    "image_latest",
    "image_registry",
    "named_refs",
    "needs_trust",
    "view_images",
]


# --------------------------------------------------------------------- images
def _first(query: dict[str, list[str]], name: str) -> str:
    """A single-valued parameter as the engine reads it (``r.FormValue``: the first)."""
    values = query.get(name) or []
    return values[0] if values else ""


def view_images(kind: str, body: object, query: dict[str, list[str]], object_ref: str | None
                ) -> list[tuple[str, str]]:  # fmt: skip
    """(field, image reference) pairs the request names."""
    out: list[tuple[str, str]] = []
    if kind == "container.create":
        image = _get(body, "Image")
        if isinstance(image, str):
            out.append(("Image", image))
    elif kind in ("service.create", "service.update"):
        image = _get(_get(_get(body, "TaskTemplate"), "ContainerSpec"), "Image")
        if isinstance(image, str):
            out.append(("TaskTemplate.ContainerSpec.Image", image))
    elif kind == "image.pull":
        src = _first(query, "fromImage")
        if src:
            tag = _first(query, "tag")
            if tag and "@" not in src:
                src = f"{src}@{tag}" if tag.startswith("sha256:") else f"{src}:{tag}"
            out.append(("fromImage", src))
    elif kind == "image.push" and object_ref:
        tag = _first(query, "tag")
        out.append(("name", f"{object_ref}:{tag}" if tag else object_ref))
    elif kind == "image.tag":
        repo = _first(query, "repo")
        if repo:
            tag = _first(query, "tag")
            out.append(("repo", f"{repo}:{tag}" if tag else repo))
    elif kind == "image.build":
        for t in query.get("t") or []:
            out.append(("t", t))
    return out


def _registry_allowed(ref: ImageRef, allowed: list[str]) -> bool:
    for pattern in allowed:
        pattern = pattern.lower().rstrip("/")
        if "/" in pattern:
            if fnmatch.fnmatchcase(ref.name.lower(), pattern) or ref.name.lower().startswith(pattern + "/"):
                return True
        elif fnmatch.fnmatchcase(ref.registry, pattern):
            return True
    return False


NamedImage = tuple[str, str, ImageRef]
"""An image a request names by reference (not by id): its field path, its text and
the reference parsed."""


def named_refs(images: list[tuple[str, str]]) -> list[NamedImage]:
    """The images of ``images`` named by reference, parsed; an id is a content-addressed
    local image, pinned, whose pull was checked."""
    out: list[NamedImage] = []
    for path, text in images:
        ref = parse_image_ref(text)
        if not ref.is_id:
            out.append((path, text, ref))
    return out


def image_registry(item: NamedImage, spec: ImagesSpec) -> list[Finding]:
    """``images.registry`` on one image: it comes from an allowed registry."""
    path, text, ref = item
    allowed = spec.registries
    if not allowed or _registry_allowed(ref, allowed):
        return []
    return [_finding("images.registry", path, text,
                     f"registry {ref.registry} ({ref.name}) is not on the allow-list",
                     f"use an image from {', '.join(allowed)}")]  # fmt: skip


def image_latest(item: NamedImage, spec: ImagesSpec) -> list[Finding]:
    """``images.latest`` on one image: it isn't named by ``latest`` or by no tag."""
    path, text, ref = item
    if not (spec.forbid_latest and ref.digest is None and (ref.tag in (None, "latest"))):
        return []
    return [_finding("images.latest", path, text, "the latest tag moves under you",
                     "name a version tag or a digest (name@sha256:...)")]  # fmt: skip


def image_digest(kind: str, item: NamedImage, spec: ImagesSpec) -> list[Finding]:
    """``images.digest`` on one image: it is pinned by digest, unless the request makes
    it (a tag, build -t or push names what it produces)."""
    path, text, ref = item
    if not (spec.require_digest and kind not in _PRODUCES and ref.digest is None):
        return []
    fix = "use name@sha256:... (docker inspect --format '{{.RepoDigests}}')"
    return [_finding("images.digest", path, text, "the image must be pinned by digest", fix)]


_PRODUCES = ("image.tag", "image.build", "image.push")


def check_images(kind: str, images: list[tuple[str, str]], spec: ImagesSpec) -> list[Finding]:
    """Registries, ``latest`` and digest pins of the images a request names."""
    out: list[Finding] = []
    for item in named_refs(images):
        out += image_registry(item, spec) + image_latest(item, spec) + image_digest(kind, item, spec)
    return out
