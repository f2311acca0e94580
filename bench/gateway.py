"""Gateway pass-through cost: direct dockerd vs Moorage vs HAProxy, in one run.

    python bench/gateway.py [--quick] [--workers N] [--soak MINUTES] [--json FILE]

Starts its own lab engine, `moorage up` in front of it, HAProxy configured as
a path-filtering Docker socket proxy (the common "socket proxy" pattern) and a
bare byte relay in Python (bench/relay.py: the floor for a Python proxy), then
measures, for each target:
  - /_ping, GET /containers/json and a create+start+wait+remove cycle:
    median and p99 latency with 1 client;
  - /_ping and GET /containers/json throughput with 32 concurrent clients
    (keep-alive connections spread over 4 client processes);
  - CPU per request in those 32-client phases: utime + stime from /proc of the
    proxy's whole process tree (for Moorage the `moorage up` supervisor and all its
    workers), read as the phase's window opens and closes, divided by the answers
    counted in that window; dockerd's own CPU per request beside it;
and, against dockerd and through Moorage, alternately:
  - `docker run --rm busybox true` wall time (median of N);
  - `docker-compose -p NAME up -d` of 10 busybox services (median of N; each
    followed by an untimed `down`).
With --workers N (if this `moorage up` has that option) Moorage runs N workers and
the 32-client /_ping throughput and CPU are measured for 1 and N workers back to
back. With --soak MINUTES, 32 clients of mixed /_ping and list run against Moorage
for that long, its memory (VmRSS of the process tree) sampled every 10 s.
Prints a table and the ratios the budgets in DESIGN.md are written against.
Only unix sockets on this machine are used.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import (
    IMAGE,
    LIST,
    PING,
    Client,
    Moorage,
    engine_pid,
    lab_engine,
    load,
    rss_mib,
    start_moorage,
    supports_workers,
    wait_for,
)

__all__ = ["CREATE_BODY", "HAPROXY_CFG", "IMAGE", "Client", "docker_run", "latency", "throughput"]


def latency(path: str, op: str, n: int) -> list[float]:
    c = Client(path)
    out = []
    try:
        for _ in range(n):
            t = time.perf_counter()
            if op == "cycle":
                status, body = c.request("POST", "/v1.41/containers/create",
                                         json.dumps({"Image": IMAGE, "Cmd": ["true"]}).encode())  # fmt: skip
                assert status == 201, body
                cid = json.loads(body)["Id"]
                assert c.request("POST", f"/v1.41/containers/{cid}/start")[0] == 204
                assert c.request("POST", f"/v1.41/containers/{cid}/wait")[0] == 200
                assert c.request("DELETE", f"/v1.41/containers/{cid}")[0] == 204
            elif op == "create":
                # a realistic `docker run` create (what docker 28 sends, hardened), the
                # create alone timed: the engine's work plus Moorage's decode and admission
                status, body = c.request("POST", "/v1.41/containers/create", CREATE_BODY)
                out.append((time.perf_counter() - t) * 1000)
                assert status == 201, body
                assert c.request("DELETE", f"/v1.41/containers/{json.loads(body)['Id']}")[0] == 204
                continue
            else:
                status, _ = c.request("GET", op)
                assert status == 200, status
            out.append((time.perf_counter() - t) * 1000)
    finally:
        c.close()
    return out


CREATE_BODY = json.dumps({
    "User": "1000:1000", "AttachStdout": True, "AttachStderr": True, "Env": ["MODE=bench", "PORT=8080"],
    "Cmd": ["true"], "Image": IMAGE, "Labels": {"com.example.tier": "backend"}, "WorkingDir": "/",
    "HostConfig": {
        "Binds": None, "LogConfig": {"Type": "", "Config": {}}, "NetworkMode": "default",
        "PortBindings": {}, "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}, "AutoRemove": False,
        "VolumeDriver": "", "ConsoleSize": [0, 0], "CapAdd": ["NET_BIND_SERVICE"], "CapDrop": ["ALL"],
        "CgroupnsMode": "", "Dns": [], "DnsOptions": [], "DnsSearch": [], "IpcMode": "", "Cgroup": "",
        "OomScoreAdj": 0, "PidMode": "", "Privileged": False, "PublishAllPorts": False, "ReadonlyRootfs": True,
        "SecurityOpt": ["no-new-privileges"], "Tmpfs": {"/tmp": "rw,size=64m"}, "UTSMode": "", "UsernsMode": "",
        "ShmSize": 0, "Isolation": "", "CpuShares": 0, "Memory": 268435456, "NanoCpus": 500000000,
        "CgroupParent": "", "BlkioWeight": 0, "Devices": [], "PidsLimit": 256, "Ulimits": [],
        "MaskedPaths": None, "ReadonlyPaths": None,
    },
    "NetworkingConfig": {"EndpointsConfig": {}},
}).encode()  # fmt: skip


def throughput(path: str, op: str, clients: int = 32, procs: int = 4, seconds: float = 3.0) -> float:
    """Answers per second to ``op`` from ``clients`` keep-alive connections."""
    return load(path, [op], clients, procs, seconds).rps


def docker_run(host: str, n: int) -> list[float]:
    env = {**os.environ, "DOCKER_HOST": f"unix://{host}", "HOME": tempfile.gettempdir()}
    out = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(["docker", "run", "--rm", IMAGE, "true"], check=True, env=env, capture_output=True)
        out.append((time.perf_counter() - t) * 1000)
    return out


# 10 services, each as hardened as the restricted pack asks (Moorage enforces baseline
# and records restricted): non-root, read-only root, no capabilities, no new
# privileges, memory, CPU and pids limits. `down -t 0`: sleep as PID 1 ignores SIGTERM.
COMPOSE = "version: '2.4'\nservices:\n" + "".join(
    f"  s{i}:\n    image: {IMAGE}\n    command: [sleep, '3600']\n    user: '1000:1000'\n    read_only: true\n"
    f"    cap_drop: [ALL]\n    security_opt: ['no-new-privileges:true']\n    mem_limit: 64m\n    cpus: 0.25\n"
    f"    pids_limit: 64\n"
    for i in range(10)
)


def compose_up(host: str, project: str, folder: Path) -> float:
    """Milliseconds of one `docker-compose up -d` of COMPOSE; then `down` (not timed)."""
    folder.mkdir(exist_ok=True)
    (folder / "docker-compose.yml").write_text(COMPOSE)
    env = {**os.environ, "DOCKER_HOST": f"unix://{host}", "HOME": tempfile.gettempdir()}
    cmd = ["docker-compose", "-p", project, "-f", str(folder / "docker-compose.yml")]
    try:
        t = time.perf_counter()
        up = subprocess.run([*cmd, "up", "-d"], env=env, capture_output=True)
        took = (time.perf_counter() - t) * 1000
        if up.returncode:
            raise RuntimeError(f"compose up through {host}: {up.stderr.decode(errors='replace')}")
        return took
    finally:
        subprocess.run([*cmd, "down", "-t", "0"], env=env, capture_output=True)


HAPROXY_CFG = """
global
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 1h
    timeout server 1h
    option http-keep-alive
