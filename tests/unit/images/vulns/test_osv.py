"""The OSV database: all-or-nothing imports, and OSV range evaluation."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from moorage.images.vulns.osv import OsvDatabase
from moorage.images.vulns.osv_match import affected_by
from moorage.images.vulns.osv_records import OsvDatabaseError

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "osv" / "pypi"


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
