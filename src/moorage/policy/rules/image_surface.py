"""Image attack surface (``images.surface``): shells, package managers, the number of
packages, the size and the base image, judged one image at a time from what admission
gathered (:class:`ImageFacts`). Pure.

An image that could not be read is ``images.unscanned``'s (these rules then say
nothing); a fact that was not learnt (a size, a base) fails closed here.
"""

from __future__ import annotations

import fnmatch

from moorage.engine_api.reference import parse_image_ref
from moorage.policy.rules.base import Finding, _finding
from moorage.policy.rules.image_trust import ImageFacts, TrustItem
from moorage.policy.schema import ImagesSpec, Surface
from moorage.policy.units import parse_size

__all__ = [
    "SURFACE_CHECKS",
    "base_allowed",
    "surface_base",
    "surface_package_manager",
    "surface_packages",
    "surface_shell",
    "surface_size",
]

_SHOWN = 5
_UNREAD = "the image's files were not read, so this can't be checked"
_RETRY = "retry; if it persists, check the gateway can scan images (moorage image scan IMAGE)"


def _judged(item: TrustItem, spec: ImagesSpec) -> tuple[str, str, ImageFacts, Surface] | None:
    """The image and the surface settings, when there is something to judge."""
    path, text, f = item
    surface = spec.surface
    if f is None or f.error or not surface:
        return None
    return path, text, f, surface


def _listed(found: tuple[str, ...]) -> str:
    more = f" and {len(found) - _SHOWN} more" if len(found) > _SHOWN else ""
    return ", ".join(found[:_SHOWN]) + more


def surface_shell(item: TrustItem, spec: ImagesSpec, trusted: list[str]) -> list[Finding]:
    """``images.surface.shell`` on one image: no shell (sh, bash, dash, busybox...), as a
    file on a well-known path or as an installed package, when ``shells: forbid``."""
    judged = _judged(item, spec)
    if judged is None or judged[3].shells != "forbid":
        return []
    path, text, f, _ = judged
    if not f.scanned:
        return [_finding("images.surface.shell", path, text, _UNREAD, _RETRY)]
    if not f.shells:
        return []
    return [_finding("images.surface.shell", path, f.shells[0],
                     f"the image {text} carries a shell: {_listed(f.shells)}",
                     "build FROM scratch or a distroless base and copy only the binary (a multi-stage "
                     "build); no /bin/sh, bash or busybox in the final stage")]  # fmt: skip


def surface_package_manager(item: TrustItem, spec: ImagesSpec, trusted: list[str]) -> list[Finding]:
    """``images.surface.package-manager`` on one image: no package manager (apt, dpkg,
    apk, rpm, yum, dnf, pip, npm, gem...), when ``packageManagers: forbid``."""
    judged = _judged(item, spec)
    if judged is None or judged[3].package_managers != "forbid":
        return []
    path, text, f, _ = judged
    if not f.scanned:
        return [_finding("images.surface.package-manager", path, text, _UNREAD, _RETRY)]
    if not f.package_managers:
        return []
    return [_finding("images.surface.package-manager", path, f.package_managers[0],
                     f"the image {text} carries a package manager: {_listed(f.package_managers)}",
                     "install in a build stage and copy only what runs into the final stage (FROM "
                     "scratch or a distroless base), so apt, apk, pip or npm never ship")]  # fmt: skip


def surface_packages(item: TrustItem, spec: ImagesSpec, trusted: list[str]) -> list[Finding]:
    """``images.surface.packages`` on one image: at most ``maxPackages`` installed
    packages (OS and language packages alike)."""
    judged = _judged(item, spec)
    if judged is None or judged[3].max_packages is None:
        return []
    path, text, f, surface = judged
    if not f.scanned:
        return [_finding("images.surface.packages", path, text, _UNREAD, _RETRY)]
    limit, count = surface.max_packages or 0, len(f.packages)
    if count <= limit:
        return []
    return [_finding("images.surface.packages", path, count,
                     f"the image {text} has {count} packages installed, more than maxPackages {limit}",
                     f"trim the image to at most {limit} packages: a smaller base (distroless, scratch), "
                     "--no-install-recommends, a multi-stage build")]  # fmt: skip


def surface_size(item: TrustItem, spec: ImagesSpec, trusted: list[str]) -> list[Finding]:
    """``images.surface.size`` on one image: its size is at most ``maxSize``; an image
    whose size is not known fails closed."""
    judged = _judged(item, spec)
    if judged is None or judged[3].max_size is None:
        return []
    path, text, f, surface = judged
    if f.size is None:
        return [_finding("images.surface.size", path, text, "the image's size is not known", _RETRY)]
    limit = parse_size(surface.max_size)  # validated when the policy loaded
    if f.size <= limit:
        return []
    mib = f"{f.size / (1 << 20):.1f} MiB"
    return [_finding("images.surface.size", path, f.size,
                     f"the image {text} is {mib} ({f.size} bytes), over maxSize {surface.max_size}",
                     f"shrink the image below {surface.max_size}: a multi-stage build that copies only the "
                     "binary and its runtime files onto scratch or a distroless base")]  # fmt: skip


def _forms(reference: str) -> set[str]:
    """The ways a reference can be written: as given, fully qualified
    (``docker.io/library/debian:12``) and familiar (``debian:12``), each with and without
    its digest, and the bare name."""
    ref = parse_image_ref(reference)
    out = {reference.lower()}
    if ref.is_id:
        return out
    familiar = ref.repository.removeprefix("library/") if ref.registry == "docker.io" else ref.name
    for name in {ref.name, familiar}:
        out.add(name)
        tagged = f"{name}:{ref.tag}" if ref.tag else name
        out.add(tagged)
        if ref.digest:
            out.add(f"{tagged}@{ref.digest}")
            out.add(f"{name}@{ref.digest}")
    return {x.lower() for x in out}


def base_allowed(names: tuple[str, ...], patterns: list[str]) -> bool:
    """Whether one of ``names`` (a base image's references) matches one of ``patterns``
    (shell-style, case-insensitive; ``debian:bookworm*``, ``registry.local/base/*``,
    ``docker.io/library/debian``)."""
    forms = {form for name in names for form in _forms(name)}
    return any(fnmatch.fnmatchcase(form, p.lower()) for p in patterns for form in forms)


def surface_base(item: TrustItem, spec: ImagesSpec, trusted: list[str]) -> list[Finding]:
    """``images.surface.base`` on one image: its base image is on ``bases``; a base that
    is not known fails closed."""
    judged = _judged(item, spec)
    if judged is None or not judged[3].bases:
        return []
    path, text, f, surface = judged
    bases = surface.bases or []
    if not f.base:
        why = f": {f.base_via}" if f.base_via else ""
        return [_finding("images.surface.base", path, text, f"the base image is not known{why}",
                         "label the image org.opencontainers.image.base.name=... or build from an allowed "
                         f"base ({', '.join(bases)})")]  # fmt: skip
    if base_allowed((f.base, *f.base_aliases), bases):
        return []
    via = " (from its org.opencontainers.image.base.name label)" if f.base_via == "label" else ""
    return [_finding("images.surface.base", path, f.base,
                     f"the base image of {text}, {f.base}{via}, is not on the allow-list",
                     f"build FROM one of {', '.join(bases)}")]  # fmt: skip


SURFACE_CHECKS = (
    ("images.surface.shell", surface_shell),
    ("images.surface.package-manager", surface_package_manager),
    ("images.surface.packages", surface_packages),
    ("images.surface.size", surface_size),
    ("images.surface.base", surface_base),
)
"""The attack-surface rules' checks, by rule id, in the order they judge each image."""
