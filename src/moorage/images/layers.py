"""Apply an image's layers in order, keeping only the files catalogers read.

Layers are read as tar streams one at a time. Whiteouts (``.wh.NAME``) delete a
path from the layers below; an opaque marker (``.wh..wh..opq``) empties a
directory of everything below it. Only files the ``want`` predicate accepts are
kept, each up to ``max_file`` bytes, so memory stays bounded whatever the image
size. Symlinks among wanted paths (``etc/os-release -> ../usr/lib/os-release``)
are resolved at the end. Paths a ``present`` predicate accepts are only recorded
as there or not (a file, symlink or hard link, never read), and the content size of
every layer is summed as the engine counts an image's size.
"""

from __future__ import annotations

import posixpath
import tarfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO

from moorage.images.interface import Layer, SourceError

__all__ = ["Filesystem", "apply_layers", "open_tar"]

WHITEOUT = ".wh."
"""The prefix of a whiteout entry: ``.wh.NAME`` deletes NAME from the layers below."""
OPAQUE = ".wh..wh..opq"
"""The opaque marker: its folder hides everything the layers below put there."""
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
"""The first bytes of a zstd stream."""


@dataclass
class Filesystem:
    """The wanted files of the final image, path (no leading slash) to bytes."""

    files: dict[str, bytes] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    present: set[str] = field(default_factory=set)  # paths ``present`` accepted, in the final image
    size: int = 0  # bytes of regular-file content over every layer (overwritten files too)

    def glob_dir(self, prefix: str) -> list[str]:
        """The kept paths under ``prefix``, sorted."""
        return sorted(p for p in self.files if p.startswith(prefix))


def _norm(name: str) -> str:
    return posixpath.normpath("/" + name).lstrip("/")


def open_tar(f: IO[bytes], what: str) -> tarfile.TarFile:
    """Open a layer tar, plain or gzip; zstd layers are refused with a clear reason."""
    seekable = f.seekable()
    head = b""
    if seekable:
        pos = f.tell()
        head = f.read(4)
        f.seek(pos)
    if head.startswith(ZSTD_MAGIC):
        raise SourceError(f"{what} is zstd-compressed, which this scanner can't read yet")
    try:
        if head[:2] == b"\x1f\x8b" or not seekable:
            return tarfile.open(fileobj=f, mode="r|*")
        return tarfile.open(fileobj=f, mode="r:")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise SourceError(f"{what} is not a readable tar archive: {exc}") from exc


def _under(path: str, directory: str) -> bool:
    return directory == "" or path.startswith(directory + "/")


def _below(path: str, paths: set[str]) -> bool:
    """Whether a folder above ``path`` is one of ``paths``."""
    parent = posixpath.dirname(path)
    while parent:
        if parent in paths:
            return True
        parent = posixpath.dirname(parent)
    return False


def apply_layers(
    layers: Iterable[Layer],
    want: Callable[[str], bool],
    max_file: int = 64 << 20,
    progress: Callable[[int, int], None] | None = None,
    present: Callable[[str], bool] | None = None,
) -> Filesystem:
    """The final image's wanted files after applying ``layers`` in order (whiteouts and
    opaque folders included); ``progress(done, total)`` is called after each layer.
    Paths ``present`` accepts that are anything but a folder land in ``fs.present``.
    """
    fs = Filesystem()
    layer_list = list(layers)
    for n, layer in enumerate(layer_list):
        files: dict[str, bytes] = {}
        links: dict[str, str] = {}
        hard: dict[str, str] = {}
        gone: list[str] = []
        opaque: list[str] = []
        seen: set[str] = set()
        here: set[str] = set()
        replaced: set[str] = set()  # non-folders: they hide whatever lower layers had below them
        try:
            with layer.open() as raw, open_tar(raw, f"layer {layer.digest[:19]}") as tar:
                for m in tar:
                    path = _norm(m.name)
                    base = posixpath.basename(path)
                    if base == OPAQUE:
                        opaque.append(posixpath.dirname(path))
                        continue
                    if base.startswith(WHITEOUT):
                        gone.append(posixpath.join(posixpath.dirname(path), base[len(WHITEOUT) :]))
                        continue
                    seen.add(path)
                    if not m.isdir():
                        replaced.add(path)
                    if m.isfile():
                        fs.size += m.size
                    if present is not None and not m.isdir() and present(path):
                        here.add(path)
                    if not want(path):
                        continue
                    if m.issym():
                        links[path] = m.linkname
                    elif m.islnk():
                        hard[path] = _norm(m.linkname)
                    elif m.isfile():
                        if m.size > max_file:
                            fs.warnings.append(
                                f"/{path} skipped: {m.size} bytes is over the {max_file}-byte limit"
                            )
                            continue
                        data = tar.extractfile(m)
                        if data is not None:
                            files[path] = data.read()
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            raise SourceError(f"layer {n + 1} ({layer.digest[:19]}) is truncated or corrupt: {exc}") from exc
        # Deletions apply to the layers below only, never to this layer's own entries.
        for d in opaque:
            for p in [p for p in fs.files if _under(p, d)]:
                del fs.files[p]
            for p in [p for p in fs.links if _under(p, d)]:
                del fs.links[p]
            fs.present -= {p for p in fs.present if _under(p, d)}
        for g in gone:
            for store in (fs.files, fs.links):
                for p in [p for p in store if p == g or _under(p, g)]:
                    del store[p]
            fs.present -= {p for p in fs.present if p == g or _under(p, g)}
        if replaced:
            for store in (fs.files, fs.links):
                for p in [p for p in store if _below(p, replaced)]:
                    del store[p]
            fs.present -= {p for p in fs.present if _below(p, replaced)}
        for p in seen:
            fs.files.pop(p, None)
            fs.links.pop(p, None)
            fs.present.discard(p)
        for p, target in hard.items():
            if target in files:
                files[p] = files[target]
            elif target in fs.files:
                files[p] = fs.files[target]
        fs.files.update(files)
        fs.links.update(links)
        fs.present |= here
        if progress:
            progress(n + 1, len(layer_list))
    _resolve_links(fs)
    return fs


def _resolve_links(fs: Filesystem) -> None:
    for path, target in fs.links.items():
        cur, hops = path, 0
        dest = target
        while hops < 8:
            nxt = _norm(dest) if dest.startswith("/") else _norm(posixpath.join(posixpath.dirname(cur), dest))
            if nxt in fs.files:
                fs.files.setdefault(path, fs.files[nxt])
                break
            if nxt not in fs.links:
                break
            cur, dest, hops = nxt, fs.links[nxt], hops + 1
