"""The shape of src/moorage, checked from the source text alone (issue 18's acceptance).

Everything here reads files with `ast`; nothing imports moorage, so a module that
fails to import still gets its architecture checked, and a cycle is reported as a
cycle rather than as an ImportError somewhere else.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
ROOT_PACKAGE = "moorage"

# The layer order (docs/development.md, "The packages"), highest first. A module may
# import from its own layer or any layer below; a package missing here fails the
# layer test, so that a new package gets a place.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"cli", "console"}),
    frozenset({"gateway"}),
    frozenset({"admission"}),
    frozenset({"policy", "cluster", "identity"}),
    frozenset({"images", "audit", "store", "lab"}),
    frozenset({"engine_api", "engine"}),
)
# Same-layer imports that are still forbidden: policy is pure and knows nothing of
# the admission pipeline or of images.
FORBIDDEN: dict[str, frozenset[str]] = {"policy": frozenset({"admission", "images"})}

MAX_LINES = 400
MAX_ANY_IN_POLICY = 10


@dataclass(frozen=True)
class Module:
    """One source file: its dotted name, path and parsed tree."""

    name: str
    path: Path
    tree: ast.Module
    lines: int

    @property
    def is_package(self) -> bool:
        """Whether this is a package's __init__.py (relative imports resolve from it)."""
        return self.path.name == "__init__.py"

    @property
    def package(self) -> str:
        """The top-level package under moorage ('gateway' for moorage.gateway.http)."""
        parts = self.name.split(".")
        return parts[1] if len(parts) > 1 else ""


