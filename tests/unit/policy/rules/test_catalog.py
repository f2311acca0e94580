"""``moorage policy explain``: every rule id the policy code can emit has its own entry.

The ids are found in the source, not listed here: every call that builds a
``Finding`` (directly, or through a helper that passes its argument on as the rule,
such as ``_finding``, ``_f``, ``refuse`` or ``add``) is read with :mod:`ast`, and its
rule argument resolved to the literal id. A rule argument the scan can't resolve
fails the test, so a new way of naming rules can't slip past it unseen.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from moorage.cli.main import main
from moorage.policy.decision import Facts, Request, evaluate
from moorage.policy.loader import builtin_set
from moorage.policy.rules import RULES, lookup

SRC = Path(__file__).resolve().parents[4] / "src" / "moorage"
SCANNED = sorted((SRC / "policy").rglob("*.py")) + sorted((SRC / "admission").glob("*.py"))

# Rule arguments built at run time, and the ids they can take. ``custom.`` and
# ``rego.`` name a policy document's own rules: the catalog answers those generically.
DYNAMIC = {
    "resources.{}-required": {
        "resources.memory-required",
        "resources.cpus-required",
        "resources.pids-required",
    },
    "custom.{}": set(),
    "rego.{}": set(),
}


@dataclass(frozen=True)
class Emitter:
    """A helper whose parameter ``param`` becomes the rule, as ``prefix + value + suffix``."""

    param: str
    index: int  # the parameter's position as callers pass it (``self`` not counted)
    method: bool  # called as ``obj.name(...)`` rather than ``name(...)``
    prefix: str
    suffix: str


def _call_name(call: ast.Call) -> tuple[str, bool] | None:
    if isinstance(call.func, ast.Name):
        return call.func.id, False
    if isinstance(call.func, ast.Attribute):
        return call.func.attr, True
    return None


def _template(node: ast.expr) -> tuple[str, ast.expr | None, str] | None:
    """``"id"`` -> (id, None, ""); ``f"pre{x}suf"`` -> (pre, x, suf); else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value, None, ""
    if isinstance(node, ast.Name):
        return "", node, ""
    if isinstance(node, ast.JoinedStr):
        parts = node.values
        holes = [p for p in parts if isinstance(p, ast.FormattedValue)]
        if len(holes) != 1:
            return None
        at = parts.index(holes[0])
        text = [p.value for p in parts if isinstance(p, ast.Constant) and isinstance(p.value, str)]
        if len(text) != len(parts) - 1:
            return None
        before = "".join(str(p.value) for p in parts[:at] if isinstance(p, ast.Constant))
        after = "".join(str(p.value) for p in parts[at + 1 :] if isinstance(p, ast.Constant))
        return before, holes[0].value, after
    return None


def _key(func: ast.FunctionDef) -> tuple[str, bool]:
    """How callers name a function: (name, whether it is a method called on an object)."""
    params = func.args.args
    return func.name, bool(params) and params[0].arg == "self"


def _rule_arg(call: ast.Call, index: int) -> ast.expr | None:
    for kw in call.keywords:
        if kw.arg == "rule":
            return kw.value
    return call.args[index] if len(call.args) > index else None


class _Scan:
    def __init__(self, files: list[Path]) -> None:
        self.trees = {path: ast.parse(path.read_text(), str(path)) for path in files}
        self.emitters: dict[tuple[str, bool], Emitter] = {
            ("Finding", False): Emitter("rule", 0, False, "", "")
        }
        self._find_emitters()

    def _calls(self) -> list[tuple[Path, ast.Call, ast.FunctionDef | None]]:
        """Every call, with the innermost function that contains it."""
        out: list[tuple[Path, ast.Call, ast.FunctionDef | None]] = []

        def walk(node: ast.AST, path: Path, func: ast.FunctionDef | None) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.Call):
                    out.append((path, child, func))
                walk(child, path, child if isinstance(child, ast.FunctionDef) else func)

        for path, tree in self.trees.items():
            walk(tree, path, None)
        return out

    def _find_emitters(self) -> None:
        """Helpers that hand one of their parameters on as a rule, to a fixed point."""
        changed = True
        while changed:
            changed = False
            for _path, call, func in self._calls():
                called = _call_name(call)
                if func is None or called is None or called not in self.emitters:
                    continue
                outer = self.emitters[called]
                arg = _rule_arg(call, outer.index)
                shape = _template(arg) if arg is not None else None
                if shape is None or not isinstance(shape[1], ast.Name):
                    continue
                params = [a.arg for a in func.args.args]
                name = shape[1].id
                if name not in params:
                    continue
                key = _key(func)
                method = key[1]
                if key not in self.emitters:
                    index = params.index(name) - (1 if method else 0)
                    prefix, suffix = outer.prefix + shape[0], shape[2] + outer.suffix
                    self.emitters[key] = Emitter(name, index, method, prefix, suffix)
                    changed = True

    def rule_ids(self) -> tuple[set[str], list[str]]:
        """(every id found, every rule argument the scan couldn't resolve)."""
        found: set[str] = set()
        unresolved: list[str] = []
        for path, call, func in self._calls():
            called = _call_name(call)
            if called is None or called not in self.emitters:
                continue
            emitter = self.emitters[called]
            arg = _rule_arg(call, emitter.index)
            where = f"{path.relative_to(SRC)}:{call.lineno}"
            if arg is None:
                unresolved.append(f"{where}: no rule argument")
                continue
            shape = _template(arg)
            if shape is not None and shape[1] is None:
                found.add(emitter.prefix + shape[0] + emitter.suffix)
                continue
            own = self.emitters.get(_key(func)) if func is not None else None
            if shape is not None and isinstance(shape[1], ast.Name) and own and shape[1].id == own.param:
                continue  # a helper passing its own parameter on: its callers are read instead
            if shape is not None:
                pattern = emitter.prefix + shape[0] + "{}" + shape[2] + emitter.suffix
                if pattern in DYNAMIC:
                    found |= DYNAMIC[pattern]
                    continue
            unresolved.append(f"{where}: {ast.unparse(arg)}")
        return found, unresolved


