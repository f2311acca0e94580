"""Ignore files: suppressions that say why and expire."""

from __future__ import annotations

from pathlib import Path

import pytest

from moorage.images.catalogers.interface import Inventory, Package
from moorage.images.ignore import IgnoreError, apply_ignore, load_ignore
from moorage.images.vulns.osv import OsvDatabase

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "osv" / "pypi"


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