frontend docker
    bind unix@{front} mode 666
    acl allowed path_reg ^(/v[0-9.]+)?/(_ping|version|info|events|containers|images|networks|volumes|exec)
    http-request deny unless allowed
    default_backend engine
backend engine
    server dockerd unix@{engine}
"""


def p(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def soak(gw: Moorage, seconds: float) -> dict[str, float]:
    """32 keep-alive clients, 3 /_ping to 1 list, against ``gw`` for ``seconds``; VmRSS
    of its process tree every 10 s (more often in a run shorter than 100 s)."""
    samples: list[tuple[float, float]] = []
    every = 10.0 if seconds >= 100 else max(0.5, seconds / 10)

    def sample(t: float) -> None:
        samples.append((t, rss_mib(gw.pid)))
        print(f"  soak {t:7.1f} s  RSS {samples[-1][1]:7.1f} MiB", file=sys.stderr)

    ld = load(gw.sock, [PING, PING, PING, LIST], clients=32, seconds=seconds, watch={"moorage": gw.pid},
              sample=sample, every=every)  # fmt: skip
    half = [(t / 60, m) for t, m in samples if t >= samples[-1][0] / 2]
    slope = float("nan")
    if len(half) > 1:
        mx, my = statistics.fmean(t for t, _ in half), statistics.fmean(m for _, m in half)
        den = sum((t - mx) ** 2 for t, _ in half)
        slope = sum((t - mx) * (m - my) for t, m in half) / den if den else float("nan")
    return {"seconds": seconds, "workers": gw.workers, "requests": ld.requests, "rps": ld.rps,
            "socket_errors": ld.errors, "not_200": ld.bad, "cpu_us": ld.cpu_us("moorage"),
            "rss_start_mib": samples[0][1], "rss_peak_mib": max(m for _, m in samples),
            "rss_end_mib": samples[-1][1], "rss_slope_mib_per_min": slope, "samples": len(samples)}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    ap.add_argument("--workers", type=int, metavar="N",
                    help="moorage up --workers N (if it has the option); also measure 1 and N workers")  # fmt: skip
    ap.add_argument("--soak", type=float, default=0.0, metavar="MINUTES",
                    help="soak Moorage for MINUTES (default 0: skip; the documented run uses 10)")  # fmt: skip
    ap.add_argument(
        "--soak-seconds", type=float, metavar="S", help="soak length in seconds (tests of the bench)"
    )
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    n_fast, n_cycle, n_run, n_compose, secs = (300, 10, 3, 3, 1.0) if args.quick else (3000, 60, 15, 5, 4.0)
    soak_seconds = args.soak_seconds if args.soak_seconds is not None else args.soak * 60
    workers = args.workers
    if workers is not None and not supports_workers():
        print("moorage up has no --workers option here: running it with its defaults", file=sys.stderr)
        workers = None
    if not shutil.which("docker-compose"):
        print("no docker-compose: the compose workload is skipped", file=sys.stderr)

    results: dict[str, dict[str, float]] = {}
    scaling: dict[int, dict[str, float]] = {}
    soaked: dict[str, float] = {}
    with lab_engine("bench") as (lab, engine, work):
        procs: list[subprocess.Popen[bytes]] = []
        gw: Moorage | None = None
        try:
            gw = start_moorage(engine, work, "moorage", workers)
            n_workers = gw.workers
            targets = {"direct": engine, "moorage": gw.sock}
            roots = {"moorage": gw.pid}
            if shutil.which("haproxy"):
                hap_sock = work / "haproxy.sock"
                (work / "haproxy.cfg").write_text(HAPROXY_CFG.format(front=hap_sock, engine=engine))
                procs.append(subprocess.Popen(["haproxy", "-f", str(work / "haproxy.cfg")],
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # fmt: skip
                targets["haproxy"], roots["haproxy"] = str(hap_sock), procs[-1].pid
                wait_for(str(hap_sock), procs[-1])
            # the floor for a proxy in Python: a bare byte relay that parses and checks nothing
            relay_sock = work / "relay.sock"
            procs.append(subprocess.Popen([sys.executable, str(Path(__file__).with_name("relay.py")), engine,
                                           str(relay_sock)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # fmt: skip
            targets["relay"], roots["relay"] = str(relay_sock), procs[-1].pid
            wait_for(str(relay_sock), procs[-1])
            dockerd = engine_pid(lab)

            for name, path in targets.items():
                r: dict[str, float] = {}
                latency(path, "/_ping", 200)  # warm up
                for label, op, n in (("ping", PING, n_fast), ("list", LIST, n_fast),
                                     ("create", "create", n_cycle * 5), ("cycle", "cycle", n_cycle)):  # fmt: skip
                    xs = latency(path, op, n)
                    r[f"{label}_median_ms"] = statistics.median(xs)
                    r[f"{label}_p99_ms"] = p(xs, 0.99)
                watch = {"proxy": roots[name]} if name in roots else {}
                if dockerd:
                    watch["engine"] = dockerd
                for label, op in (("ping", PING), ("list", LIST)):
                    ld = load(path, [op], seconds=secs, watch=watch)
                    r[f"{label}_rps_32"] = ld.rps
                    if "proxy" in watch:
                        r[f"{label}_cpu_us"] = ld.cpu_us("proxy")
                    if "engine" in watch:
                        r[f"{label}_engine_cpu_us"] = ld.cpu_us("engine")
                results[name] = r
                print(f"measured {name}", file=sys.stderr)

            if workers is not None:  # the scaling model: 1 and N workers back to back
                for w in sorted({1, gw.workers}):
                    gm = gw if w == gw.workers else start_moorage(engine, work, f"moorage-{w}w", w)
                    try:
                        latency(gm.sock, "/_ping", 200)  # warm up
                        ld = load(gm.sock, [PING], seconds=secs, watch={"moorage": gm.pid})
                    finally:
                        if gm is not gw:
                            gm.stop()
                    scaling[w] = {"ping_rps_32": ld.rps, "ping_cpu_us": ld.cpu_us("moorage")}
                print("measured workers", file=sys.stderr)

            # the engine-bound workloads, direct and through Moorage alternately (ABBA),
            # so a drift of the engine over the run falls on both
            pair = ["direct", "moorage"]
            runs: dict[str, list[float]] = {k: [] for k in pair}
            for i in range(n_run):
                for name in pair if i % 2 == 0 else pair[::-1]:
                    runs[name] += docker_run(targets[name], 1)
            for name in pair:
                results[name]["docker_run_ms"] = statistics.median(runs[name])
            if shutil.which("docker-compose"):
                ups: dict[str, list[float]] = {k: [] for k in pair}
                for i in range(n_compose):
                    for name in pair if i % 2 == 0 else pair[::-1]:
                        project = f"mb{os.getpid() % 10000}{name[0]}"
                        ups[name].append(compose_up(targets[name], project, work / "compose"))
                for name in pair:
                    results[name]["compose_up_ms"] = statistics.median(ups[name])
            print("measured docker run and compose", file=sys.stderr)

            if soak_seconds > 0:
                soaked = soak(gw, soak_seconds)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(10)
            if gw is not None:
                gw.stop()

    names = list(results)
    keys = list(dict.fromkeys(k for n in ("moorage", *names) for k in results[n]))  # moorage has every row
    print(f"moorage up: {n_workers} worker{'s' * (n_workers != 1)}"
          f" ({'--workers ' + str(workers) if workers is not None else 'its default'})\n")  # fmt: skip
    print(f"{'metric':<20}" + "".join(f"{n:>12}" for n in names))
    for k in keys:
        print(f"{k:<20}" + "".join(f"{results[n].get(k, float('nan')):>12.3f}" for n in names))
    d, m = results["direct"], results["moorage"]
    print("\nbudgets (DESIGN.md):")
    print(
        f"  added median latency, /_ping            {m['ping_median_ms'] - d['ping_median_ms']:.3f} ms  (<= 0.15)"
    )
    print(
        f"  added median latency, /containers/json  {m['list_median_ms'] - d['list_median_ms']:.3f} ms  (<= 0.20)"
    )
    print(f"  throughput at 32 clients, /_ping        {m['ping_rps_32'] / d['ping_rps_32']:.2f}x direct  "
          "(the budget is against HAProxy, below)")  # fmt: skip
    print(f"  throughput at 32 clients, list          {m['list_rps_32'] / d['list_rps_32']:.2f}x direct  "
          "(the budget is against HAProxy, below)")  # fmt: skip
    print(
        f"  docker run --rm true                    {m['docker_run_ms'] / d['docker_run_ms']:.3f}x direct  (<= 1.02)"
    )
    if "compose_up_ms" in m:
        print(
            f"  compose up -d, 10 services              {m['compose_up_ms'] / d['compose_up_ms']:.3f}x direct  (<= 1.05)"
        )
    print(
        f"  admission of a create, added median     {m['create_median_ms'] - d['create_median_ms']:.3f} ms  (<= 1)"
    )
    if "haproxy" in results:
        h = results["haproxy"]
        print(
            f"  vs haproxy, added /_ping latency        moorage {m['ping_median_ms'] - d['ping_median_ms']:.3f} ms,"
            f" haproxy {h['ping_median_ms'] - d['ping_median_ms']:.3f} ms"
        )
        print(
            f"  vs haproxy, /_ping throughput           moorage {m['ping_rps_32']:.0f}/s, haproxy {h['ping_rps_32']:.0f}/s"
            f" = {m['ping_rps_32'] / h['ping_rps_32']:.2f}x  (>= 0.8)"
        )
        print(
            f"  vs haproxy, list throughput             moorage {m['list_rps_32']:.0f}/s, haproxy {h['list_rps_32']:.0f}/s"
            f" = {m['list_rps_32'] / h['list_rps_32']:.2f}x  (>= 1.0)"
        )
        if m.get("ping_cpu_us") and h.get("ping_cpu_us"):
            print(f"  vs haproxy, CPU per proxied /_ping      moorage {m['ping_cpu_us']:.1f} us, haproxy "
                  f"{h['ping_cpu_us']:.1f} us = {m['ping_cpu_us'] / h['ping_cpu_us']:.2f}x  (<= 2)")  # fmt: skip
    for name in ("haproxy", "relay"):
        if name in results:
            x = results[name]
            print(
                f"  {name:<8} against the same budgets: +{x['ping_median_ms'] - d['ping_median_ms']:.3f} ms /_ping,"
                f" +{x['list_median_ms'] - d['list_median_ms']:.3f} ms list, {x['ping_rps_32'] / d['ping_rps_32']:.2f}x"
                f" /_ping and {x['list_rps_32'] / d['list_rps_32']:.2f}x list at 32 clients"
            )
    proxies = [n for n in ("moorage", "haproxy", "relay") if n in results]
    print("\nCPU per proxied request, 32 clients (us; the proxy's process tree, utime+stime):")
    print(f"  {'request':<18}" + "".join(f"{n:>10}" for n in proxies)
          + (f"{'moorage/haproxy':>17}" if "haproxy" in results else ""))  # fmt: skip
    for label, what in (("ping", "/_ping"), ("list", "/containers/json")):
        ratio = (
            f"{m[f'{label}_cpu_us'] / results['haproxy'][f'{label}_cpu_us']:>16.2f}x"
            if "haproxy" in results
            else ""
        )
        print(f"  {what:<18}" + "".join(f"{results[n][f'{label}_cpu_us']:>10.1f}" for n in proxies) + ratio)
    if "ping_engine_cpu_us" in d:
        print("  dockerd's own, per request:  " + ", ".join(
            f"{what} {d[f'{label}_engine_cpu_us']:.1f} direct, {m[f'{label}_engine_cpu_us']:.1f} behind moorage"
            for label, what in (("ping", "/_ping"), ("list", "list"))))  # fmt: skip
    if scaling:
        print("\nworkers, 32 clients on /_ping (the same run, back to back):")
        print(
            f"  {'workers':<10}{'req/s':>10}{'cpu us/req':>12}"
            + ("   vs haproxy" if "haproxy" in results else "")
        )
        for w, s in scaling.items():
            vs = (
                f"{s['ping_rps_32'] / results['haproxy']['ping_rps_32']:>12.2f}x"
                if "haproxy" in results
                else ""
            )
            print(f"  {w:<10}{s['ping_rps_32']:>10.0f}{s['ping_cpu_us']:>12.1f}" + vs)
    if soaked:
        s = soaked
        length = f"{s['seconds'] / 60:g} min" if s["seconds"] >= 60 else f"{s['seconds']:g} s"
        print(f"\nsoak: {length}, 32 clients (3 /_ping : 1 list), moorage {s['workers']:.0f}"
              f" worker{'s' * (s['workers'] != 1)}, RSS of the process tree in {s['samples']:.0f} samples:")  # fmt: skip
        print(f"  requests            {s['requests']:.0f}  ({s['rps']:.0f}/s, {s['cpu_us']:.1f} us CPU each)")
        print(
            f"  errors              {s['socket_errors']:.0f} socket errors, {s['not_200']:.0f} answers not 200"
        )
        print(f"  RSS start           {s['rss_start_mib']:.1f} MiB")
        print(f"  RSS peak            {s['rss_peak_mib']:.1f} MiB")
        print(f"  RSS end             {s['rss_end_mib']:.1f} MiB")
        print(f"  RSS slope           {s['rss_slope_mib_per_min']:+.3f} MiB/min over the second half")
    if args.json:
        args.json.write_text(json.dumps({**results, "moorage_workers": n_workers,
                                         "workers_scaling": scaling, "soak": soaked}, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
