"""policy.dryrun: what it keeps, and its errors, without a docker CLI."""

from __future__ import annotations

import pytest

from moorage.policy.dryrun import CHECKED_KINDS, DryRunError, dry_run


def test_a_missing_command_is_a_dry_run_error() -> None:
    with pytest.raises(DryRunError, match="not found on PATH"):
        dry_run(["no-such-docker-binary-here", "run", "busybox"])


def test_a_command_that_makes_no_request_says_so() -> None:
    with pytest.raises(DryRunError, match="made no request policy checks"):
        dry_run(["true"])


def test_the_kinds_kept_are_the_ones_policy_judges() -> None:
    assert {"container.create", "service.create", "image.build", "network.connect"} <= CHECKED_KINDS
    assert "container.list" not in CHECKED_KINDS
