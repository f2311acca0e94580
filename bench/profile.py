"""Where `moorage up` spends its time on the hot path: a flame summary from py-spy.

    python bench/profile.py [--op ping|list] [--clients 1 32] [--seconds 10]
                            [--workers N] [--rate 1000] [--out FILE]

Starts the same set-up as bench/gateway.py (a private lab engine with 10
containers, `moorage up` in front of it with its default packs and the durable
audit trail), then for each client count: keep-alive clients hammer `/_ping` (or
`GET /containers/json?all=1`) while `py-spy record --format raw --subprocesses`
samples the `moorage up` process and all its workers. Prints, per client count,
the top frames by self time and by inclusive time as Markdown tables (shares of
all samples in which a gateway thread was running; idle threads are not sampled),
ready for docs/benchmarks.md. --out also keeps the raw collapsed stacks (one file
per client count: FILE, or FILE with .cN before its suffix when there are several).

Frames are functions (py-spy --function: file:line is the function's first line)
unless --lines, which keeps the line being run. py-spy runs --nonblocking unless
--blocking: pausing the gateway 1000 times a second would change what is measured.
Only unix sockets on this machine are used.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import LIST, PING, Client, lab_engine, load, start_moorage, supports_workers

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def short(path: str) -> str:
    """A file name as the table shows it: relative to the moorage package for
    Moorage's own files, to site-packages for libraries, and stdlib/... for Python's."""
    for marker, prefix in (("/src/moorage/", ""), ("/site-packages/moorage/", ""), ("/site-packages/", ""),
                           ("/lib/python3.", "stdlib/")):  # fmt: skip
        if marker in path:
            rest = path.split(marker, 1)[1]
            return prefix + (rest.split("/", 1)[1] if marker == "/lib/python3." else rest)
    return path


def frame_name(raw: str) -> tuple[str, str]:
    """(function, shortened file:line) of one py-spy frame."""
    m = _FRAME.match(raw)
    if not m:
        return raw, ""
    where = short(m["file"]) + (f":{m['line']}" if m["line"] else "")
    return m["func"], where


@dataclass
class Summary:
    """What the collapsed stacks of one profile say, counted in samples."""

    total: int = 0
    self_: Counter[tuple[str, str]] = field(default_factory=Counter)
    incl: Counter[tuple[str, str]] = field(default_factory=Counter)
    callees: dict[tuple[str, str], set[tuple[str, str]]] = field(default_factory=dict)
    per_process: Counter[str] = field(default_factory=Counter)

    def passes_through(self, name: tuple[str, str]) -> bool:
        """A frame with no self time and a single callee (an entry point such as
        runpy's, or a thread's bootstrap): its inclusive share is its callee's."""
        return not self.self_[name] and len(self.callees.get(name, ())) == 1


def summarise(raw: str) -> Summary:
    """Counts from py-spy's collapsed stacks. Its process frames ("process PID:CMDLINE"
    at the root with --subprocesses, nested supervisor first) name the process a
    sample came from and are not counted as functions."""
    out = Summary()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        proc = "?"
        while frames and frames[0].startswith(("process ", "thread ")):
            if frames[0].startswith("process "):
                pid, _, cmdline = frames[0].removeprefix("process ").partition(":")
                m = re.search(r"--worker-index (\d+)", cmdline)
                proc = f"worker {m[1]}" if m else f"pid {pid}"
            frames = frames[1:]
        out.total += n
        out.per_process[proc] += n
        if not frames:
            continue
        names = [frame_name(f) for f in frames]
        out.self_[names[-1]] += n
        for name in set(names):
            out.incl[name] += n
        for caller, callee in pairwise(names):
            out.callees.setdefault(caller, set()).add(callee)
    return out


def table(title: str, rows: list[tuple[str, str]], s: Summary) -> str:
    out = [
        f"**{title}**",
        "",
        "| function | file:line | % self | % inclusive |",
        "| --- | --- | ---: | ---: |",
    ]
    for name in rows:
        func, where = name
        out.append(
            f"| `{func}` | `{where}` | {100 * s.self_[name] / s.total:.1f} | {100 * s.incl[name] / s.total:.1f} |"
        )
    return "\n".join(out)


