"""Rules that aren't built in: CEL expressions and opa-docker-authz Rego policies.

CEL (through ``cel-python``) sees these variables, and a rule is violated when its
expression is ``true``:

- ``request``: the parsed JSON body (``{}`` when there is none)
- ``kind``: the operation, e.g. ``container.create``
- ``method``, ``path``, ``query`` (a map of lists), ``user``, ``team``, ``teams``,
  ``labels`` (the labels the request sets)

Rego runs unchanged through ``regopy`` with opa-docker-authz's input document
(``Method``, ``Path``, ``Query``, ``Headers``, ``Body``, ``User``, ``AuthMethod``)
and its default query ``data.docker.authz.allow``; a request is violating when the
query is not ``true``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # celpy loads slowly; it is imported where a rule is compiled
    import celpy

__all__ = ["CelRule", "RegoRule", "compile_cel"]


def compile_cel(expr: str) -> celpy.Runner:
    """Compile a CEL expression; ``ValueError`` with the position when it doesn't parse."""
    import celpy

    env = celpy.Environment()
    try:
        return env.program(env.compile(expr))
    except celpy.CELParseError as exc:
        lines = [line for line in str(exc).splitlines() if line.strip()]
        where = f" near column {lines[-1].index('^') + 1}" if lines and "^" in lines[-1] else ""
        raise ValueError(f"CEL expression does not parse{where}: {expr!r}") from exc
    except Exception as exc:  # celpy raises several types for bad programs
        raise ValueError(f"CEL expression is not valid: {exc}") from exc


@dataclass
class CelRule:
    """A compiled ``spec.custom`` rule: violated when its CEL expression holds."""

    id: str
    expr: str
    message: str
    fix: str
    kinds: tuple[str, ...]
    program: celpy.Runner

    def violated(self, variables: dict[str, object]) -> bool:
        """True when the expression holds. Raises ``RuntimeError`` when it can't be
        evaluated (the caller fails closed)."""
        import celpy

        try:
            result = self.program.evaluate({k: celpy.json_to_cel(v) for k, v in variables.items()})
        except celpy.CELEvalError as exc:
            raise RuntimeError(f"custom rule {self.id}: {exc.args[0] if exc.args else exc}") from exc
        except Exception as exc:
            # celpy lets Python errors escape for some inputs (``exists`` over a null
            # list raises TypeError); any of them means "can't tell", so fail closed.
            raise RuntimeError(f"custom rule {self.id}: can't be evaluated on this request: {exc}") from exc
        if isinstance(result, celpy.CELEvalError):
            raise RuntimeError(f"custom rule {self.id}: {result.args[0] if result.args else result}")
        if not isinstance(result, bool | celpy.celtypes.BoolType):
            raise RuntimeError(f"custom rule {self.id}: the expression gave {result!r}, not a bool")
        return bool(result)


class RegoRule:
    """One Rego module with its query, evaluated by regopy."""

    def __init__(self, rule_id: str, path: Path, query: str, message: str) -> None:
        import regopy

        self.id = rule_id
        self.query = query
        self.message = message
        self.source = path.read_text()
        self._interp = regopy.Interpreter()
        try:
            self._interp.add_module(path.stem, self.source)
            self._interp.query(query)
        except Exception as exc:
            first = str(exc).strip().splitlines()
            raise ValueError(f"rego {rule_id}: {path} does not load: {' '.join(first[:4])[:300]}") from exc

    def allowed(self, rego_input: dict[str, object]) -> bool:
        """Whether the query is true for this input. Raises ``RuntimeError`` when the
        policy can't be evaluated (the caller fails closed)."""
        self._interp.set_input(rego_input)
        try:
            out = self._interp.query(self.query)
        except Exception as exc:
            raise RuntimeError(f"rego {self.id}: {str(exc)[:300]}") from exc
        text = str(out).strip()
        if text == "undefined":
            return False  # as opa-docker-authz treats an undefined decision
        if not out.ok():
            raise RuntimeError(f"rego {self.id}: {text[:300]}")
        try:
            expressions = json.loads(text).get("expressions", [])
        except (ValueError, AttributeError) as exc:
            raise RuntimeError(f"rego {self.id}: unreadable result {text[:100]!r}") from exc
        # Never Output.binding(): regopy aborts the process on an undefined binding.
        return bool(expressions == [True])
