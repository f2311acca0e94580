"""Helper for ``scripts/compat-dockerpy.sh``: a pytest plugin and a comparer.

As a pytest plugin (``-p compat_dockerpy`` with this folder on ``PYTHONPATH``),
loaded into docker-py's own integration suite, it

- puts the offline test images back before every test: the suite removes and
  re-pulls ``hello-world`` and friends, and nothing can be pulled here, so
  without this one test's cleanup would fail every later test that needs the
  image, and the three runs would drift apart for reasons that have nothing to
  do with Moorage. It tags straight on the engine (``COMPAT_ENGINE_HOST``),
  never through the gateway, so Moorage's audit and policy don't see it;
- undoes ``credentials/utils_test.py``'s ``os.environ = {...}`` after each test:
  that test rebinds the name, not the contents, so without this every later
  test loses ``DOCKER_HOST`` and talks to ``/var/run/docker.sock`` instead;
- writes one JSON line per test (``COMPAT_RESULTS``): outcome, the first error
  lines, and wall-clock start and end, which the comparer matches against
  Moorage's audit records to name the request and rule behind a lost test.

As a program (stdlib only)::

    python compat_dockerpy.py differing OUT             # node ids whose outcome differs from direct
    python compat_dockerpy.py compare OUT [--md FILE]   # the table; exit 1 on an unexplained loss

``OUT`` holds one folder per run (``direct``, ``off``, ``default``), each with
``results.jsonl``, maybe ``rerun.jsonl`` and, through Moorage, ``audit.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODES = {
    "direct": "direct",
    "off": "Moorage, policy off",
    "default": "Moorage, default policy",
}
PASSING = {"passed", "xpassed"}


# --------------------------------------------------------------- pytest plugin
class _Recorder:
    """Per-test outcome and timing, written as JSON lines."""

    def __init__(self, path: Path, engine: str | None, base: str | None, tags: list[str]) -> None:
        self.out = path.open("a", encoding="utf-8")
        self.engine, self.base, self.tags = engine, base, tags
        self.current: dict[str, dict[str, Any]] = {}
        self.client: Any = None

    def restore_images(self) -> None:
        """Tag the base image under each test name that has gone missing."""
        if not (self.engine and self.base and self.tags):
            return
        import docker  # type: ignore[import-untyped]  # the suite's client, in its own venv

        if self.client is None:
            self.client = docker.APIClient(base_url=self.engine, version="auto", timeout=60)
        for ref in self.tags:
            try:
                self.client.inspect_image(ref)
            except docker.errors.NotFound:
                repo, _, tag = ref.rpartition(":")
                self.client.tag(self.base, repo, tag)

    def start(self, nodeid: str) -> None:
        self.current[nodeid] = {"id": nodeid, "start": time.time(), "phases": {}, "message": ""}

    def report(self, rep: Any) -> None:
        entry = self.current.get(rep.nodeid)
        if entry is None:
            return
        xfail = hasattr(rep, "wasxfail")
        outcome = ("xfailed" if rep.skipped else "xpassed") if xfail else rep.outcome
        entry["phases"][rep.when] = outcome
        if rep.failed and not entry["message"]:
            entry["message"] = _error_lines(rep.longreprtext)

    def finish(self, nodeid: str) -> None:
        if os.environ is not _ENVIRON:
            os.environ = _ENVIRON  # noqa: B003 - putting back the real one
        entry = self.current.pop(nodeid, None)
        if entry is None:
            return
        entry["end"] = time.time()
        entry["outcome"] = _outcome(entry.pop("phases"))
        self.out.write(json.dumps(entry) + "\n")
        self.out.flush()

    def close(self) -> None:
        self.out.close()
        if self.client is not None:
            self.client.close()


def _outcome(phases: dict[str, str]) -> str:
    setup, call, teardown = phases.get("setup"), phases.get("call"), phases.get("teardown")
    if setup == "failed":
        return "error"
    if setup in ("skipped", "xfailed"):
        return setup
    if call is None:
        return "error"
    if call == "failed":
        return "failed"
    if teardown == "failed":
        return "error"
    return call


def _error_lines(text: str, limit: int = 400) -> str:
    """The ``E`` lines of a pytest failure (the exception), else its last line."""
    lines = [ln[1:].strip() for ln in text.splitlines() if ln.startswith("E ")]
    if not lines:
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()][-1:]
    joined = " | ".join(ln for ln in lines if ln)
    return joined[:limit]


_recorder: _Recorder | None = None
_ENVIRON = os.environ


def pytest_configure(config: Any) -> None:
    """Start recording when the script asked for it (``COMPAT_RESULTS``)."""
    global _recorder
    path = os.environ.get("COMPAT_RESULTS")
    if path:
        tags = os.environ.get("COMPAT_TAGS", "").split()
        _recorder = _Recorder(
            Path(path), os.environ.get("COMPAT_ENGINE_HOST"), os.environ.get("COMPAT_BASE_IMAGE"), tags
        )


def pytest_unconfigure(config: Any) -> None:
    if _recorder is not None:
        _recorder.close()


def pytest_runtest_logstart(nodeid: str, location: Any) -> None:
    if _recorder is not None:
        _recorder.start(nodeid)


def pytest_runtest_setup(item: Any) -> None:
    if _recorder is not None:
        _recorder.restore_images()


def pytest_runtest_logreport(report: Any) -> None:
    if _recorder is not None:
        _recorder.report(report)


def pytest_runtest_logfinish(nodeid: str, location: Any) -> None:
    if _recorder is not None:
        _recorder.finish(nodeid)


# ------------------------------------------------------------------- comparer
@dataclass
class Run:
    """One run's results, its rerun of the differing tests, and its refusals."""

    mode: str
    results: dict[str, dict[str, Any]]
    rerun: dict[str, dict[str, Any]] = field(default_factory=dict)
    refusals: list[dict[str, Any]] = field(default_factory=list)

    def passed(self, test: str) -> bool:
        return self.results.get(test, {}).get("outcome") in PASSING

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results.values():
            out[r["outcome"]] = out.get(r["outcome"], 0) + 1
        return out

    def refusals_during(self, test: str) -> list[dict[str, Any]]:
        """Moorage's non-allow audit records made while ``test`` ran (main run or rerun)."""
        found = []
        for source in (self.results, self.rerun):
            r = source.get(test)
            if r is None:
                continue
            for a in self.refusals:
                if r["start"] <= a["time"] <= r["end"] and a not in found:
                    found.append(a)
        return found


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


