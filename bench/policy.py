"""One policy decision for a realistic container create under the restricted pack,
native rules against the same rules in Rego through regopy, in the same run.

    python bench/policy.py [--quick] [--json]

The body is what docker 28's `docker run` sends for a hardened workload (captured
with `moorage policy check -- docker run ...`'s dry-run endpoint), so every rule
reads its fields and none short-circuits on a violation. Moorage's figure is the
whole `evaluate()`: scope, every pack rule, mutation merge and the decision. The
Rego figure is `set_input` + `query` of `data.docker.authz.allow` with the module
already loaded. Both are checked to agree on an allowed and a denied body first.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import regopy

from moorage.engine_api.canonical import read_body
from moorage.policy.decision import Facts, Request, evaluate
from moorage.policy.loader import builtin_set

BODY: dict[str, Any] = {
    "Hostname": "", "Domainname": "", "User": "1000:1000", "AttachStdin": False, "AttachStdout": True,
    "AttachStderr": True, "ExposedPorts": {"8080/tcp": {}}, "Tty": False, "OpenStdin": False,
    "StdinOnce": False, "Env": ["APP_MODE=production", "LOG_LEVEL=info", "PORT=8080"],
    "Cmd": ["/app/server", "--listen", ":8080"], "Image": "127.0.0.1:5000/payments/api:3.4.1",
    "Volumes": None, "WorkingDir": "/app", "Entrypoint": None, "OnBuild": None,
    "Labels": {"org.opencontainers.image.version": "3.4.1", "com.example.tier": "backend"},
    "HostConfig": {
        "Binds": ["api-data:/data"], "ContainerIDFile": "", "LogConfig": {"Type": "", "Config": {}},
        "NetworkMode": "payments-net", "PortBindings": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]},
        "RestartPolicy": {"Name": "unless-stopped", "MaximumRetryCount": 0}, "AutoRemove": False,
        "VolumeDriver": "", "VolumesFrom": None, "ConsoleSize": [0, 0], "CapAdd": ["NET_BIND_SERVICE"],
        "CapDrop": ["ALL"], "CgroupnsMode": "", "Dns": [], "DnsOptions": [], "DnsSearch": [],
        "ExtraHosts": None, "GroupAdd": None, "IpcMode": "", "Cgroup": "", "Links": None,
        "OomScoreAdj": 0, "PidMode": "", "Privileged": False, "PublishAllPorts": False,
        "ReadonlyRootfs": True, "SecurityOpt": ["no-new-privileges"], "Tmpfs": {"/tmp": "rw,size=64m"},
        "UTSMode": "", "UsernsMode": "", "ShmSize": 0, "Isolation": "", "CpuShares": 0,
        "Memory": 268435456, "NanoCpus": 500000000, "CgroupParent": "", "BlkioWeight": 0,
        "BlkioWeightDevice": [], "BlkioDeviceReadBps": [], "BlkioDeviceWriteBps": [],
        "BlkioDeviceReadIOps": [], "BlkioDeviceWriteIOps": [], "CpuPeriod": 0, "CpuQuota": 0,
        "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "",
        "Devices": [], "DeviceCgroupRules": None, "DeviceRequests": None, "MemoryReservation": 0,
        "MemorySwap": 0, "MemorySwappiness": None, "OomKillDisable": False, "PidsLimit": 256,
        "Ulimits": [], "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
        "MaskedPaths": None, "ReadonlyPaths": None, "Sysctls": {"net.ipv4.ip_unprivileged_port_start": "0"},
        "Mounts": [{"Type": "volume", "Source": "api-cache", "Target": "/cache"}],
    },
    "NetworkingConfig": {"EndpointsConfig": {"payments-net": {}}},
}  # fmt: skip
DENIED = json.loads(json.dumps(BODY))
DENIED["HostConfig"]["Privileged"] = True
DENIED["HostConfig"]["CapAdd"] = ["cap_sys_admin"]
# Policy judges what the gateway decoded (the engine's reading, canonical names):
# decode both bodies the way the gateway does before timing the decision.
BODY = read_body("container.create", json.dumps(BODY).encode()).value
DENIED = read_body("container.create", json.dumps(DENIED).encode()).value


def timed(fn: Any, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t) / 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    n_native, n_rego = (2000, 200) if args.quick else (20000, 2000)

    pset = builtin_set("restricted", None)
    facts = Facts(now=time.time())
    ok_req = Request("container.create", BODY, user="alice", teams=("payments",))
    bad_req = Request("container.create", DENIED, user="alice", teams=("payments",))
    rego = regopy.Interpreter()
    rego.add_module("restricted", (Path(__file__).parent / "rego" / "restricted.rego").read_text())

    def rego_allow(body: dict[str, Any]) -> bool:
        rego.set_input({"Method": "POST", "Path": "/v1.47/containers/create", "Body": body, "User": "alice"})
        return str(rego.query("data.docker.authz.allow")).strip() == '{"expressions":[true]}'

    # the two agree before either is timed
    assert evaluate(pset, ok_req, facts).allowed and rego_allow(BODY)
    assert not evaluate(pset, bad_req, facts).allowed and not rego_allow(DENIED)
    n_rules = 12  # restricted's container rules, each over every field that expresses it

    timed(lambda: evaluate(pset, ok_req, facts), 500)  # warm up
    native = timed(lambda: evaluate(pset, ok_req, facts), n_native)
    native_bad = timed(lambda: evaluate(pset, bad_req, facts), n_native // 4)
    timed(lambda: rego_allow(BODY), 50)
    rego_t = timed(lambda: rego_allow(BODY), n_rego)
    rego_bad = timed(lambda: rego_allow(DENIED), n_rego // 4)

    def stats(xs: list[float]) -> dict[str, float]:
        xs = sorted(xs)
        return {"median_us": round(statistics.median(xs), 2), "p99_us": round(xs[int(len(xs) * 0.99) - 1], 2)}

    result = {
        "body_bytes": len(json.dumps(BODY)),
        "rules": n_rules,
        "moorage_allowed": stats(native),
        "moorage_denied": stats(native_bad),
        "regopy_allowed": stats(rego_t),
        "regopy_denied": stats(rego_bad),
    }
    result["speedup_allowed"] = round(
        result["regopy_allowed"]["median_us"] / result["moorage_allowed"]["median_us"], 1
    )
    result["speedup_denied"] = round(
        result["regopy_denied"]["median_us"] / result["moorage_denied"]["median_us"], 1
    )
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"restricted pack, container create body of {result['body_bytes']} bytes\n")
    print(f"{'':24}{'median':>12}{'p99':>12}")
    for key in ("moorage_allowed", "moorage_denied", "regopy_allowed", "regopy_denied"):
        s = result[key]
        print(f"{key:24}{s['median_us']:>10.1f}us{s['p99_us']:>10.1f}us")
    print(
        f"\nmoorage vs regopy: {result['speedup_allowed']}x faster (allowed), {result['speedup_denied']}x (denied)"
    )
    print("budget: median <= 50 us, >= 20x faster than regopy")


if __name__ == "__main__":
    main()
