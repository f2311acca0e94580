from __future__ import annotations

import pytest

from moorage.cli import _output
from moorage.cli.main import main


def test_table_aligns_columns() -> None:
    out = _output.table(["A", "LONG"], [["xxxx", "1"], ["y", "22"]])
    assert out.splitlines() == ["A     LONG", "xxxx  1", "y     22"]


def test_bad_lab_name_is_a_clean_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lab", "status", "--name", "Bad Name"]) == 1
    err = capsys.readouterr().err
    assert "invalid lab name" in err and "Traceback" not in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["lab", "frobnicate"])
    assert exc.value.code == 2