def load(out: Path) -> dict[str, Run]:
    """The runs found under ``out``, keyed by mode."""
    runs: dict[str, Run] = {}
    for mode in MODES:
        d = out / mode
        if not (d / "results.jsonl").exists():
            continue
        runs[mode] = Run(
            mode,
            {r["id"]: r for r in _read_jsonl(d / "results.jsonl")},
            {r["id"]: r for r in _read_jsonl(d / "rerun.jsonl")},
            [a for a in _read_jsonl(d / "audit.jsonl") if a.get("decision") != "allow"],
        )
    return runs


def differing(runs: dict[str, Run]) -> list[str]:
    """Tests that pass on one side only, between direct and any run through Moorage."""
    direct = runs.get("direct")
    if direct is None:
        return []
    ids: set[str] = set()
    for mode, run in runs.items():
        if mode == "direct":
            continue
        for test in set(direct.results) | set(run.results):
            if direct.passed(test) != run.passed(test):
                ids.add(test)
    return sorted(ids)


@dataclass
class Diff:
    """A test whose pass/fail differs between direct and one run through Moorage."""

    test: str
    lost: bool  # passed direct, not through Moorage
    stable: bool  # the rerun agreed (or there was none to disagree)
    outcome: str
    message: str
    refusals: list[dict[str, Any]]

    def rules(self) -> list[str]:
        return sorted({rule for a in self.refusals for rule in denying_rules(a)})


def denying_rules(record: dict[str, Any]) -> list[str]:
    """The rules that refused a request. An audit record's ``rules`` also lists the
    findings of packs that only record (``restricted`` in audit); its reason names
    the denying ones: "denied by policy P: RULE at FIELD ...; RULE at FIELD ..."."""
    reason = str(record.get("reason") or "")
    found = re.findall(r"(?:denied by policy [^:]+: |; )([a-z][\w.-]*) at ", reason)
    return list(dict.fromkeys(found)) or list(record.get("rules") or [])


