"""Shared test configuration: folder decides the marker; labs are real and owned."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from moorage.lab import Lab, build_busybox, cleanup_stale, load_into


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        if "integration" in parts:
            item.add_marker(pytest.mark.integration)
        elif "e2e" in parts:
            item.add_marker(pytest.mark.e2e)


def needs_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: the lab uses network namespaces and dockerd")


def unique_name(prefix: str = "t") -> str:
    """A lab name no other run uses (pid plus randomness)."""
    return f"{prefix}{os.getpid() % 100000}{secrets.token_hex(2)}"


@contextlib.contextmanager
def busybox_lab(prefix: str) -> Iterator[Lab]:
    """A one-node lab with the offline busybox image loaded, removed afterwards."""
    needs_root()
    lab = Lab(unique_name(prefix))
    lab.up(nodes=1, owner_pid=os.getpid())
    try:
        load_into(build_busybox(), [lab.client(1)])
        yield lab
    finally:
        lab.down()


@pytest.fixture(scope="session", autouse=True)
def _stale_labs() -> None:
    if os.geteuid() == 0:
        cleanup_stale()


@pytest.fixture(scope="session")
def swarm_lab() -> Iterator[Lab]:
    """A 3-node Swarm with a registry, shared by the integration tests."""
    needs_root()
    lab = Lab(unique_name("sw"))
    lab.up(nodes=3, registry=True, owner_pid=os.getpid())
    try:
        load_into(build_busybox(), [lab.client(k) for k in range(1, 4)])
        yield lab
    finally:
        lab.down()
    assert lab.leftovers() == []


@pytest.fixture(scope="session")
def manager_lab() -> Iterator[Lab]:
    """A 3-node Swarm whose nodes are all managers (tests/fleet_harness.py), for the
    tests of several gateways, one per manager."""
    from tests.fleet_harness import managers_up

    needs_root()
    lab = Lab(unique_name("mg"))
    try:
        managers_up(lab)
        yield lab
    finally:
        lab.down()