def out_file(out: Path, clients: int, several: bool) -> Path:
    return out.with_name(f"{out.stem}.c{clients}{out.suffix or '.txt'}") if several else out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--op", choices=["ping", "list"], default="ping", help="the request hammered (default ping)"
    )
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 32], metavar="N",
                    help="client counts, one profile each (default: 1 32)")  # fmt: skip
    ap.add_argument("--seconds", type=float, default=10.0, help="sampling time per profile (default 10)")
    ap.add_argument("--rate", type=int, default=1000, help="samples per second (default 1000)")
    ap.add_argument("--workers", type=int, metavar="N", help="moorage up --workers N (if it has the option)")
    ap.add_argument("--top", type=int, default=25, help="rows per table (default 25)")
    ap.add_argument("--lines", action="store_true", help="frames are lines, not functions")
    ap.add_argument("--blocking", action="store_true", help="let py-spy pause the gateway for each sample")
    ap.add_argument("--out", type=Path, help="also save the raw collapsed stacks here")
    args = ap.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        print("py-spy is not installed (pip install py-spy)", file=sys.stderr)
        return 2
    workers = args.workers
    if workers is not None and not supports_workers():
        print("moorage up has no --workers option here: running it with its defaults", file=sys.stderr)
        workers = None
    op = PING if args.op == "ping" else LIST

    reports = []
    with lab_engine("bench-prof") as (_lab, engine, work):
        gw = start_moorage(engine, work, "moorage", workers)
        try:
            warm = Client(gw.sock)
            for _ in range(300):
                warm.request("GET", op)
            warm.close()
            for clients in args.clients:
                raw = work / f"stacks.c{clients}.txt"
                cmd = [spy, "record", "--pid", str(gw.pid), "--subprocesses", "--rate", str(args.rate),
                       "--format", "raw", "--full-filenames", "--output", str(raw),
                       "--duration", str(max(1, round(args.seconds)))]  # fmt: skip
                if not args.lines:
                    cmd.append("--function")
                if not args.blocking:
                    cmd.append("--nonblocking")
                spying: list[subprocess.Popen[bytes]] = []

                def attach(cmd: list[str] = cmd, spying: list[subprocess.Popen[bytes]] = spying) -> None:
                    spying.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))

                # the load outlasts the sampling: py-spy takes a moment to attach
                ld = load(gw.sock, [op], clients=clients, seconds=max(1, round(args.seconds)) + 2.0,
                          watch={"moorage": gw.pid}, on_start=attach)  # fmt: skip
                _, err = spying[0].communicate(timeout=60)
                if spying[0].returncode or not raw.exists():
                    print(
                        f"py-spy failed ({spying[0].returncode}): {err.decode(errors='replace')}",
                        file=sys.stderr,
                    )
                    return 1
                text = raw.read_text()
                if args.out:
                    dest = out_file(args.out, clients, len(args.clients) > 1)
                    dest.write_text(text)
                    print(f"raw collapsed stacks: {dest}", file=sys.stderr)
                reports.append((clients, ld.rps, ld.cpu_us("moorage"), summarise(text)))
                print(f"profiled {clients} client{'s' * (clients != 1)}", file=sys.stderr)
        finally:
            gw.stop()

    what = "`/_ping`" if args.op == "ping" else "`GET /containers/json?all=1`"
    for clients, rps, cpu_us, sm in reports:
        procs = ", ".join(
            f"{proc} {100 * n / max(1, sm.total):.0f}%" for proc, n in sm.per_process.most_common()
        )
        print(f"\n### {what}, {clients} client{'s' * (clients != 1)}, `moorage up` with {gw.workers} "
              f"worker{'s' * (gw.workers != 1)}\n")  # fmt: skip
        print(f"py-spy {args.rate}/s{'' if args.blocking else ' non-blocking'}, {sm.total} samples of running "
              f"gateway threads ({procs}); under the profiler {rps:,.0f} req/s, "
              f"{cpu_us:.0f} µs of CPU per request (the whole `moorage up` tree).\n")  # fmt: skip
        if not sm.total:
            print("(no samples)")
            continue
        by_self = [name for name, _ in sm.self_.most_common(args.top)]
        by_incl = [name for name, _ in sm.incl.most_common() if not sm.passes_through(name)][: args.top]
        print(table(f"Top {args.top} by self time", by_self, sm) + "\n")
        print(table(f"Top {args.top} by inclusive time", by_incl, sm))
        print("\nFrames that only pass through (no self time, one callee: runpy, `main`, thread bootstraps) "
              "are left out of the inclusive table. py-spy sees Python frames only: the self time of the "
              "frame that runs the event loop (`Runner.run`) is uvloop's own C work (socket reads and "
              "writes, callbacks' scheduling), and a Python function's self time includes the C calls it "
              "makes (a transport's `write`, `json.dumps`' encoder).")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