def _load() -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for path in sorted((SRC / ROOT_PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        text = path.read_text(encoding="utf-8")
        name = ".".join(parts)
        modules[name] = Module(name, path, ast.parse(text, str(path)), len(text.splitlines()))
    return modules


MODULES = _load()


def _rel(module: Module) -> str:
    return str(module.path.relative_to(SRC.parent))


# -- imports ---------------------------------------------------------------------------


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth (lazy ones in functions included), except
    those under `if TYPE_CHECKING:`, which never run."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield from _import_nodes_of(other)
            continue
        yield from _import_nodes_of(child)


def _import_nodes_of(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
    yield from _import_nodes(node)


def _resolve(dotted: str) -> str | None:
    """The most specific known module a dotted name lands in (a class imported from a
    module resolves to that module)."""
    while dotted:
        if dotted in MODULES:
            return dotted
        dotted = dotted.rpartition(".")[0]
    return None


def _imports(module: Module) -> set[str]:
    """The moorage modules this module imports at run time."""
    found: set[str] = set()
    for node in _import_nodes(module.tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            if node.level:
                base = module.name.split(".")
                if not module.is_package:
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join([*base, node.module] if node.module else base)
            else:
                prefix = node.module or ""
            # `from pkg import sub` imports the submodule when there is one.
            targets = [f"{prefix}.{alias.name}" for alias in node.names]
        for target in targets:
            if target.split(".")[0] != ROOT_PACKAGE:
                continue
            resolved = _resolve(target)
            if resolved is not None and resolved != module.name:
                found.add(resolved)
    return found


GRAPH = {name: _imports(module) for name, module in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            advanced = False
            for target in edges:
                if target not in index:
                    index[target] = low[target] = counter
                    counter += 1
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph.get(target, ())))))
                    advanced = True
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _layer(package: str) -> int | None:
    for rank, members in enumerate(LAYERS):
        if package in members:
            return rank
    return None


def _layer_violations() -> list[str]:
    problems: list[str] = []
    for name, targets in sorted(GRAPH.items()):
        source = MODULES[name]
        if not source.package:
            continue
        mine = _layer(source.package)
        if mine is None:
            problems.append(f"{_rel(source)}: package {source.package!r} has no layer in LAYERS")
            continue
        for target in sorted(targets):
            theirs_pkg = MODULES[target].package
            theirs = _layer(theirs_pkg)
            if not theirs_pkg or theirs_pkg == source.package:
                continue
            if theirs is None or theirs < mine:
                problems.append(f"{name} -> {target} (upward: {source.package} imports {theirs_pkg})")
            elif theirs_pkg in FORBIDDEN.get(source.package, frozenset()):
                problems.append(f"{name} -> {target} ({source.package} must not import {theirs_pkg})")
    return problems


# -- docstrings ------------------------------------------------------------------------


def _is_overload(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(
        (isinstance(d, ast.Name) and d.id == "overload")
        or (isinstance(d, ast.Attribute) and d.attr == "overload")
        for d in node.decorator_list
    )


def _base_name(base: ast.expr) -> str | None:
    if isinstance(base, ast.Subscript):
        base = base.value
    if isinstance(base, ast.Name):
        return base.id
    if isinstance(base, ast.Attribute):
        return base.attr
    return None


def _class_index() -> dict[str, list[ast.ClassDef]]:
    index: dict[str, list[ast.ClassDef]] = {}
    for module in MODULES.values():
        for node in ast.walk(module.tree):
            if isinstance(node, ast.ClassDef):
                index.setdefault(node.name, []).append(node)
    return index


CLASSES = _class_index()


def _inherits_doc(cls: ast.ClassDef, method: str, seen: frozenset[str] = frozenset()) -> bool:
    """Whether a moorage base class documents `method` (pydoc shows the inherited
    docstring for an override, as inspect.getdoc does)."""
    for base in cls.bases:
        name = _base_name(base)
        if name is None or name in seen:
            continue
        for parent in CLASSES.get(name, []):
            for node in parent.body:
                if (
                    isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                    and node.name == method
                    and ast.get_docstring(node)
                ):
                    return True
            if _inherits_doc(parent, method, seen | {name}):
                return True
    return False


def _undocumented(module: Module) -> Iterator[str]:
    for node in module.tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        if node.name.startswith("_"):
            continue
        if not ast.get_docstring(node) and not (
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _is_overload(node)
        ):
            yield f"{_rel(module)}:{node.lineno} {node.name}"
        if not isinstance(node, ast.ClassDef):
            continue
        for member in node.body:
            if not isinstance(member, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if member.name.startswith("_") or _is_overload(member) or ast.get_docstring(member):
                continue
            if _inherits_doc(node, member.name):
                continue
            yield f"{_rel(module)}:{member.lineno} {node.name}.{member.name}"


def _any_uses(module: Module) -> int:
    return sum(
        1
        for node in ast.walk(module.tree)
        if (isinstance(node, ast.Name) and node.id == "Any")
        or (isinstance(node, ast.Attribute) and node.attr == "Any")
    )


# -- the checks ------------------------------------------------------------------------


def test_the_scan_sees_the_source() -> None:
    # A wrong SRC would make every check below pass vacuously.
    assert "moorage.gateway.server" in MODULES or "moorage.gateway" in MODULES
    assert len(MODULES) > 50
    assert any(GRAPH.values())


def test_no_import_cycles() -> None:
    cycles = _cycles(GRAPH)
    assert not cycles, "import cycles (lazy imports included):\n" + "\n".join(
        "  " + " <-> ".join(cycle) for cycle in cycles
    )


def test_imports_follow_the_layer_order() -> None:
    problems = _layer_violations()
    assert not problems, "imports against the layer order (docs/development.md, The packages):\n" + "\n".join(
        "  " + p for p in problems
    )


def _packages() -> list[object]:
    """One test case per package, so a failure names the package it is in."""
    return [pytest.param(p, id=p or ROOT_PACKAGE) for p in sorted({m.package for m in MODULES.values()})]


@pytest.mark.parametrize("package", _packages())
def test_no_module_over_400_lines(package: str) -> None:
    large = sorted(
        f"{_rel(m)}: {m.lines} lines"
        for m in MODULES.values()
        if m.package == package and m.lines > MAX_LINES
    )
    assert not large, f"modules over {MAX_LINES} lines:\n" + "\n".join("  " + x for x in large)


@pytest.mark.parametrize("package", _packages())
def test_every_public_name_has_a_docstring(package: str) -> None:
    missing = [
        entry for module in MODULES.values() if module.package == package for entry in _undocumented(module)
    ]
    assert not missing, f"{len(missing)} public names without a docstring:\n" + "\n".join(
        "  " + x for x in missing
    )


def test_policy_uses_any_sparingly() -> None:
    counts = {_rel(m): n for m in MODULES.values() if m.package == "policy" and (n := _any_uses(m))}
    total = sum(counts.values())
    assert total < MAX_ANY_IN_POLICY, (
        f"`Any` appears {total} times in policy/ (limit {MAX_ANY_IN_POLICY}):\n"
        + ("\n".join(f"  {path}: {n}" for path, n in sorted(counts.items())))
    )


# -- the checker checks itself ---------------------------------------------------------


def test_cycle_finder_reports_each_cycle_once() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"f"}, "f": {"e"}, "g": set()}
    assert sorted(_cycles(graph)) == [["a", "b", "c"], ["e", "f"]]


def test_lazy_imports_count_and_type_checking_imports_do_not() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    import hidden\n"
        "else:\n"
        "    import fallback\n"
        "def f():\n"
        "    import lazy\n"
        "    if typing.TYPE_CHECKING:\n"
        "        import hidden_too\n"
    )
    names = {alias.name for node in _import_nodes(tree) for alias in node.names}
    assert names == {"TYPE_CHECKING", "fallback", "lazy"}
