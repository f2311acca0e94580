"""Swarm updates classified by the security aspect they change, and what counts as a
CA rotation."""

from __future__ import annotations

from typing import Any

import pytest

from moorage.cluster.swarmops import ca_rotates, classify_update

SPEC = {
    "Name": "default",
    "Orchestration": {"TaskHistoryRetentionLimit": 5},
    "CAConfig": {"NodeCertExpiry": 7776000000000000},
    "EncryptionConfig": {"AutoLockManagers": False},
}


@pytest.mark.parametrize(
    ("new", "query", "aspects"),
    [
        (SPEC, {}, set()),
        ({**SPEC, "CAConfig": {"NodeCertExpiry": 7776000000000000, "ForceRotate": 1}}, {}, {"ca"}),
        ({**SPEC, "EncryptionConfig": {"AutoLockManagers": True}}, {}, {"autolock"}),
        (SPEC, {"rotateWorkerToken": ["true"]}, {"tokens"}),
        (SPEC, {"ROTATEMANAGERUNLOCKKEY": ["1"]}, {"unlock-key"}),
        ({**SPEC, "Orchestration": {"TaskHistoryRetentionLimit": 3}}, {}, {"settings"}),
        (
            {k: v for k, v in SPEC.items() if k != "EncryptionConfig"},
            {},
            set(),
        ),  # left out = zero = unchanged
    ],
)
def test_swarm_updates_are_classified_by_what_they_change(new: Any, query: Any, aspects: set[str]) -> None:
    assert classify_update(SPEC, new, query) == aspects


def test_only_a_new_root_counts_as_a_ca_rotation() -> None:
    rotated = {**SPEC, "CAConfig": {"NodeCertExpiry": 7776000000000000, "ForceRotate": 1}}
    expiry = {**SPEC, "CAConfig": {"NodeCertExpiry": 3600000000000}}
    assert ca_rotates(SPEC, rotated) and not ca_rotates(SPEC, expiry) and not ca_rotates(SPEC, SPEC)
    assert ca_rotates(SPEC, {**SPEC, "CAConfig": {"SigningCACert": "-----BEGIN CERTIFICATE-----"}})
