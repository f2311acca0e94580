"""moorage image scan/sbom and moorage db: formats, exit codes, usage errors (no engine)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from moorage.cli.main import main

OSV = Path(__file__).resolve().parents[2] / "fixtures" / "osv" / "pypi"


def _tar(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A docker-save archive holding idna 3.6 (affected by PYSEC-2024-60), and a database."""
    monkeypatch.setenv("MOORAGE_DATA", str(tmp_path / "data"))
    layer = _tar({
        "etc/os-release": b'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian 12"\n',
        "usr/lib/python3/site-packages/idna-3.6.dist-info/METADATA": b"Name: idna\nVersion: 3.6\n",
    })  # fmt: skip
    manifest = [{"Config": "config.json", "RepoTags": ["app:1"], "Layers": ["l1/layer.tar"]}]
    path = tmp_path / "app.tar"
    path.write_bytes(_tar({
        "manifest.json": json.dumps(manifest).encode(),
        "config.json": b'{"architecture": "amd64", "os": "linux"}',
        "l1/layer.tar": layer,
    }))  # fmt: skip
    assert main(["db", "update", "--from", str(OSV), "--db", str(tmp_path / "v.sqlite")]) == 0
    return path


def _scan(archive: Path, *args: str) -> list[str]:
    return ["image", "scan", str(archive), "--db", str(archive.parent / "v.sqlite"), *args]


def test_scan_formats_and_fail_on(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(_scan(archive)) == 0
    out = capsys.readouterr().out
    assert "PYSEC-2024-60" in out and "idna" in out and "os        Debian 12" in out
    assert main(_scan(archive, "--format", "json")) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [f["id"] for f in doc["findings"]] == ["PYSEC-2024-60"]
    assert main(_scan(archive, "--format", "sarif", "--fail-on", "low")) == 1
    captured = capsys.readouterr()
    sarif = json.loads(captured.out)
    assert sarif["runs"][0]["results"][0]["ruleId"] == "PYSEC-2024-60"
    assert "failing" not in captured.err  # the reason is printed for the table only
    assert main(_scan(archive, "--fail-on", "low")) == 1
    assert "findings at or above low: failing (--fail-on low)" in capsys.readouterr().err
    assert main(_scan(archive, "--format", "cyclonedx")) == 0
    assert json.loads(capsys.readouterr().out)["specVersion"] == "1.6"


def test_suppressed_findings(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ignore = archive.parent / "ignore.yaml"
    ignore.write_text(
        "vulnerabilities:\n  - id: PYSEC-2024-60\n    statement: not used\n    expired_at: 2999-01-01\n"
    )
    capsys.readouterr()
    assert main(_scan(archive, "--ignore-file", str(ignore), "--fail-on", "low")) == 0
    assert "1 suppressed finding(s) not shown (--show-suppressed)" in capsys.readouterr().out
    assert main(_scan(archive, "--ignore-file", str(ignore), "--show-suppressed")) == 0
    assert "suppressed: not used (until 2999-01-01)" in capsys.readouterr().out
    assert main(_scan(archive, "--ignore-file", str(ignore), "--format", "sarif")) == 0
    assert json.loads(capsys.readouterr().out)["runs"][0]["results"] == []


def test_sbom_to_a_file(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = archive.parent / "sbom.json"
    assert main(["image", "sbom", str(archive), "--format", "spdx", "-o", str(out)]) == 0
    assert json.loads(out.read_text())["spdxVersion"] == "SPDX-2.3"
    assert "wrote spdx SBOM of 1 packages" in capsys.readouterr().err


def test_errors_say_what_to_do(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["image", "scan", str(archive), "--db", str(archive.parent / "none.sqlite")]) == 2
    assert "run moorage db update --from PATH|URL" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(_scan(archive, "--format", "xml"))
    assert exc.value.code == 2
    assert "invalid choice: 'xml' (choose from" in capsys.readouterr().err
    assert main(["db", "status", "--db", str(archive.parent / "v.sqlite"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["records"] == 28
