"""Image facts for admission: resolve each image to a digest, verify its
signatures, and scan it on first use (then from the cache, by digest); a scanned
image's attack surface (shells, package managers, size, base) comes with it.

Everything here is I/O (engine, registry, disk) and runs in a worker thread so the
gateway's loop keeps serving. Anything that can't be learnt is reported in the
facts' ``error`` and the policy core fails closed on it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moorage.admission.image_base import LocalImages, find_base
from moorage.engine_api.reference import parse_image_ref
from moorage.images.catalogers.interface import Inventory
from moorage.images.ignore import IgnoreEntry, load_ignore
from moorage.images.interface import ImageError, SignatureError
from moorage.images.registry import Registry
from moorage.images.scanner import Scanner
from moorage.images.sign import parse_public_keys, verify_image
from moorage.images.sources import EngineSource, RegistrySource, repo_digest_for
from moorage.images.surface import package_managers, shells
from moorage.policy.rules.images import ImageFacts

__all__ = ["ImageGate", "NotLocal"]

log = logging.getLogger("moorage.images")
VERIFIED_TTL = 300.0


@functools.lru_cache(maxsize=64)
def _public_keys(pem: bytes) -> list[Any]:
    """Parsed once per key, not once per request."""
    return parse_public_keys(pem, "a trusted key")


class NotLocal(Exception):
    """A container create names an image the engine doesn't have: answer 404 so the
    client pulls it (through the gateway, where the pull is checked) and retries."""


@dataclass(frozen=True)
class Resolved:
    """An image reference resolved to its digest, with what trust found about it."""

    facts: ImageFacts
    name: str = ""  # registry/repo, for pull rewriting
    digest: str = ""


class ImageGate:
    """Image facts for admission: images resolved to digests, signatures verified, scans."""

    def __init__(
        self,
        scanner: Scanner,
        engine: Any | None,
        registry_for: Callable[[str], Registry] = Registry,
        ignore_file: Path | None = None,
    ) -> None:
        self.scanner = scanner
        self.engine = engine
        self.registry_for = registry_for
        self.ignore_file = ignore_file
        self._ignore_cache: tuple[float, list[IgnoreEntry]] = (-1.0, [])
        # Good verifications by (repo, digest, key ids), for VERIFIED_TTL seconds: a
        # signature for a digest never stops verifying; a revoked key leaves the
        # policy, which changes the cache key. Failures are never cached.
        self._verified: dict[tuple[str, str, tuple[str, ...]], tuple[float, tuple[str, ...]]] = {}
        self._local = LocalImages(engine) if engine is not None else None

    def _ignore(self) -> list[IgnoreEntry]:
        """The ignore file, read again only when it changes."""
        try:
            mtime = self.ignore_file.stat().st_mtime if self.ignore_file is not None else -1.0
        except OSError:
            return []
        if mtime != self._ignore_cache[0]:
            assert self.ignore_file is not None
            self._ignore_cache = (mtime, load_ignore(self.ignore_file))
        return self._ignore_cache[1]

    def _signers(self, name: str, digest: str, keys: list[tuple[str, bytes]]) -> tuple[str, ...]:
        """Key ids with a valid signature for ``name@digest``; SignatureError if none."""
        nref = parse_image_ref(name)
        cache_key = (nref.name, digest, tuple(sorted(kid for kid, _ in keys)))
        hit = self._verified.get(cache_key)
        if hit is not None and time.monotonic() - hit[0] < VERIFIED_TTL:
            return hit[1]
        pubs = [k for _, pem in keys for k in _public_keys(pem)]
        v = verify_image(self.registry_for(nref.registry), nref.repository, digest, pubs)
        self._verified[cache_key] = (time.monotonic(), v.key_ids)
        return v.key_ids

    async def gather(
        self, kind: str, refs: list[str], keys: list[tuple[str, bytes]], scan: bool
    ) -> dict[str, Resolved]:
        """Resolve and judge the images a request names."""
        out = {}
        for ref in refs:
            out[ref] = await asyncio.to_thread(self._one, kind, ref, keys, scan)
        return out

    def _one(self, kind: str, ref: str, keys: list[tuple[str, bytes]], scan: bool) -> Resolved:
        r = parse_image_ref(ref)
        doc: dict[str, Any] | None = None
        try:
            if kind == "container.create":
                if self.engine is None:
                    raise ImageError("the gateway has no engine client to inspect local images")
                source: Any = EngineSource(self.engine)
                try:
                    doc = source.inspect(ref)
                except ImageError as exc:
                    if "has no image" in str(exc):
                        raise NotLocal(ref) from exc
                    raise
                repo_digests = tuple(str(d) for d in doc.get("RepoDigests") or [])
                digest = repo_digest_for(ref, repo_digests) or ""
                named = next((d.partition("@")[0] for d in repo_digests if d.endswith("@" + digest)), "")
                scan_ref = ref
                name = named
            else:
                if r.is_id:
                    raise ImageError(f"{ref!r} is an image id; a registry name is needed here")
                registry = self.registry_for(r.registry)
                digest = r.digest or registry.head_manifest(r.repository, r.tag or "latest") or ""
                if not digest:
                    raise ImageError(f"{ref} was not found in the registry {r.registry}")
                name = f"{r.registry}/{r.repository}" if r.registry != "docker.io" else r.repository
                source = RegistrySource(self.registry_for)
                scan_ref = f"{name}@{digest}"
            signers: tuple[str, ...] = ()
            sig_error = ""
            if keys:
                if not digest:
                    sig_error = (
                        "it has no registry digest (built or loaded locally): push it, sign it, "
                        "and run it by its registry name"
                    )
                else:
                    try:
                        signers = self._signers(name or ref, digest, keys)
                    except SignatureError as exc:
                        sig_error = str(exc)
            facts = ImageFacts(ref, digest, signers=signers, signature_error=sig_error)
            if scan:
                facts = self._surface(self._scan(source, ref, scan_ref, digest, signers, sig_error), doc)
            return Resolved(facts, name, digest)
        except NotLocal:
            raise
        except ImageError as exc:
            log.warning("image %s could not be checked: %s", ref, exc)
            return Resolved(ImageFacts(ref, error=str(exc)))

    def _scan(
        self, source: Any, ref: str, scan_ref: str, digest: str, signers: tuple[str, ...], sig_error: str
    ) -> tuple[ImageFacts, Inventory]:
        started = time.monotonic()
        db = self.scanner.db
        if db is None or not db.exists():  # packages are still known; vulnerability rules fail closed
            inv, _ = self.scanner.inventory(source, scan_ref)
            return ImageFacts(
                ref,
                digest or inv.digest,
                signers=signers,
                signature_error=sig_error,
                packages=tuple((p.name, p.version, p.purl, p.path) for p in inv.packages),
                db_age=None,
                scanned=True,
            ), inv
        report = self.scanner.scan(source, scan_ref, self._ignore(), dt.date.today())
        if not report.cached:
            log.info(
                "scanned %s (%s) on first use in %.2fs: %d packages, %s",
                ref,
                report.inventory.digest[:19],
                time.monotonic() - started,
                len(report.inventory.packages),
                report.counts(),
            )
        return ImageFacts(
            ref,
            digest or report.inventory.digest,
            signers=signers,
            signature_error=sig_error,
            packages=tuple((p.name, p.version, p.purl, p.path) for p in report.inventory.packages),
            findings=tuple((f.id, f.package, f.version, f.severity, f.fixed or "") for f in report.active),
            suppressed=len(report.findings) - len(report.active),
            db_age=time.time() - report.db_built_at,
            scanned=True,
        ), report.inventory

    def _surface(self, scanned: tuple[ImageFacts, Inventory], doc: dict[str, Any] | None) -> ImageFacts:
        """The facts with the image's attack surface: the shells and package managers
        the scan found, its size (the engine's inspect ``Size`` when ``doc`` is that
        inspect, else its layers' content) and its base (:mod:`.image_base`)."""
        facts, inv = scanned
        size = doc.get("Size") if doc is not None else None
        # a label without a digest is taken as it is: the engine's images aren't needed
        wanted = self._local is not None and (not inv.base_name or inv.base_digest)
        local = self._local.images() if self._local is not None and wanted else None
        base = find_base(inv.image_id, inv.diff_ids, inv.base_name, inv.base_digest, local)
        return dataclasses.replace(
            facts,
            size=size if isinstance(size, int) and not isinstance(size, bool) else inv.size,
            base=base.name,
            base_aliases=base.aliases,
            base_via=base.via,
            shells=shells(inv),
            package_managers=package_managers(inv),
        )
