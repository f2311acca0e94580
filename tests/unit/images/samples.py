"""Shared by the image tests: layers built in memory, and a scan report with every
shape of finding (the report-format tests' sample)."""

from __future__ import annotations

import contextlib
import io
import tarfile
from collections.abc import Iterator
from typing import IO

from moorage.images.catalogers.interface import Inventory, OSInfo, Package
from moorage.images.interface import Layer
from moorage.images.scanner import Report
from moorage.images.vulns.interface import Finding


def tar_layer(entries: list[tuple[str, bytes | str | None]], gz: bool = False) -> Layer:
    """A layer whose tar holds ``entries``: bytes are files, a string a symlink, None a folder."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w") as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif isinstance(data, str):
                info.type, info.linkname = tarfile.SYMTYPE, data
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()

    @contextlib.contextmanager
    def opener() -> Iterator[IO[bytes]]:
        yield io.BytesIO(raw)

    return Layer("sha256:" + "0" * 64, "", opener)


def dist_info(name: str, version: str) -> bytes:
    """The METADATA of a Python distribution."""
    return f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()


def sample_report(reference: str = "registry.test/app:1") -> Report:
    """Findings of every severity, with and without a fix, a score, a path, and one suppressed."""
    debian = OSInfo("debian", "12", "Debian GNU/Linux 12 (bookworm)", "bookworm")
    packages = (
        Package("libssl3", "3.0.11-1", "deb", "Debian:12", "pkg:deb/debian/libssl3@3.0.11-1",
                "/var/lib/dpkg/status", "openssl", "3.0.11-1"),
        Package("zlib1g", "1:1.2.13.dfsg-1", "deb", "Debian:12", "pkg:deb/debian/zlib1g@1%3A1.2.13.dfsg-1",
                "/var/lib/dpkg/status", "zlib", "1:1.2.13.dfsg-1"),
        Package("requests", "2.19.0", "pypi", "PyPI", "pkg:pypi/requests@2.19.0",
                "/usr/lib/python3/dist-packages/requests-2.19.0.dist-info/METADATA"),
    )  # fmt: skip
    findings = (
        Finding("CVE-2024-0001", "libssl3", "3.0.11-1", "Debian:12", "critical", 9.8, "3.0.13-1",
                "openssl: a buffer overflow", ("DSA-1",), "/var/lib/dpkg/status", packages[0].purl),
        Finding("GHSA-aaaa-bbbb-cccc", "requests", "2.19.0", "PyPI", "high", None, "2.20.0",
                "Requests leaks credentials on redirect " + "x" * 80, ("CVE-2018-18074", "PYSEC-2018-28"),
                packages[2].path, packages[2].purl),
        Finding("CVE-2024-0002", "zlib1g", "1:1.2.13.dfsg-1", "Debian:12", "medium", None, None,
                "", (), "/var/lib/dpkg/status", packages[1].purl),
        Finding("CVE-2024-0003", "libssl3", "3.0.11-1", "Debian:12", "low", 3.1, None,
                "openssl: timing", (), "", packages[0].purl),
        Finding("CVE-2024-0004", "zlib1g", "1:1.2.13.dfsg-1", "Debian:12", "unknown", None, "1:1.3-1",
                "zlib: maybe", (), "/var/lib/dpkg/status", packages[1].purl),
        Finding("CVE-2024-0005", "libssl3", "3.0.11-1", "Debian:12", "high", 7.5, "3.0.13-1",
                "openssl: accepted", (), "/var/lib/dpkg/status", packages[0].purl,
                suppressed="not reachable in this image (until 2099-01-01)"),
        Finding("CVE-2024-0001", "libssl3", "3.0.11-1", "Debian:12", "critical", 9.0, "3.0.13-1",
                "openssl: a buffer overflow", ("DSA-1",), "/usr/lib/ssl/other", packages[0].purl),
    )  # fmt: skip
    inventory = Inventory("sha256:" + "ab" * 32, "sha256:" + "cd" * 32, debian, packages,
                          ("a warning from the catalog",), reference)  # fmt: skip
    return Report(inventory, findings, "0123456789abcdef", 1_700_000_000.0,
                  ("a warning from the catalog", "CVE-X vs pkg 1: bad version"))  # fmt: skip
