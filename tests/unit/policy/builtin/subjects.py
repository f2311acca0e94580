"""Requests that reach most built-in rules, under either pack, for the tests of the
rule objects."""

from __future__ import annotations

from moorage.policy.loader import builtin_set
from moorage.policy.request import Facts, Request
from moorage.policy.rule import Subject

HOSTILE: dict[str, object] = {
    "Image": "busybox",
    "User": "0",
    "HostConfig": {
        "Privileged": True,
        "CapAdd": ["SYS_ADMIN", "NET_RAW"],
        "PidMode": "host",
        "NetworkMode": "host",
        "Binds": ["/var/run/docker.sock:/s", "/etc:/e", "/run:/r", "/srv:/x"],
        "Devices": [{"PathOnHost": "/dev/sda", "PathInContainer": "/dev/sda"}],
        "SecurityOpt": ["seccomp=unconfined", "apparmor=mine", "label=type:spc_t", "bogus=1"],
        "Runtime": "kata",
        "LogConfig": {"Type": "syslog"},
        "Sysctls": {"kernel.shm_rmid_forced": "1", "net.ipv4.ip_forward": "1"},
        "OomScoreAdj": -500,
    },
}

SUBJECTS = [
    ("container.create", HOSTILE, {}),
    ("container.create", {"Image": "busybox"}, {}),
    ("image.build", None, {"networkmode": ["host"], "cgroupparent": ["x"], "isolation": ["hyperv"],
                           "remote": ["http://x"], "securityopt": ["a", "b"]}),
    ("image.pull", None, {"fromSrc": ["http://x"]}),
    ("container.update", {"Privileged": True, "Memory": 1}, {}),
    ("swarm.init", {"Spec": {"CAConfig": {"SigningCAKey": "k", "ExternalCAs": [{}]}}}, {}),
    ("swarm.join", {"RemoteAddrs": ["x"]}, {}),
    ("plugin.create", None, {}),
    ("network.create", {"Driver": "macvlan", "Options": {"x": "1"}, "IPAM": {"Driver": "y"}, "Ingress": True}, {}),
    ("system.shutdown", None, {}),
]  # fmt: skip


def subjects(pack: str) -> list[Subject]:
    doc = builtin_set(pack, None).documents[0]
    return [
        Subject.of(doc, Request(kind, body, user="alice", query=query), body, Facts(), {}, False)
        for kind, body, query in SUBJECTS
    ]
