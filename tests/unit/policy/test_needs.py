"""needs(): one answer to "what must be gathered before deciding". Pure."""

from __future__ import annotations

from pathlib import Path

from moorage.policy.loader import builtin_set, load_folder
from moorage.policy.needs import Needs, needs
from moorage.policy.request import ExceptionGrant, Request

ALICE = {"user": "alice", "teams": ("payments",)}


def _policy(tmp_path: Path, spec: str) -> object:
    (tmp_path / "p.yaml").write_text(
        f"apiVersion: moorage.dev/v1\nkind: Policy\nmetadata: {{name: p}}\nspec:\n{spec}"
    )
    return load_folder(tmp_path)


def test_a_plain_read_needs_nothing() -> None:
    got = needs(builtin_set(), Request("container.list", None, "GET", **ALICE))
    assert got == Needs() and not got.any


def test_quotas_packs_and_grants_each_name_their_facts(tmp_path: Path) -> None:
    pset = _policy(tmp_path, "  packs: [baseline]\n  quotas: {containers: 3}\n")
    body = {"Image": "busybox", "HostConfig": {}}
    got = needs(pset, Request("container.create", body, **ALICE))  # type: ignore[arg-type]
    assert got.usage and got.engine == frozenset({"host_networks"}) and got.trust is None
    assert not got.image_ids
    grant = ExceptionGrant("g1", "runtime.privileged", 10.0, team="payments", image="sha256:" + "a" * 64)
    assert needs(pset, Request("container.create", body, **ALICE), (grant,)).image_ids  # type: ignore[arg-type]
    # the team's use counts only for the kinds that add to it
    assert not needs(pset, Request("volume.create", {}, **ALICE)).usage  # type: ignore[arg-type]


def test_image_trust_names_keys_and_whether_to_scan(tmp_path: Path) -> None:
    pset = _policy(tmp_path, "  images:\n    vulnerabilities: {maxSeverity: high}\n")
    got = needs(pset, Request("image.pull", None, query={"fromImage": ["busybox"]}, **ALICE))  # type: ignore[arg-type]
    assert got.trust is not None and got.trust.scan and got.trust.keys == ()
    assert needs(pset, Request("container.list", None, "GET", **ALICE)).trust is None  # type: ignore[arg-type]
