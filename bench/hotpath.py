"""The hot path's budgets in one run: latency, throughput and CPU per request for
direct dockerd, Moorage with 1 and 2 workers, HAProxy and a bare Python relay; the
compose and `docker run` workloads; a soak with memory.

    python bench/hotpath.py [--quick] [--soak-minutes 10] [--json FILE]

CPU per request is read from /proc (utime + stime of the proxy's whole process
tree: a supervisor and its workers for Moorage) over the 32-client /_ping phase,
divided by the requests answered in it. It does not depend on how the 2 cores are
shared between the load generator, dockerd and the proxy, which the throughput
ratios do. Only unix sockets on this machine are used.
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
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from gateway import HAPROXY_CFG, IMAGE, Client, docker_run, latency, throughput

from moorage.lab import Lab, build_busybox, load_into

PING, LIST = "/_ping", "/v1.41/containers/json?all=1"
COMPOSE = "version: '2.4'\nservices:\n" + "".join(
    f"  s{i}:\n    image: {IMAGE}\n    command: [sleep, '3600']\n    read_only: true\n    user: '1000:1000'\n"
    f"    cap_drop: [ALL]\n    security_opt: ['no-new-privileges:true']\n"
    for i in range(10)
)


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def cpu_seconds(pid: int) -> float:
    total = 0
    for p in tree(pid):
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(f[11]) + int(f[12])
    return total / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    total = 0
    for p in tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def wait_for(path: Path, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert time.monotonic() < deadline and (proc is None or proc.poll() is None), f"{path} did not appear"
        time.sleep(0.1)


def start_moorage(engine: str, work: Path, name: str, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    sock = work / f"{name}.sock"
    log = open(work / f"{name}.log", "wb")  # noqa: SIM115 - the child owns it
    proc = subprocess.Popen(
        [sys.executable, "-m", "moorage.cli.main", "up", "--upstream", f"unix://{engine}",
         "--data-dir", str(work / f"{name}-data"), "--listen", str(sock), "--context", "",
         "--workers", str(workers), "--cluster", "off"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while "Use it:" not in (work / f"{name}.log").read_text():
        assert time.monotonic() < deadline and proc.poll() is None, (work / f"{name}.log").read_text()
        time.sleep(0.1)
    return proc, str(sock)


def compose_up(host: str, n: int, work: Path) -> list[float]:
    (work / "compose").mkdir(exist_ok=True)
    (work / "compose" / "docker-compose.yml").write_text(COMPOSE)
    env = {**os.environ, "DOCKER_HOST": f"unix://{host}", "HOME": tempfile.gettempdir()}
    cmd = ["docker-compose", "-p", "hotbench", "-f", str(work / "compose" / "docker-compose.yml")]
    out = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run([*cmd, "up", "-d"], check=True, env=env, capture_output=True)
        out.append((time.perf_counter() - t) * 1000)
        subprocess.run([*cmd, "down", "-t", "0"], check=True, env=env, capture_output=True)
    return out


def soak(path: str, pid: int, minutes: float) -> dict[str, float]:
    """32 keep-alive clients of mixed /_ping and list for ``minutes``; RSS every 10 s."""
    stop = threading.Event()
    done = [0, 0]

    def client(k: int) -> None:
        c = Client(path)
        i = 0
        while not stop.is_set():
            i += 1
            try:
                c.request("GET", LIST if (i + k) % 4 == 0 else PING)
                done[0] += 1
            except OSError:
                done[1] += 1
                c.close()
                c = Client(path)
        c.close()

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(32)]
    for t in threads:
        t.start()
    samples: list[tuple[float, float]] = []
    start = time.monotonic()
    while (now := time.monotonic()) - start < minutes * 60:
        samples.append((now - start, rss_mib(pid)))
        time.sleep(min(10.0, max(0.1, minutes * 60 / 30)))
    samples.append((time.monotonic() - start, rss_mib(pid)))
    stop.set()
    for t in threads:
        t.join(10)
    half = [s for s in samples if s[0] >= samples[-1][0] / 2]
    slope = 0.0
    if len(half) > 1:
        xs, ys = [s[0] / 60 for s in half], [s[1] for s in half]
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / max(
            1e-9, sum((x - mx) ** 2 for x in xs)
        )
    return {"minutes": minutes, "requests": done[0], "errors": done[1], "rss_start_mib": samples[0][1],
            "rss_peak_mib": max(s[1] for s in samples), "rss_end_mib": samples[-1][1],
            "rss_slope_mib_per_min_second_half": slope}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    ap.add_argument("--soak-minutes", type=float, default=0.0, help="soak length (0: skip; budget: 10)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    n_fast, n_run, secs = (300, 3, 1.5) if args.quick else (3000, 10, 4.0)

    lab = Lab(f"hot{os.getpid() % 10000}")
    work = Path(tempfile.mkdtemp(prefix="moorage-hot-"))
    procs: dict[str, subprocess.Popen[bytes]] = {}
    results: dict[str, dict[str, float]] = {}
    try:
        lab.up(nodes=1, owner_pid=os.getpid())
        load_into(build_busybox(), [lab.client(1)])
        engine = str(lab.socket_path(1))
        for _ in range(10):
            lab.client(1).call("POST", "/containers/create", {"Image": IMAGE, "Cmd": ["true"]})
        targets = {"direct": engine}
        for name, workers in (("moorage-1w", 1), ("moorage-2w", 2)):
            procs[name], targets[name] = start_moorage(engine, work, name, workers)
        (work / "haproxy.cfg").write_text(HAPROXY_CFG.format(front=work / "haproxy.sock", engine=engine))
        procs["haproxy"] = subprocess.Popen(["haproxy", "-f", str(work / "haproxy.cfg")],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        targets["haproxy"] = str(work / "haproxy.sock")
        procs["relay"] = subprocess.Popen([sys.executable, str(Path(__file__).with_name("relay.py")), engine,
                                           str(work / "relay.sock")], stdout=subprocess.DEVNULL)  # fmt: skip
        targets["relay"] = str(work / "relay.sock")
        for path in targets.values():
            wait_for(Path(path))
        for name, path in targets.items():
            r: dict[str, float] = {}
            latency(path, PING, 300)  # warm up
            r["ping_median_ms"] = statistics.median(latency(path, PING, n_fast))
            r["list_median_ms"] = statistics.median(latency(path, LIST, n_fast))
            pid = procs[name].pid if name in procs else None
            c0 = cpu_seconds(pid) if pid else 0.0
            r["ping_rps_32"] = throughput(path, PING, seconds=secs)
            if pid:
                r["cpu_us_per_ping"] = (cpu_seconds(pid) - c0) / (r["ping_rps_32"] * secs) * 1e6
            c0 = cpu_seconds(pid) if pid else 0.0
            r["list_rps_32"] = throughput(path, LIST, seconds=secs)
            if pid:
                r["cpu_us_per_list"] = (cpu_seconds(pid) - c0) / (r["list_rps_32"] * secs) * 1e6
            results[name] = r
            print(f"measured {name}", file=sys.stderr)
        for name in ("direct", "moorage-2w"):
            results[name]["docker_run_ms"] = statistics.median(docker_run(targets[name], n_run))
            results[name]["compose_up_ms"] = statistics.median(
                compose_up(targets[name], max(3, n_run // 2), work)
            )
        if args.soak_minutes > 0:
            results["soak"] = soak(targets["moorage-2w"], procs["moorage-2w"].pid, args.soak_minutes)
    finally:
        for proc in procs.values():
            proc.terminate()
            proc.wait(30)
        lab.down()
        shutil.rmtree(work, ignore_errors=True)

    names = [n for n in results if n != "soak"]
    keys = list(dict.fromkeys(k for n in names for k in results[n]))
    print(f"| metric | {' | '.join(names)} |\n| --- |{' --- |' * len(names)}")
    for k in keys:
        print(
            f"| {k} | " + " | ".join(f"{results[n][k]:.3f}" if k in results[n] else "" for n in names) + " |"
        )
    d, h = results["direct"], results["haproxy"]
    print("\n| budget | Moorage 1 worker | Moorage 2 workers | budget |\n| --- | --- | --- | --- |")
    m1, m2 = results["moorage-1w"], results["moorage-2w"]
    rows = [
        ("/_ping added median latency (ms)", lambda m: m["ping_median_ms"] - d["ping_median_ms"], "<= 0.15"),
        ("list added median latency (ms)", lambda m: m["list_median_ms"] - d["list_median_ms"], "<= 0.20"),
        ("/_ping at 32 clients / HAProxy", lambda m: m["ping_rps_32"] / h["ping_rps_32"], ">= 0.8"),
        ("list at 32 clients / HAProxy", lambda m: m["list_rps_32"] / h["list_rps_32"], ">= 1.0"),
        ("CPU per /_ping / HAProxy's", lambda m: m["cpu_us_per_ping"] / h["cpu_us_per_ping"], "<= 2"),
    ]
    for label, f, budget in rows:
        print(f"| {label} | {f(m1):.3f} | {f(m2):.3f} | {budget} |")
    print(f"| docker run --rm / direct | | {m2['docker_run_ms'] / d['docker_run_ms']:.3f} | <= 1.02 |")
    print(
        f"| compose up -d, 10 services / direct | | {m2['compose_up_ms'] / d['compose_up_ms']:.3f} | <= 1.05 |"
    )
    print(f"\nCPU per proxied /_ping (us): moorage 1 worker {m1['cpu_us_per_ping']:.0f}, 2 workers "
          f"{m2['cpu_us_per_ping']:.0f}, haproxy {h['cpu_us_per_ping']:.0f}, "
          f"relay {results['relay']['cpu_us_per_ping']:.0f}")  # fmt: skip
    if "soak" in results:
        s = results["soak"]
        print(f"soak {s['minutes']:g} min, 32 clients, 2 workers: {s['requests']:.0f} requests, "
              f"{s['errors']:.0f} errors; RSS start {s['rss_start_mib']:.1f} MiB, peak {s['rss_peak_mib']:.1f}, "
              f"end {s['rss_end_mib']:.1f}; slope over the second half "
              f"{s['rss_slope_mib_per_min_second_half']:+.2f} MiB/min")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
