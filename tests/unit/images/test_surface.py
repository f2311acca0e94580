"""Shells and package managers in an image: path entries found in layers built in
memory (whiteouts, opaque folders, symlinks, hard links, usrmerge), packages from
the inventory, and the scanner's cache of them."""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, ClassVar

from moorage.images.catalogers.catalog import wanted
from moorage.images.catalogers.interface import Inventory, Package
from moorage.images.interface import ImageSource, Layer, ResolvedImage
from moorage.images.layers import apply_layers
from moorage.images.scanner import INVENTORY_CACHE, Scanner
from moorage.images.surface import package_managers, shells, wants_executable

Entry = tuple[str, str, object]  # (name, "file" | "sym" | "hard" | "dir", data or link target)


def layer(*entries: Entry) -> Layer:
    """A layer holding ``entries``: files (bytes), symlinks, hard links and folders."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, kind, data in entries:
            info = tarfile.TarInfo(name)
            if kind == "file":
                assert isinstance(data, bytes)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                continue
            info.type = {"sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE, "dir": tarfile.DIRTYPE}[kind]
            info.linkname = str(data or "")
            tar.addfile(info)
    raw = buf.getvalue()

    @contextlib.contextmanager
    def opener() -> Iterator[IO[bytes]]:
        yield io.BytesIO(raw)

    return Layer("sha256:" + "0" * 64, "", opener)


def present(*layers: Layer) -> set[str]:
    return apply_layers(layers, wanted, present=wants_executable).present


BUSYBOX: tuple[Entry, ...] = (
    ("bin", "dir", None),
    ("bin/busybox", "file", b"\x7fELF" + b"\0" * 60),
    ("bin/sh", "sym", "busybox"),
    ("bin/ls", "hard", "bin/busybox"),
    ("app", "file", b"#!/bin/sh\n"),
)


def test_scratch_with_a_static_busybox_has_shells_but_no_package_database() -> None:
    fs = apply_layers([layer(*BUSYBOX)], wanted, present=wants_executable)
    assert fs.present == {"bin/busybox", "bin/sh"}
    assert not fs.files  # nothing was read: presence is enough
    assert fs.size == 64 + 10
    inv = Inventory("d", "i", None, (), executables=tuple(sorted("/" + p for p in fs.present)))
    assert shells(inv) == ("/bin/busybox", "/bin/sh") and package_managers(inv) == ()


def test_usrmerge_links_and_hard_links_count_and_folders_do_not() -> None:
    got = present(
        layer(
            ("bin", "sym", "usr/bin"),
            ("usr/bin/dash", "file", b"x"),
            ("usr/bin/sh", "sym", "dash"),
            ("usr/bin/apt-get", "file", b"x"),
            ("usr/bin/pip3.11", "hard", "usr/bin/apt-get"),
            ("usr/local/bin/npm", "sym", "../lib/node_modules/npm/bin/npm-cli.js"),
            ("usr/sbin/gem", "dir", None),  # a folder named like a tool is not one
            ("usr/share/bash", "file", b"x"),  # not on a well-known path
            ("opt/app/bin/sh", "file", b"x"),
        )
    )
    assert got == {"usr/bin/dash", "usr/bin/sh", "usr/bin/apt-get", "usr/bin/pip3.11", "usr/local/bin/npm"}


def test_whiteouts_opaque_folders_and_replacements_remove_lower_entries() -> None:
    base = layer(
        ("bin/sh", "sym", "busybox"),
        ("bin/busybox", "file", b"x"),
        ("usr/bin/apt", "file", b"x"),
        ("usr/bin/dpkg", "file", b"x"),
        ("sbin/apk", "file", b"x"),
        ("usr/local/bin/pip", "file", b"x"),
    )
    top = layer(
        ("bin/.wh.sh", "file", b""),  # deletes /bin/sh
        ("usr/bin/.wh..wh..opq", "file", b""),  # empties /usr/bin below
        ("sbin", "sym", "usr/sbin"),  # a non-folder where a folder was hides what it held
        ("usr/local/bin/.wh.pip", "file", b""),
    )
    assert present(base, top) == {"bin/busybox"}
    # the same path again in an upper layer stays, whiteout or not in lower ones
    assert present(base, top, layer(("usr/bin/apt", "file", b"x"))) == {"bin/busybox", "usr/bin/apt"}


def test_packages_that_install_a_shell_or_a_manager_are_named() -> None:
    def pkg(name: str, type_: str) -> Package:
        return Package(name, "1.0", type_, "", f"pkg:{type_}/{name}@1.0", "/db")

    found = [("bash", "deb"), ("libc6", "deb"), ("apt", "deb"), ("busybox-binsh", "apk"), ("apk-tools", "apk"),
             ("pip", "pypi"), ("npm", "npm"), ("bash", "pypi"), ("rpm", "rpm")]  # fmt: skip
    inv = Inventory(
        "d", "i", None, tuple(pkg(*p) for p in found), executables=("/usr/bin/bash", "/usr/bin/apt")
    )
    assert shells(inv) == ("/usr/bin/bash", "bash 1.0 (deb)", "busybox-binsh 1.0 (apk)")
    assert package_managers(inv) == (
        "/usr/bin/apt", "apt 1.0 (deb)", "apk-tools 1.0 (apk)", "pip 1.0 (pypi)", "npm 1.0 (npm)", "rpm 1.0 (rpm)"
    )  # fmt: skip


def test_the_inventory_round_trips_its_surface_and_reports_only_what_is_known() -> None:
    inv = Inventory("d", "i", None, (), executables=("/bin/sh",), size=12, diff_ids=("sha256:1",),
                    base_name="debian:bookworm", base_digest="sha256:" + "2" * 64)  # fmt: skip
    assert Inventory.from_dict(json.loads(json.dumps(inv.as_dict()))) == inv
    bare = Inventory("d", "i", None, ())
    assert set(bare.as_dict()) == {"digest", "image_id", "reference", "os", "packages", "warnings"}
    assert Inventory.from_dict(bare.as_dict()) == bare and bare.size is None


# ---------------------------------------------------------------------- scanner
class _Image(ResolvedImage):
    reference, digest, image_id, repo_digests = "app:1", "sha256:d", "sha256:" + "9" * 64, ()
    config: ClassVar[dict[str, Any]] = {
        "rootfs": {"type": "layers", "diff_ids": ["sha256:l1"]},
        "config": {"Labels": {"org.opencontainers.image.base.name": "docker.io/library/debian:bookworm",
                              "org.opencontainers.image.base.digest": "sha256:" + "3" * 64}},
    }  # fmt: skip

    def layers(self) -> list[Layer]:
        return [layer(*BUSYBOX)]


class _Source(ImageSource):
    name = "fake"

    def __init__(self) -> None:
        self.reads = 0

    @contextlib.contextmanager
    def resolve(self, reference: str) -> Iterator[ResolvedImage]:
        image = _Image()
        original = image.layers

        def counted() -> list[Layer]:
            self.reads += 1
            return original()

        image.layers = counted  # type: ignore[method-assign]
        yield image


def test_the_scanner_records_the_surface_and_rebuilds_an_older_cache(tmp_path: Path) -> None:
    scanner, source = Scanner(tmp_path), _Source()
    inv, cached = scanner.inventory(source, "app:1")
    assert not cached and source.reads == 1
    assert inv.executables == ("/bin/busybox", "/bin/sh") and inv.size == 74
    assert inv.diff_ids == ("sha256:l1",) and inv.base_name == "docker.io/library/debian:bookworm"
    assert inv.base_digest == "sha256:" + "3" * 64
    again, cached = scanner.inventory(source, "app:1")
    assert cached and again == inv and source.reads == 1
    # an inventory an older Moorage cached has no executables: never read as "no shells"
    path = tmp_path / "inventory" / ("9" * 64 + ".json")
    old = json.loads(path.read_text())
    assert old["cache"] == INVENTORY_CACHE
    for key in ("cache", "executables", "size", "diff_ids", "base"):
        del old[key]
    path.write_text(json.dumps(old))
    rebuilt, cached = scanner.inventory(source, "app:1")
    assert not cached and source.reads == 2 and rebuilt.executables == ("/bin/busybox", "/bin/sh")