@pytest.fixture(scope="module")
def emitted() -> set[str]:
    found, unresolved = _Scan(SCANNED).rule_ids()
    assert not unresolved, (
        f"rule arguments the scan can't resolve (name the rule literally, or add it to DYNAMIC): {unresolved}"
    )
    return found


def test_the_scan_sees_every_way_rules_are_emitted(emitted: set[str]) -> None:
    # One id from each emitting helper: Finding via _f, _finding, refuse, add, a
    # wrapper of a wrapper, and a run-time name.
    for rule in (
        "runtime.unknown-operation",
        "runtime.update-field",
        "images.sbom",
        "runtime.volume-options",
        "runtime.privileged",
        "resources.pids-required",
        "swarm.ca",
        "build.grpc",
    ):
        assert rule in emitted, rule


def test_every_emitted_rule_has_its_own_catalog_entry(emitted: set[str]) -> None:
    missing = sorted(r for r in emitted if r not in RULES)
    assert not missing, f"no RuleDoc for: {missing}"
    for rule in emitted:
        doc = lookup(rule)
        assert doc is not None and doc.id == rule
        assert doc.family == rule.split(".", 1)[0]
        assert all((doc.checks, doc.why, doc.fields, doc.fix)), rule


def test_every_catalog_entry_is_a_rule_the_code_emits(emitted: set[str]) -> None:
    stale = sorted(set(RULES) - emitted)
    assert not stale, f"catalog entries no code emits: {stale}"


def test_custom_and_rego_rules_get_the_generic_entry() -> None:
    doc = lookup("custom.no-latest")
    assert doc is not None and doc.family == "custom" and "no-latest" in doc.checks
    assert lookup("no.such-rule") is None


BASELINE = builtin_set("baseline", None)
WHO: dict[str, Any] = {"user": "alice", "teams": ("payments",), "roles": ("developer",)}
DENIED: list[tuple[str, Any, dict[str, Any]]] = [
    ("container.update", {"CgroupParent": "/x"}, {"object_ref": "c1"}),
    ("container.frobnicate", {}, {}),
    ("image.build", None, {"query": {"networkmode": ["container:abc"], "securityopt": ["seccomp=x"]}}),
    ("image.build", None, {"query": {"cgroupparent": ["/x"], "isolation": ["hyperv"]}}),
    ("build.grpc", None, {}),
    (
        "network.create",
        {"Name": "n", "Driver": "macvlan", "Options": {"parent": "eth0"}, "Ingress": True},
        {},
    ),
    ("plugin.pull", [{"Name": "network", "Value": ["host"]}], {"object_ref": "p"}),
    ("plugin.create", None, {"query": {"name": ["x"]}}),
    ("plugin.set", ["state.source=/"], {"object_ref": "p"}),
    ("node.update", {"Labels": {"io.moorage.attested.pci": "true"}}, {"object_ref": "n1"}),
    ("swarm.join", {"RemoteAddrs": ["127.0.0.1:2377"]}, {}),
    ("swarm.update", {"CAConfig": {"SigningCAKey": "KEY"}}, {}),
]


@pytest.mark.parametrize(("kind", "body", "req"), DENIED, ids=[d[0] for d in DENIED])
def test_what_baseline_denies_is_explained(kind: str, body: Any, req: dict[str, Any]) -> None:
    decision = evaluate(BASELINE, Request(kind, body, **req, **WHO), Facts())
    rules = {v.finding.rule for v in decision.denials}
    assert rules, f"{kind} was not denied"
    for rule in rules:
        assert rule in RULES, rule


@pytest.mark.parametrize(
    ("rule", "text"), [("build.grpc", "network.host entitlement"), ("swarm.ca", "SigningCAKey")]
)
def test_policy_explain_shows_new_rules(rule: str, text: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "explain", rule]) == 0
    out = capsys.readouterr().out
    assert rule in out and text in out and "baseline, restricted" in out
    assert main(["policy", "explain"]) == 0
    assert rule in capsys.readouterr().out
