"""Images: registries, tags and digests, and image trust (signatures, vulnerabilities,
packages, SBOM, database freshness) from facts gathered before the decision. Pure.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from moorage.engine_api.reference import ImageRef, parse_image_ref
from moorage.policy.rules.base import Finding, _finding, _get
from moorage.policy.schema import ImagesSpec
from moorage.policy.units import parse_duration

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


# -------------------------------------------------------------- image trust
TRUST_KINDS = ("container.create", "service.create", "service.update", "image.pull")
TRUST_KEYS = ("signatures", "vulnerabilities", "packages", "sbom", "database")
_SEV = ("unknown", "none", "low", "medium", "high", "critical")


@dataclass(frozen=True)
class ImageFacts:
    """What the gateway learnt about one image before the decision (pure data)."""

    ref: str
    digest: str = ""
    error: str = ""  # the image could not be resolved or scanned: trust rules fail closed
    signers: tuple[str, ...] = ()  # ids of the keys whose signatures verified
    signature_error: str = ""
    packages: tuple[tuple[str, str, str, str], ...] = ()  # (name, version, purl, path)
    findings: tuple[tuple[str, str, str, str, str], ...] = ()  # (id, package, version, severity, fixed or "")
    suppressed: int = 0
    db_age: float | None = None  # seconds; None = no vulnerability database
    scanned: bool = False


def needs_trust(spec: ImagesSpec) -> bool:
    """Whether the images section asks for facts about the image itself."""
    return any(getattr(spec, k) for k in TRUST_KEYS)


def _pkg_matches(pattern: str, name: str, purl: str) -> bool:
    p = pattern.lower()
    if p.startswith("pkg:"):
        base = purl.lower().split("@")[0].split("?")[0]
        return fnmatch.fnmatchcase(base, p) or base == p
    return fnmatch.fnmatchcase(name.lower(), p)


def check_image_trust(
    images: list[tuple[str, str]], spec: ImagesSpec, reports: dict[str, ImageFacts], trusted: list[str]
) -> list[Finding]:
    """Signatures, vulnerability gate, packages, SBOM and database freshness."""
    out: list[Finding] = []
    for path, text in images:
        f = reports.get(text)
        if f is None or f.error:
            why = f.error if f is not None else "no report was gathered"
            out.append(
                _finding(
                    "images.unscanned",
                    path,
                    text,
                    f"the image could not be checked: {why}",
                    "make the image reachable (pushed, or present on the engine) and retry",
                )
            )
            continue
        sig = spec.signatures
        if sig and sig.required is not False and sig.keys and not set(f.signers) & set(trusted):
            why = f.signature_error or "signed, but not by a key this policy trusts"
            out.append(
                _finding(
                    "images.signature",
                    path,
                    text,
                    f"not signed by a trusted key: {why}",
                    "sign it: moorage image sign IMAGE --key KEY (a key the policy lists)",
                )
            )
        db = spec.database
        vul = spec.vulnerabilities
        if (db or vul) and f.db_age is None:
            out.append(
                _finding(
                    "images.database-missing",
                    path,
                    text,
                    "no vulnerability database is loaded",
                    "run moorage db update --from PATH|URL on the gateway host",
                )
            )
            vul = None
        if db and db.max_age is not None and f.db_age is not None:
            limit = parse_duration(db.max_age)  # validated when the policy loaded
            if f.db_age > limit:
                out.append(
                    _finding(
                        "images.database-stale",
                        path,
                        text,
                        f"the vulnerability database is {f.db_age / 3600:.0f} h old "
                        f"(older than {db.max_age})",
                        "run moorage db update",
                    )
                )
        if vul and vul.max_severity:
            ceiling = _SEV.index(vul.max_severity)
            over = [
                x
                for x in f.findings
                if _SEV.index(x[3] if x[3] in _SEV else "unknown") > ceiling and (x[4] or not vul.only_fixed)
            ]
            if over:
                shown = "; ".join(
                    f"{i} ({pkg} {ver}, {sev}, " + (f"fixed in {fx})" if fx else "unfixed)")
                    for i, pkg, ver, sev, fx in over[:5]
                )
                more = f" and {len(over) - 5} more" if len(over) > 5 else ""
                out.append(
                    _finding(
                        "images.vulnerabilities",
                        path,
                        text,
                        f"{len(over)} finding(s) over {vul.max_severity}: {shown}{more}",
                        "upgrade the packages named (moorage image scan IMAGE lists them all)",
                    )
                )
        pk = spec.packages
        for pattern in (pk.forbidden if pk else None) or []:
            hits = [p for p in f.packages if _pkg_matches(pattern, p[0], p[2])]
            if hits:
                names = ", ".join(f"{n} {v} ({where})" for n, v, _, where in hits[:5])
                out.append(
                    _finding(
                        "images.package-forbidden",
                        path,
                        text,
                        f"forbidden package {pattern!r} is installed: {names}",
                        f"remove {hits[0][0]} from the image",
                    )
                )
        for pattern in (pk.required if pk else None) or []:
            if not any(_pkg_matches(pattern, p[0], p[2]) for p in f.packages):
                out.append(
                    _finding(
                        "images.package-required",
                        path,
                        text,
                        f"required package {pattern!r} is not installed",
                        f"install {pattern} in the image",
                    )
                )
        if spec.sbom == "required" and not (f.scanned and f.packages):
            out.append(
                _finding(
                    "images.sbom",
                    path,
                    text,
                    "no SBOM could be made: no package database found",
                    "build from a base image with a package database (dpkg, apk, rpm)",
                )
            )
    return out
