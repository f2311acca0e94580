"""CVSS scores (the cvss library) and records' own severity labels."""

from __future__ import annotations

import pytest

from moorage.images.cvss import record_severity, score_v3, score_v4


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