def diffs(direct: Run, run: Run) -> list[Diff]:
    """Lost and gained tests of ``run`` against ``direct``, with the rerun's verdict."""
    out = []
    for test in sorted(set(direct.results) | set(run.results)):
        if direct.passed(test) == run.passed(test):
            continue
        lost = direct.passed(test)
        stable = True
        if test in direct.rerun and test in run.rerun:
            d_again = direct.rerun[test]["outcome"] in PASSING
            m_again = run.rerun[test]["outcome"] in PASSING
            stable = (d_again, m_again) == (direct.passed(test), run.passed(test))
        r = run.results.get(test, {})
        failing = r if lost else direct.results.get(test, {})
        out.append(
            Diff(test, lost, stable, r.get("outcome", "missing"), failing.get("message", ""),
                 run.refusals_during(test) if lost else [])
        )  # fmt: skip
    return out


def _short(test: str) -> str:
    return test.replace("tests/integration/", "")


def _refusal_text(a: dict[str, Any]) -> str:
    """One refusal, short: the request, Moorage's status, the rule and what it said."""
    path = re.sub(r"^/v1\.\d+", "", str(a.get("path") or ""))
    reason = str(a.get("reason") or "").split(". To ask for an exception")[0]
    # A policy reason reads "...: RULE at FIELD (VALUE): why. Fix: ..."; keep "FIELD (VALUE): why".
    m = re.search(r": [\w.-]+ at (.*?)(?:\. Fix:|$)", reason)
    said = m.group(1) if m else reason
    rules = ",".join(denying_rules(a)) or str(a.get("decision", "?"))
    return f"{a.get('method')} {path} -> {a.get('status')} [{rules}] {said[:160]}"


def _refusals_text(refusals: list[dict[str, Any]]) -> str:
    seen: list[str] = []
    for a in refusals:
        text = _refusal_text(a)
        if text not in seen:
            seen.append(text)
    return "; ".join(seen)


def report(out: Path, meta: dict[str, str]) -> tuple[str, bool]:
    """The comparison as Markdown, and whether every difference is explained."""
    runs = load(out)
    if "direct" not in runs:
        return f"no direct run under {out}\n", False
    direct = runs["direct"]
    lines = [f"# docker-py integration suite through Moorage ({meta.get('date', '')})", ""]
    for k in ("suite", "client", "engine"):
        if meta.get(k):
            lines.append(f"- {k}: {meta[k]}")
    lines += ["", "| run | passed | failed | error | skipped | total |", "|---|---:|---:|---:|---:|---:|"]
    for mode, run in runs.items():
        c = run.counts()
        passed = sum(v for k, v in c.items() if k in PASSING)
        lines.append(
            f"| {MODES[mode]} | {passed} | {c.get('failed', 0)} | {c.get('error', 0)} | "
            f"{c.get('skipped', 0) + c.get('xfailed', 0)} | {len(run.results)} |"
        )
    ok = True
    for mode in ("off", "default"):
        other = runs.get(mode)
        if other is None:
            continue
        ds = diffs(direct, other)
        lost = [d for d in ds if d.lost]
        gained = [d for d in ds if not d.lost]
        lines += ["", f"## {MODES[mode]}: {len(lost)} lost, {len(gained)} gained", ""]
        if not ds:
            lines.append("Same pass set as direct.")
            continue
        lines += ["| test | change | stable on rerun | rule(s) | through Moorage |", "|---|---|---|---|---|"]
        for d in ds:
            why = _refusals_text(d.refusals) or d.message
            why = why.replace("|", "\\|").replace("\n", " ")[:900]
            change = f"lost ({d.outcome})" if d.lost else "gained"
            lines.append(
                f"| `{_short(d.test)}` | {change} | {'yes' if d.stable else 'no (flaky)'} | "
                f"{', '.join(d.rules()) or '-'} | {why} |"
            )
            if not (d.lost and d.stable):
                continue
            # Policy off, any stable loss is a bug; default policy, a loss must be a policy refusal.
            if mode == "off" or not d.rules():
                ok = False
    verdict = "every difference is explained" if ok else "UNEXPLAINED DIFFERENCES (see above)"
    lines += ["", f"Verdict: {verdict}.", ""]
    return "\n".join(lines), ok


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("differing", help="print the node ids whose outcome differs from direct")
    d.add_argument("out", type=Path)
    c = sub.add_parser("compare", help="print the comparison; exit 1 when a difference is unexplained")
    c.add_argument("out", type=Path)
    c.add_argument("--md", type=Path, help="also write the Markdown here")
    c.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args(argv)
    if args.cmd == "differing":
        for test in differing(load(args.out)):
            print(test)
        return 0
    meta = dict(m.split("=", 1) for m in args.meta)
    text, ok = report(args.out, meta)
    print(text)
    if args.md:
        args.md.write_text(text, encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
