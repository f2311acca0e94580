"""Layers, catalogers, the OSV store, matching, ignore files and CVSS: no engine."""

from __future__ import annotations

import contextlib
import io
import json
import sqlite3
import struct
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from moorage.images.catalogers.catalog import catalog, wanted
from moorage.images.catalogers.interface import Inventory, OSInfo, Package
from moorage.images.cvss import record_severity, score_v3, score_v4
from moorage.images.formats.sbom import cyclonedx, spdx
from moorage.images.ignore import IgnoreError, apply_ignore, load_ignore
from moorage.images.interface import Layer
from moorage.images.layers import apply_layers
from moorage.images.vulns.osv import OsvDatabase
from moorage.images.vulns.osv_match import affected_by
from moorage.images.vulns.osv_records import OsvDatabaseError

FIXTURES = Path(__file__).parent.parent.parent / "fixtures" / "osv" / "pypi"


def _layer(entries: list[tuple[str, bytes | str | None]], gz: bool = False) -> Layer:
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


def _meta(name: str, version: str) -> bytes:
    return f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()


def test_whiteouts_and_opaque_dirs_apply_to_lower_layers_only() -> None:
    sp = "usr/lib/python3/site-packages"
    base = _layer(
        [
            (f"{sp}/a-1.0.dist-info/METADATA", _meta("a", "1.0")),
            (f"{sp}/b-1.0.dist-info/METADATA", _meta("b", "1.0")),
            ("opt/app/node_modules/left-pad/package.json", b'{"name":"left-pad","version":"1.3.0"}'),
            ("usr/lib/os-release", b'ID=debian\nVERSION_ID="12"\n'),
            ("etc/os-release", "../usr/lib/os-release"),
        ]
    )
    top = _layer(
        [
            (f"{sp}/.wh.a-1.0.dist-info", b""),
            ("opt/app/node_modules/.wh..wh..opq", b""),
            ("opt/app/node_modules/right-pad/package.json", b'{"name":"right-pad","version":"2.0.0"}'),
            (f"{sp}/b-1.0.dist-info/METADATA", _meta("b", "1.1")),
        ],
        gz=True,
    )
    fs = apply_layers([base, top], wanted)
    found = catalog(fs)
    os_info, pkgs, warnings = found.os, found.packages, found.warnings
    assert os_info == OSInfo("debian", "12")
    assert {(p.name, p.version) for p in pkgs} == {("b", "1.1"), ("right-pad", "2.0.0")}
    assert not warnings


