"""The image owner store: who built which image, across restarts."""

from __future__ import annotations

from pathlib import Path

from moorage.admission.owners import ImageOwners

ID_A = "sha256:" + "a" * 64
ID_B = "sha256:" + "b" * 64


def test_the_store_keeps_every_team_that_built_an_id_and_survives_a_restart(tmp_path: Path) -> None:
    store = ImageOwners(tmp_path / "owners.json")
    store.record(ID_A, "payments")
    store.record(ID_A, "search")  # the same build by another team: the builder's cache
    store.record(ID_A, "payments")
    store.record("not-an-id", "payments")
    assert store.teams(ID_A) == ("payments", "search")
    assert ImageOwners(tmp_path / "owners.json").teams(ID_A) == ("payments", "search")
    assert ImageOwners(tmp_path / "owners.json").teams(ID_B) == ()
    (tmp_path / "bad.json").write_text("{not json")
    assert ImageOwners(tmp_path / "bad.json").teams(ID_A) == ()
    assert ImageOwners().teams(ID_A) == ()
