"""Gateway pass-through cost: direct dockerd vs Moorage vs HAProxy, in one run.

    python bench/gateway.py [--quick]

Starts its own lab engine, `moorage up` in front of it, HAProxy configured as
a path-filtering Docker socket proxy (the common "socket proxy" pattern) and a
bare byte relay in Python (bench/relay.py: the floor for a Python proxy), then
measures, for each target:
  - /_ping, GET /containers/json and a create+start+wait+remove cycle:
    median and p99 latency with 1 client;
  - /_ping and GET /containers/json throughput with 32 concurrent clients
    (keep-alive connections spread over 4 client processes);
  - `docker run --rm busybox true` wall time (median of N).
Prints a table and the ratios the budgets in DESIGN.md are written against.
Only unix sockets on this machine are used.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from moorage.lab import Lab, build_busybox, load_into

IMAGE = "moorage-lab/busybox"


# ----------------------------------------------------------------- HTTP client
class Client:
    """A minimal keep-alive HTTP/1.1 client on a unix socket (the load must be cheap)."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.buf = b""

    def request(self, method: str, target: str, body: bytes = b"") -> tuple[int, bytes]:
        head = f"{method} {target} HTTP/1.1\r\nHost: d\r\n"
        if body or method in ("POST", "PUT"):
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.sock.sendall(head.encode() + b"\r\n" + body)
        while b"\r\n\r\n" not in self.buf:
            self.buf += self._recv()
        raw_head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = raw_head.split(b"\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(b":") for ln in lines[1:])}
        if headers.get(b"transfer-encoding") == b"chunked":
            out = b""
            while True:
                while b"\r\n" not in self.buf:
                    self.buf += self._recv()
                size_line, _, self.buf = self.buf.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                while len(self.buf) < size + 2:
                    self.buf += self._recv()
                out, self.buf = out + self.buf[:size], self.buf[size + 2 :]
                if size == 0:
                    return status, out
        length = int(headers.get(b"content-length", b"0"))
        while len(self.buf) < length:
            self.buf += self._recv()
        body_out, self.buf = self.buf[:length], self.buf[length:]
        return status, body_out

    def _recv(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("closed")
        return data

    def close(self) -> None:
        self.sock.close()


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


def _worker(path: str, op: str, conns: int, seconds: float, start: float, q: mp.Queue) -> None:  # type: ignore[type-arg]
    """``conns`` threads, each a keep-alive connection issuing requests back to back until
    ``start + seconds``; reports (responses, socket errors). A connection the server
    closes is reopened and counted, as wrk does."""
    import threading

    counts = [0, 0]
    lock = threading.Lock()

    def loop() -> None:
        done = errors = 0
        c = Client(path)
        while time.time() < start:
            time.sleep(0.001)
        end = start + seconds
        while time.time() < end:
            try:
                c.request("GET", op)
                done += 1
            except OSError:
                errors += 1
                c.close()
                c = Client(path)
        c.close()
        with lock:
            counts[0] += done
            counts[1] += errors

    threads = [threading.Thread(target=loop) for _ in range(conns)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        q.put((counts[0], counts[1]))


def throughput(path: str, op: str, clients: int = 32, procs: int = 4, seconds: float = 3.0) -> float:
    q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    start = time.time() + 0.5
    ps = [
        mp.Process(target=_worker, args=(path, op, clients // procs, seconds, start, q)) for _ in range(procs)
    ]
    for p in ps:
        p.start()
    counts = [q.get(timeout=seconds + 30) for _ in ps]
    for p in ps:
        p.join()
    errors = sum(e for _, e in counts)
    if errors:
        print(f"  {path} {op}: {errors} socket errors (reconnected)", file=sys.stderr)
    return sum(d for d, _ in counts) / seconds


def docker_run(host: str, n: int) -> list[float]:
    env = {**os.environ, "DOCKER_HOST": f"unix://{host}", "HOME": tempfile.gettempdir()}
    out = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(["docker", "run", "--rm", IMAGE, "true"], check=True, env=env, capture_output=True)
        out.append((time.perf_counter() - t) * 1000)
    return out


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    n_fast, n_cycle, n_run, secs = (300, 10, 3, 1.0) if args.quick else (3000, 60, 15, 4.0)

    lab = Lab(f"bench{os.getpid() % 10000}")
    work = Path(tempfile.mkdtemp(prefix="moorage-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        lab.up(nodes=1, owner_pid=os.getpid())
        load_into(build_busybox(), [lab.client(1)])
        engine = str(lab.socket_path(1))
        for _ in range(10):  # a realistic list: some containers exist
            lab.client(1).call("POST", "/containers/create", {"Image": IMAGE, "Cmd": ["true"]})
        gw_sock = work / "gw.sock"
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "moorage.cli.main", "up", "--upstream", f"unix://{engine}",
             "--data-dir", str(work / "data"), "--listen", str(gw_sock), "--context", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # fmt: skip
        targets = {"direct": engine, "moorage": str(gw_sock)}
        if shutil.which("haproxy"):
            hap_sock = work / "haproxy.sock"
            (work / "haproxy.cfg").write_text(HAPROXY_CFG.format(front=hap_sock, engine=engine))
            procs.append(subprocess.Popen(["haproxy", "-f", str(work / "haproxy.cfg")],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # fmt: skip
            targets["haproxy"] = str(hap_sock)
        # the floor for a proxy in Python: a bare byte relay that parses and checks nothing
        relay_sock = work / "relay.sock"
        procs.append(subprocess.Popen([sys.executable, str(Path(__file__).with_name("relay.py")), engine,
                                       str(relay_sock)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # fmt: skip
        targets["relay"] = str(relay_sock)
        deadline = time.monotonic() + 20
        while not all(Path(s).exists() for s in targets.values()):
            assert time.monotonic() < deadline, "a proxy did not start"
            time.sleep(0.1)

        results: dict[str, dict[str, float]] = {}
        for name, path in targets.items():
            r: dict[str, float] = {}
            latency(path, "/_ping", 200)  # warm up
            for label, op, n in (("ping", "/_ping", n_fast), ("list", "/v1.41/containers/json?all=1", n_fast),
                                 ("create", "create", n_cycle * 5), ("cycle", "cycle", n_cycle)):  # fmt: skip
                xs = latency(path, op, n)
                r[f"{label}_median_ms"] = statistics.median(xs)
                r[f"{label}_p99_ms"] = p(xs, 0.99)
            r["ping_rps_32"] = throughput(path, "/_ping", seconds=secs)
            r["list_rps_32"] = throughput(path, "/v1.41/containers/json?all=1", seconds=secs)
            if name in ("direct", "moorage"):
                r["docker_run_ms"] = statistics.median(docker_run(path, n_run))
            results[name] = r
            print(f"measured {name}", file=sys.stderr)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
        lab.down()
        shutil.rmtree(work, ignore_errors=True)

    keys = list(results["direct"])
    names = list(results)
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
    print(
        f"  throughput at 32 clients, /_ping        {m['ping_rps_32'] / d['ping_rps_32']:.2f}x direct  (>= 0.8)"
    )
    print(
        f"  throughput at 32 clients, list          {m['list_rps_32'] / d['list_rps_32']:.2f}x direct  (>= 0.8)"
    )
    print(
        f"  docker run --rm true                    {m['docker_run_ms'] / d['docker_run_ms']:.3f}x direct  (<= 1.05)"
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
    for name in ("haproxy", "relay"):
        if name in results:
            x = results[name]
            print(
                f"  {name:<8} against the same budgets: +{x['ping_median_ms'] - d['ping_median_ms']:.3f} ms /_ping,"
                f" +{x['list_median_ms'] - d['list_median_ms']:.3f} ms list, {x['ping_rps_32'] / d['ping_rps_32']:.2f}x"
                f" /_ping and {x['list_rps_32'] / d['list_rps_32']:.2f}x list at 32 clients"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
