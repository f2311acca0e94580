"""Offline test images for the lab, built as docker-archive tarballs.

The archives are written here, byte for byte, rather than with ``docker
import``: the same input gives the same image ID on every node and every run,
and building needs no engine. They are cached under the cache folder
(``MOORAGE_CACHE``, default /var/cache/moorage) and loaded with ``/images/load``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moorage.engine import EngineClient, EngineError

__all__ = [
    "ImageArchive",
    "ImageBuildError",
    "build_busybox",
    "build_debian",
    "cache_dir",
    "load_into",
]

BUSYBOX_REF = "moorage-lab/busybox:latest"
DEBIAN_REF = "moorage-lab/debian:bookworm"
CREATED = "2024-01-01T00:00:00Z"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ImageBuildError(Exception):
    """A lab image could not be built or loaded; the message says why and what to do."""


@dataclass(frozen=True)
class ImageArchive:
    """A docker-archive tarball on disk and the image it holds."""

    path: Path
    ref: str
    image_id: str


def cache_dir() -> Path:
    """Where built image archives are kept (``$MOORAGE_CACHE/images``, created on use)."""
    path = Path(os.environ.get("MOORAGE_CACHE", "/var/cache/moorage")) / "images"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _arch() -> str:
    from moorage.images.sources import default_platform

    return default_platform().partition("/")[2]


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_archive(layer: Path, ref: str, config: dict[str, Any], out: Path) -> ImageArchive:
    """Wrap one layer tar into a docker-archive (``docker save`` format) at ``out``."""
    diff_id = _sha256_file(layer)
    image_config = {
        "architecture": _arch(),
        "os": "linux",
        "created": CREATED,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
        "history": [{"created": CREATED, "created_by": "moorage lab image"}],
    }
    config_bytes = json.dumps(image_config, sort_keys=True, separators=(",", ":")).encode()
    config_id = hashlib.sha256(config_bytes).hexdigest()
    manifest = [{"Config": f"{config_id}.json", "RepoTags": [ref], "Layers": [f"{diff_id}/layer.tar"]}]
    tmp = out.with_suffix(".partial")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, f"{config_id}.json", config_bytes)
        tar.add(layer, arcname=f"{diff_id}/layer.tar")
        _add_bytes(tar, "manifest.json", json.dumps(manifest).encode())
    tmp.replace(out)
    (out.with_suffix(".id")).write_text(f"sha256:{config_id}\n{ref}\n")
    return ImageArchive(out, ref, f"sha256:{config_id}")


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


def _cached(out: Path) -> ImageArchive | None:
    idfile = out.with_suffix(".id")
    if out.exists() and idfile.exists():
        image_id, ref = idfile.read_text().split()[:2]
        return ImageArchive(out, ref, image_id)
    return None


def build_busybox(rebuild: bool = False) -> ImageArchive:
    """A ``FROM scratch`` image holding Debian's busybox-static and its applets."""
    busybox = Path("/bin/busybox")
    if not busybox.exists():
        raise ImageBuildError("busybox is not installed; install it with: apt-get install -y busybox-static")
    digest = _sha256_file(busybox)[:16]
    out = cache_dir() / f"busybox-{digest}.tar"
    if not rebuild and (hit := _cached(out)):
        return hit
    applets = subprocess.run(
        [str(busybox), "--list-full"], capture_output=True, text=True, check=True
    ).stdout.split()
    with tempfile.TemporaryDirectory(prefix="moorage-bb-") as tmp:
        layer = Path(tmp) / "layer.tar"
        with tarfile.open(layer, "w", format=tarfile.PAX_FORMAT) as tar:
            dirs = {"bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "root", "tmp", "home"}
            for d in sorted(dirs):
                info = tarfile.TarInfo(d)
                info.type = tarfile.DIRTYPE
                info.mode = 0o1777 if d == "tmp" else 0o755
                tar.addfile(info)
            info = tar.gettarinfo(str(busybox), arcname="bin/busybox")
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "root", "root"
            with open(busybox, "rb") as f:
                tar.addfile(info, f)
            for applet in sorted(set(applets)):
                if applet == "bin/busybox" or applet.split("/")[0] not in dirs:
                    continue
                link = tarfile.TarInfo(applet)
                link.type = tarfile.SYMTYPE
                link.linkname = "/bin/busybox"
                tar.addfile(link)
            _add_bytes(
                tar,
                "etc/passwd",
                b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
            )
            _add_bytes(tar, "etc/group", b"root:x:0:\nnogroup:x:65534:\n")
        return write_archive(layer, BUSYBOX_REF, {"Env": [PATH_ENV], "Cmd": ["sh"]}, out)


def apt_mirror() -> str:
    """The Debian mirror this machine's apt already uses (main archive, not security)."""
    sources: list[str] = []
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        try:
            text = path.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("URIs:"):
                sources.extend(line.split()[1:])
            elif line.startswith("deb "):
                parts = [p for p in line.split() if not p.startswith("[")]
                if len(parts) > 1:
                    sources.append(parts[1])
    for uri in sources:
        if "security" not in uri and uri.startswith(("http://", "https://", "file:")):
            return uri
    raise ImageBuildError("no Debian mirror found in /etc/apt/sources.list*; pass one with --mirror URL")


def build_debian(
    rebuild: bool = False,
    mirror: str | None = None,
    suite: str = "bookworm",
    progress: Callable[[str], None] = lambda _: None,
) -> ImageArchive:
    """A Debian minbase image from debootstrap, with a real dpkg database."""
    out = cache_dir() / f"debian-{suite}-minbase.tar"
    if not rebuild and (hit := _cached(out)):
        return hit
    if shutil.which("debootstrap") is None:
        raise ImageBuildError("debootstrap is not installed; install it with: apt-get install -y debootstrap")
    mirror = mirror or apt_mirror()
    work = Path(tempfile.mkdtemp(prefix="moorage-deb-", dir=cache_dir()))
    try:
        root = work / "rootfs"
        progress(f"debootstrap --variant=minbase {suite} (about 30 s)")
        proc = subprocess.run(
            ["debootstrap", "--variant=minbase", suite, str(root), mirror],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-15:])
            raise ImageBuildError(f"debootstrap failed (exit {proc.returncode}):\n{tail}")
        for sub in ("var/cache/apt/archives", "var/lib/apt/lists", "dev", "proc", "sys", "run"):
            target = root / sub
            if target.is_dir():
                for child in target.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        if sub.startswith("var"):
                            shutil.rmtree(child, ignore_errors=True)
                    else:
                        child.unlink(missing_ok=True)
        progress("packing the root filesystem")
        layer = work / "layer.tar"
        with tarfile.open(layer, "w", format=tarfile.PAX_FORMAT) as tar:
            for child in sorted(root.iterdir()):
                tar.add(child, arcname=child.name)
        return write_archive(layer, DEBIAN_REF, {"Env": [PATH_ENV], "Cmd": ["bash"]}, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def load_into(archive: ImageArchive, clients: list[EngineClient]) -> None:
    """Load the archive into every engine, in parallel."""
    errors: list[str] = []

    def load(client: EngineClient) -> None:
        try:
            with open(archive.path, "rb") as body:
                for msg in client.stream(
                    "POST",
                    "/images/load?quiet=1",
                    body,
                    archive.path.stat().st_size,
                    "application/x-tar",
                ):
                    if "error" in msg or "errorDetail" in msg:
                        errors.append(f"{client.socket_path}: {msg.get('error', msg)}")
        except (EngineError, OSError) as exc:
            errors.append(f"{client.socket_path}: {exc}")

    threads = [threading.Thread(target=load, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise ImageBuildError("loading the image failed: " + "; ".join(errors))
