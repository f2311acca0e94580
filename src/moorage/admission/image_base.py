"""The base image of an image, for ``images.surface.base``.

The base is what the image's config says (the OCI label
``org.opencontainers.image.base.name``, pinned by ``...base.digest`` when given), else
what the engine's own images show: the tagged local image whose layers are the
longest prefix of this image's layers. A label is the builder's claim; when it pins a
digest the engine holds, the claim is checked against that image's layers.

:func:`find_base` is pure; :class:`LocalImages` reads the engine (a listing kept for a
few seconds, each image's layers kept by id, which never change).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

__all__ = ["Base", "LocalImage", "LocalImages", "find_base"]

log = logging.getLogger("moorage.images")

_NONE = ("<none>:<none>", "<none>@<none>")


@dataclass(frozen=True)
class Base:
    """What was learnt of an image's base: its reference and other names ("" when not
    known), and how it was found ("label", "layers") or why it is not known."""

    name: str = ""
    aliases: tuple[str, ...] = ()
    via: str = ""


@dataclass(frozen=True)
class LocalImage:
    """An image the engine holds: its id, its names (tags, then repo digests) and its
    layers (``RootFS.Layers``, base first)."""

    id: str
    names: tuple[str, ...]
    layers: tuple[str, ...]
    repo_digests: tuple[str, ...] = ()


def _prefix(lower: tuple[str, ...], upper: tuple[str, ...]) -> bool:
    return 0 < len(lower) <= len(upper) and upper[: len(lower)] == lower


def find_base(
    image_id: str, layers: tuple[str, ...], label: str, label_digest: str, local: list[LocalImage] | None
) -> Base:
    """The base of the image ``image_id`` with ``layers`` and its base labels, among
    ``local`` (None when the engine's images could not be read).

    Without a label, the longest prefix wins; images with the same layers as this one
    (a base changed only in its config: ``FROM base`` + ``CMD``) count, so an image
    never counts as its own base only by id. Ties give every name, sorted."""
    if label:
        shown = f"{label}@{label_digest}" if label_digest and "@" not in label else label
        pinned = [i for i in local or [] if label_digest and any(
            d.partition("@")[2] == label_digest for d in i.repo_digests)]  # fmt: skip
        if pinned and not any(_prefix(i.layers, layers) for i in pinned):
            return Base(via=f"its label names {shown}, but the engine's image of that digest is not "
                            "below this one's layers")  # fmt: skip
        return Base(shown, (), "label")
    if local is None:
        return Base(via="it has no base label and the engine's images could not be read")
    best: list[LocalImage] = []
    for img in local:
        if img.id == image_id or not img.names or not _prefix(img.layers, layers):
            continue
        if not best or len(img.layers) > len(best[0].layers):
            best = [img]
        elif len(img.layers) == len(best[0].layers):
            best.append(img)
    if not best:
        return Base(via="it has no base label and no tagged local image's layers are below its own")
    names = sorted({n for img in best for n in img.names}, key=lambda n: ("@" in n, n))
    return Base(names[0], tuple(names[1:]), "layers")


class LocalImages:
    """The engine's tagged images and their layers: the listing (``GET /images/json``)
    is kept for ``ttl`` seconds, each image's layers (``GET /images/{id}/json``) for as
    long as the image is listed."""

    def __init__(self, engine: Any, ttl: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.ttl = ttl
        self.clock = clock
        self._at = -1.0
        self._images: list[LocalImage] | None = None
        self._layers: dict[str, tuple[str, ...]] = {}
        self._lock = threading.Lock()  # admission reads images in worker threads

    def images(self) -> list[LocalImage] | None:
        """The engine's named images, or None when they could not be read."""
        with self._lock:
            return self._read()

    def _read(self) -> list[LocalImage] | None:
        now = self.clock()
        if self._images is not None and 0 <= now - self._at < self.ttl:
            return self._images
        try:
            rows = self.engine.call("GET", "/images/json")
            images: list[LocalImage] = []
            for row in rows if isinstance(rows, list) else []:
                image_id = str(row.get("Id") or "")
                digests = tuple(str(d) for d in row.get("RepoDigests") or [] if d not in _NONE)
                names = tuple(str(t) for t in row.get("RepoTags") or [] if t not in _NONE) + digests
                if not image_id or not names:
                    continue
                if image_id not in self._layers:
                    doc = self.engine.call("GET", f"/images/{quote(image_id, safe='')}/json")
                    rootfs = doc.get("RootFS") if isinstance(doc, dict) else None
                    found = rootfs.get("Layers") if isinstance(rootfs, dict) else None
                    self._layers[image_id] = tuple(str(x) for x in found or [])
                images.append(LocalImage(image_id, names, self._layers[image_id], digests))
        except Exception as exc:  # the base is then not known, and the rule fails closed
            log.warning("the engine's images could not be listed to find a base image: %s", exc)
            return None
        listed = {i.id for i in images}
        self._layers = {k: v for k, v in self._layers.items() if k in listed}
        self._images, self._at = images, now
        return images
