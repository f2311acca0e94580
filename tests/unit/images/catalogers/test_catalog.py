"""The catalogers, one database format each, and the order the inventory lists them in."""

from __future__ import annotations

import sqlite3
import struct
from pathlib import Path

import pytest

from moorage.images.catalogers.catalog import CatalogerChoice, catalog, wanted, wanted_by
from moorage.images.catalogers.interface import CatalogError
from moorage.images.layers import apply_layers
from tests.unit.images.samples import tar_layer


def test_dpkg_status_d_apk_and_npm_scopes() -> None:
    status = (
        b"Package: libssl3\nStatus: install ok installed\nVersion: 3.0.11-1~deb12u2\n"
        b"Source: openssl (3.0.11-1~deb12u2)\nArchitecture: amd64\n\n"
        b"Package: gone\nStatus: deinstall ok config-files\nVersion: 1.0\n"
    )
    apk = b"P:musl\nV:1.2.4-r2\nA:x86_64\no:musl\nL:MIT\n\nP:busybox-binsh\nV:1.36.1-r5\no:busybox\n\n"
    layer = tar_layer(
        [
            ("var/lib/dpkg/status.d/libssl3", status),
            ("var/lib/dpkg/status.d/libssl3.md5sums", b"x"),
            ("lib/apk/db/installed", apk),
            ("etc/os-release", b"ID=alpine\nVERSION_ID=3.19.1\n"),
            ("app/node_modules/@scope/pkg/package.json", b'{"name":"@scope/pkg","version":"1.0.0"}'),
            ("app/node_modules/@scope/pkg/node_modules/x/package.json", b'{"name":"x","version":"0.1.0"}'),
            ("app/node_modules/x/lib/package.json", b'{"name":"not-a-package","version":"9"}'),
        ]
    )
    pkgs = catalog(apply_layers([layer], wanted)).packages
    by = {p.name: p for p in pkgs}
    assert set(by) == {"libssl3", "musl", "busybox-binsh", "@scope/pkg", "x"}
    assert by["libssl3"].source_name == "openssl" and by["libssl3"].path == "/var/lib/dpkg/status.d/libssl3"
    assert by["musl"].ecosystem == "Alpine:v3.19" and by["musl"].purl.startswith(
        "pkg:apk/alpine/musl@1.2.4-r2"
    )
    assert by["busybox-binsh"].source_name == "busybox"
    assert by["@scope/pkg"].purl == "pkg:npm/%40scope/pkg@1.0.0"


def _rpm_blob(tags: dict[int, str | int]) -> bytes:
    index, store = b"", b""
    for tag, value in tags.items():
        if isinstance(value, int):
            index += struct.pack(">IIII", tag, 4, len(store), 1)
            store += struct.pack(">I", value)
        else:
            index += struct.pack(">IIII", tag, 6, len(store), 1)
            store += value.encode() + b"\0"
    return struct.pack(">II", len(tags), len(store)) + index + store


def test_rpm_sqlite_database(tmp_path: Path) -> None:
    db = tmp_path / "rpmdb.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB NOT NULL)")
    conn.execute("INSERT INTO Packages (blob) VALUES (?)", (_rpm_blob(
        {1000: "openssl-libs", 1001: "3.0.7", 1002: "24.el9", 1003: 1, 1022: "x86_64",
         1044: "openssl-3.0.7-24.el9.src.rpm", 1014: "ASL 2.0"}),))  # fmt: skip
    conn.execute(
        "INSERT INTO Packages (blob) VALUES (?)", (_rpm_blob({1000: "gpg-pubkey", 1001: "1", 1002: "1"}),)
    )
    conn.commit()
    conn.close()
    layer = tar_layer([("var/lib/rpm/rpmdb.sqlite", db.read_bytes()),
                    ("etc/os-release", b'ID="rocky"\nVERSION_ID="9.3"\n')])  # fmt: skip
    found = catalog(apply_layers([layer], wanted))
    pkgs, warnings = found.packages, found.warnings
    assert not warnings
    (p,) = pkgs
    assert (p.name, p.version, p.source_name, p.ecosystem) == (
        "openssl-libs",
        "1:3.0.7-24.el9",
        "openssl",
        "Rocky Linux:9",
    )
    assert p.purl == "pkg:rpm/rocky/openssl-libs@3.0.7-24.el9?arch=x86_64&epoch=1&distro=rocky-9.3"


def test_a_corrupt_package_database_is_a_warning_not_an_empty_inventory() -> None:
    layer = tar_layer([("var/lib/rpm/rpmdb.sqlite", b"not sqlite at all" * 10)])
    found = catalog(apply_layers([layer], wanted))
    pkgs, warnings = found.packages, found.warnings
    assert pkgs == () and "could not be read" in warnings[0]


def test_os_packages_come_first_then_language_packages_in_path_order() -> None:
    status = b"Package: zlib1g\nStatus: install ok installed\nVersion: 1:1.2.13\n"
    layer = tar_layer([
        ("b/node_modules/left-pad/package.json", b'{"name":"left-pad","version":"1.3.0"}'),
        ("a/site/idna-3.6.dist-info/METADATA", b"Name: idna\nVersion: 3.6\n"),
        ("c/site/six-1.16.0.dist-info/METADATA", b"Name: six\nVersion: 1.16.0\n"),
        ("lib/apk/db/installed", b"P:musl\nV:1.2.4-r2\n\n"),
        ("var/lib/dpkg/status", status),
        ("etc/os-release", b"ID=debian\nVERSION_ID=12\n"),
    ])  # fmt: skip
    found = catalog(apply_layers([layer], wanted))
    assert [p.name for p in found.packages] == ["zlib1g", "musl", "idna", "left-pad", "six"]


def test_catalogers_are_picked_by_name_and_each_reads_only_its_own_files() -> None:
    assert [c.value for c in CatalogerChoice] == ["dpkg", "apk", "rpm", "python", "npm"]
    npm = CatalogerChoice.NPM.to_cataloger()
    assert npm.name == "npm" and npm.kind == "language"
    assert npm.wants("app/node_modules/@s/p/package.json") and not npm.wants("app/package.json")
    layer = tar_layer([
        ("app/node_modules/x/package.json", b'{"name":"x","version":"1.0.0"}'),
        ("site/idna-3.6.dist-info/METADATA", b"Name: idna\nVersion: 3.6\n"),
    ])  # fmt: skip
    only_npm = [npm]
    fs = apply_layers([layer], wanted_by(only_npm))
    assert list(fs.files) == ["app/node_modules/x/package.json"]
    assert [p.name for p in catalog(fs, only_npm).packages] == ["x"]


def test_a_parser_error_becomes_a_catalog_error() -> None:
    with pytest.raises(CatalogError, match=r"Expecting (property name|value)"):
        CatalogerChoice.NPM.to_cataloger().read(b"{", "node_modules/x/package.json", None)
    with pytest.raises(CatalogError):
        CatalogerChoice.RPM.to_cataloger().read(b"not sqlite" * 20, "var/lib/rpm/rpmdb.sqlite", None)