def test_dpkg_status_d_apk_and_npm_scopes() -> None:
    status = (
        b"Package: libssl3\nStatus: install ok installed\nVersion: 3.0.11-1~deb12u2\n"
        b"Source: openssl (3.0.11-1~deb12u2)\nArchitecture: amd64\n\n"
        b"Package: gone\nStatus: deinstall ok config-files\nVersion: 1.0\n"
    )
    apk = b"P:musl\nV:1.2.4-r2\nA:x86_64\no:musl\nL:MIT\n\nP:busybox-binsh\nV:1.36.1-r5\no:busybox\n\n"
    layer = _layer(
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
    layer = _layer([("var/lib/rpm/rpmdb.sqlite", db.read_bytes()),
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
    layer = _layer([("var/lib/rpm/rpmdb.sqlite", b"not sqlite at all" * 10)])
    found = catalog(apply_layers([layer], wanted))
    pkgs, warnings = found.packages, found.warnings
    assert pkgs == () and "could not be read" in warnings[0]


def test_import_is_all_or_nothing(tmp_path: Path) -> None:
    db = OsvDatabase(tmp_path / "v.sqlite")
    good = db.update(str(FIXTURES))
    assert good.records == 28
    # a truncated zip
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as zf:
        for f in sorted(FIXTURES.glob("*.json")):
            zf.writestr(f.name, f.read_bytes())
    (tmp_path / "cut.zip").write_bytes(data.getvalue()[: len(data.getvalue()) // 2])
    with pytest.raises(OsvDatabaseError, match="not a complete zip"):
        db.update(str(tmp_path / "cut.zip"))
    # one malformed record among good ones
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "A.json").write_text(json.dumps({"id": "A", "modified": "2024-01-01T00:00:00Z"}))
    (bad / "B.json").write_text('{"id": "B", "modified": ')
    with pytest.raises(OsvDatabaseError, match=r"B\.json: not valid JSON"):
        db.update(str(bad))
    (bad / "B.json").write_text(
        json.dumps(
            {
                "id": "B",
                "modified": "x",
                "affected": [
                    {
                        "package": {"ecosystem": "PyPI", "name": "b"},
                        "ranges": [{"type": "ECOSYSTEM", "events": [{"fixd": "1"}]}],
                    }
                ],
            }
        )
    )
    with pytest.raises(OsvDatabaseError, match=r"B.json: affected\[0\].ranges\[0\].events\[0\]"):
        db.update(str(bad))
    after = db.status()
    assert after.version == good.version and after.records == 28
    # a zip export imports, and sources accumulate
    (tmp_path / "ok.zip").write_bytes(data.getvalue())
    assert db.update(str(tmp_path / "ok.zip")).records == 28  # same ids, replaced
    assert len(db.status().sources) == 2


def test_osv_range_evaluation() -> None:
    entry = {"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}, {"fixed": "1.5"},
                                                         {"introduced": "2.0"}, {"last_affected": "2.3"}]},
                        {"type": "GIT", "events": [{"introduced": "abc"}, {"fixed": "def"}]}],
             "versions": ["0.9"]}  # fmt: skip
    assert affected_by(entry, "PyPI", "0.9") == (True, "1.5")
    assert affected_by(entry, "PyPI", "1.2") == (True, "1.5")
    assert affected_by(entry, "PyPI", "1.5")[0] is False
    assert affected_by(entry, "PyPI", "2.3") == (True, None)
    assert affected_by(entry, "PyPI", "2.4")[0] is False
    limited = {"ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"limit": "3.0.0"}]}]}
    assert affected_by(limited, "npm", "2.9.9")[0] and not affected_by(limited, "npm", "3.0.0")[0]


def test_ignore_file_suppresses_until_it_expires(tmp_path: Path) -> None:
    db = OsvDatabase(tmp_path / "v.sqlite")
    db.update(str(FIXTURES))
    inv = Inventory(
        "sha256:x",
        "sha256:x",
        None,
        (Package("idna", "3.6", "pypi", "PyPI", "pkg:pypi/idna@3.6", "/site/idna-3.6.dist-info/METADATA"),),
    )
    findings = list(db.query(inv).findings)
    assert [f.id for f in findings] == ["PYSEC-2024-60"]
    ignore = tmp_path / "ignore.yaml"
    ignore.write_text(
        "vulnerabilities:\n  - id: CVE-2024-3651\n    statement: we never decode untrusted names\n"
        "    expired_at: 2027-01-31\n"
    )
    import datetime as dt

    entries = load_ignore(ignore)
    assert apply_ignore(findings, entries, dt.date(2027, 1, 1))[0].suppressed.startswith("we never decode")
    assert not apply_ignore(findings, entries, dt.date(2027, 2, 1))[0].suppressed
    ignore.write_text("vulnerabilities:\n  - id: CVE-1\n    expired_at: 2027-01-31\n")
    with pytest.raises(IgnoreError, match=r"vulnerabilities\[0\].statement is required"):
        load_ignore(ignore)
    ignore.write_text("vulnerabilities:\n  - id: CVE-1\n    statement: x\n")
    with pytest.raises(IgnoreError, match="expired_at is required"):
        load_ignore(ignore)


def test_cvss_scores_and_record_labels() -> None:
    assert score_v3("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H") == 9.8
    assert score_v3("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N") == 6.1
    assert score_v3("CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N") == 5.5
    with pytest.raises(ValueError):
        score_v3("CVSS:3.1/AV:N/AC:L")
    # as FIRST's v4.0 calculator scores them (the MacroVector's 9.4, refined within it)
    assert score_v4("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N") == 9.3
    assert score_v4("CVSS:4.0/AV:N/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N") == 8.7
    with pytest.raises(ValueError):
        score_v4("CVSS:4.0/AV:N/AC:L")
    assert score_v4("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N") == 0.0
    assert record_severity({"database_specific": {"severity": "MODERATE"}}) == ("medium", None)
    assert (
        record_severity(
            {
                "severity": [
                    {
                        "type": "CVSS_V4",
                        "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
                    }
                ]
            }
        )[0]
        == "critical"
    )
    assert record_severity({}) == ("unknown", None)


def test_sboms_are_valid_cyclonedx_16_and_spdx_23() -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    inv = Inventory("sha256:" + "a" * 64, "sha256:" + "b" * 64, OSInfo("debian", "12", "Debian 12"), (
        Package("libc6", "2.36-9+deb12u4", "deb", "Debian:12", "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64",
                "/var/lib/dpkg/status", "glibc", "2.36-9+deb12u4"),
        Package("requests", "2.19.0", "pypi", "PyPI", "pkg:pypi/requests@2.19.0", "/x/METADATA", licenses=("Apache-2.0",)),
    ), reference="registry.example/app:1")  # fmt: skip
    doc = cyclonedx(inv)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(doc) is None
    parsed = json.loads(doc)
    assert parsed["specVersion"] == "1.6"
    assert {c["purl"] for c in parsed["components"] if "purl" in c} == {p.purl for p in inv.packages}
    s = json.loads(spdx(inv))
    assert s["spdxVersion"] == "SPDX-2.3" and len(s["packages"]) == 4
    assert {r["referenceLocator"] for p in s["packages"] for r in p.get("externalRefs", [])} == {
        p.purl for p in inv.packages
    }
    assert sum(r["relationshipType"] == "CONTAINS" for r in s["relationships"]) == 3
