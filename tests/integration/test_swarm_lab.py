"""A real 3-node Swarm from the lab: placement, failure, partition, registry."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from moorage.lab import Lab, build_debian, load_into
from moorage.lab.images import BUSYBOX_REF


def wait_for(what: str, check: Callable[[], Any], timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def running_tasks(lab: Lab, service: str) -> list[dict[str, Any]]:
    tasks = lab.client(1).call("GET", f'/tasks?filters={{"service":["{service}"]}}')
    return [t for t in tasks if t["Status"]["State"] == "running" and t["DesiredState"] == "running"]


def node_ids(lab: Lab) -> dict[str, str]:
    """swarm node id -> lab hostname (NAME-nodeK)."""
    return {n["ID"]: n["Description"]["Hostname"] for n in lab.client(1).call("GET", "/nodes")}


def create_service(lab: Lab, name: str, image: str, replicas: int) -> str:
    spec = {
        "Name": name,
        "TaskTemplate": {
            "ContainerSpec": {"Image": image, "Command": ["sleep", "3600"], "StopGracePeriod": 0},
            "RestartPolicy": {"Condition": "any", "Delay": 0},
        },
        "Mode": {"Replicated": {"Replicas": replicas}},
    }
    return str(lab.client(1).call("POST", "/services/create", spec)["ID"])


def test_the_swarm_has_three_ready_nodes_with_distinct_identities(swarm_lab: Lab) -> None:
    nodes = swarm_lab.client(1).call("GET", "/nodes")
    assert len(nodes) == 3
    assert {n["Status"]["State"] for n in nodes} == {"ready"}
    assert sorted(n["Description"]["Hostname"] for n in nodes) == [
        f"{swarm_lab.name}-node{k}" for k in (1, 2, 3)
    ]
    managers = [n for n in nodes if n.get("ManagerStatus", {}).get("Leader")]
    assert [m["Description"]["Hostname"] for m in managers] == [f"{swarm_lab.name}-node1"]
    assert sorted(n["Status"]["Addr"] for n in nodes) == ["10.213.0.1", "10.213.0.2", "10.213.0.3"]


def test_replicas_spread_and_a_stopped_worker_is_rescheduled(swarm_lab: Lab) -> None:
    create_service(swarm_lab, "spread", BUSYBOX_REF, 3)
    try:
        tasks = wait_for("3 running replicas", lambda: len(running_tasks(swarm_lab, "spread")) == 3)
        tasks = running_tasks(swarm_lab, "spread")
        hosts = node_ids(swarm_lab)
        placed = sorted(hosts[t["NodeID"]] for t in tasks)
        assert placed == [f"{swarm_lab.name}-node{k}" for k in (1, 2, 3)], tasks

        swarm_lab.stop_node(3)
        assert not swarm_lab.node_running(3)
        lost = f"{swarm_lab.name}-node3"

        def rescheduled() -> bool:
            live = running_tasks(swarm_lab, "spread")
            return len(live) == 3 and lost not in {hosts.get(t["NodeID"]) for t in live}

        wait_for("the stopped worker's task to be rescheduled", rescheduled)
        down = [n for n in swarm_lab.client(1).call("GET", "/nodes") if hosts[n["ID"]] == lost]
        assert down[0]["Status"]["State"] == "down"
    finally:
        swarm_lab.start_node(3)
        swarm_lab.client(1).call("DELETE", "/services/spread")
    swarm_lab.wait_nodes_ready(3, timeout=90)


def test_a_cut_node_goes_down_and_comes_back_when_healed(swarm_lab: Lab) -> None:
    hosts = node_ids(swarm_lab)
    target = f"{swarm_lab.name}-node2"

    def state() -> str:
        nodes = swarm_lab.client(1).call("GET", "/nodes")
        return str(next(n["Status"]["State"] for n in nodes if hosts[n["ID"]] == target))

    swarm_lab.cut_node(2)
    try:
        assert not swarm_lab.node_connected(2)
        assert swarm_lab.node_running(2)  # partitioned, not stopped
        wait_for("the manager to see node 2 down", lambda: state() == "down")
    finally:
        swarm_lab.heal_node(2)
    wait_for("node 2 to be ready again", lambda: state() == "ready")


def test_debian_image_via_the_lab_registry_runs_as_a_service(swarm_lab: Lab) -> None:
    """The acceptance path a new user takes: build debian, push, service create."""
    archive = build_debian()
    manager = swarm_lab.client(1)
    load_into(archive, [manager])  # only the manager has it; workers must pull
    dpkg = manager.call("POST", "/containers/create", {"Image": archive.ref, "Cmd": ["true"]})
    manager.call("DELETE", f"/containers/{dpkg['Id']}")
    registry = swarm_lab.registry
    assert registry is not None
    repo = f"{registry}/lab/debian"
    manager.call("POST", f"/images/{archive.ref}/tag?repo={repo}&tag=bookworm")
    # the engine wants an auth header even for a registry that needs none ("{}")
    push = manager.call(
        "POST",
        f"/images/{repo}/push?tag=bookworm",
        timeout=120,
        headers={"X-Registry-Auth": "e30="},
    )
    assert "errorDetail" not in str(push), push
    for k in (2, 3):
        with pytest.raises(Exception, match="404"):
            swarm_lab.client(k).call("GET", f"/images/{archive.image_id}/json")

    create_service(swarm_lab, "deb", f"{repo}:bookworm", 3)
    try:
        wait_for("3 debian replicas", lambda: len(running_tasks(swarm_lab, "deb")) == 3, 180)
        hosts = node_ids(swarm_lab)
        assert {hosts[t["NodeID"]] for t in running_tasks(swarm_lab, "deb")} == {
            f"{swarm_lab.name}-node{k}" for k in (1, 2, 3)
        }
        # the workers pulled it from the registry through the lab's forwarder
        for k in (2, 3):
            assert swarm_lab.client(k).call("GET", f"/images/{repo}:bookworm/json")["Id"]
    finally:
        manager.call("DELETE", "/services/deb")
