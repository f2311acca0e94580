"""instructions.Parse: the stages (FROM, COPY --from) and the ARGs before the first FROM,
with the instruction and flag checks of ``instructions/parse.go`` and ``bflag.go``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from moorage.engine_api.dockerfile.errors import DockerfileError, _InstructionError
from moorage.engine_api.dockerfile.gotext import _go_equal_fold_ascii, _go_lower
from moorage.engine_api.dockerfile.parser import _RE_WHITESPACE, _json_or_words, _Node, _parse_words

# instructions/parse.go: parseBuildStageName
_RE_STAGE_NAME = re.compile(r"[a-z][a-z0-9\-_.]*")
# command/command.go; instructions/parse.go:ParseInstruction refuses anything else.
_INSTRUCTIONS = frozenset(
    {
        "add", "arg", "cmd", "copy", "entrypoint", "env", "expose", "from", "healthcheck", "label",
        "maintainer", "onbuild", "run", "shell", "stopsignal", "user", "volume", "workdir",
    }
)  # fmt: skip


def _parse_flags(words: list[str], known: tuple[str, ...]) -> dict[str, str]:
    """bflag.go: BFlags.Parse for string flags."""
    used: dict[str, str] = {}
    for arg in words:
        if not arg.startswith("--"):
            raise _InstructionError(f"Arg should start with -- : {arg}")
        if arg == "--":
            break
        name, eq, value = arg[2:].partition("=")
        if name not in known:
            raise _InstructionError(f"Unknown flag: {name}")
        if name in used:
            raise _InstructionError(f"Duplicate flag specified: {name}")
        if not eq:
            raise _InstructionError(f"Missing a value on flag: {name}")
        used[name] = value
    return used


@dataclass
class _Copy:
    source: str  # the --from value, never expanded in 20.10 (commands.go: CopyCommand.Expand)
    line: int


@dataclass
class _Stage:
    base: str
    name: str
    platform: str
    line: int
    copies: list[_Copy] = field(default_factory=list)


_ArgPairs = list[tuple[str, str | None]]


def _parse_from(node: _Node) -> _Stage:
    """instructions/parse.go: parseFrom and parseBuildStageName."""
    args = _RE_WHITESPACE.split(node.rest) if node.rest else []
    name = ""
    if len(args) == 3 and _go_equal_fold_ascii(args[1], "as"):
        name = _go_lower(args[2])
        if not _RE_STAGE_NAME.fullmatch(name):
            raise _InstructionError(
                f"invalid name for build stage: {args[2]!r}, "
                "name can't start with a number or contain symbols"
            )
    elif len(args) != 1:
        raise _InstructionError("FROM requires either one or three arguments")
    flags = _parse_flags(node.flags, ("platform",))
    return _Stage(base=args[0], name=name, platform=flags.get("platform", ""), line=node.line)


def _parse_copy(node: _Node) -> _Copy:
    """instructions/parse.go: parseCopy. ``--from X`` (no ``=``) is refused: string flags need
    ``=`` (bflag.go)."""
    if len(_json_or_words(node.rest)) < 2:
        raise _InstructionError(
            "COPY requires at least two arguments, but only one was provided. "
            "Destination could not be determined"
        )
    flags = _parse_flags(node.flags, ("chown", "from", "chmod"))
    return _Copy(source=flags.get("from", ""), line=node.line)


def _parse_arg(node: _Node, escape: str) -> _ArgPairs:
    """line_parsers.go: parseNameOrNameVal and instructions/parse.go: parseArg (which never
    parses its flags, so ``ARG --x=y A`` is accepted)."""
    words = _parse_words(node.rest, escape)
    if not words:
        raise _InstructionError("ARG requires at least one argument")
    pairs: _ArgPairs = []
    for word in words:
        key, eq, value = word.partition("=")
        if eq and not key:
            raise _InstructionError("ARG names can not be blank")
        pairs.append((key, value if eq else None))
    return pairs


def _check_onbuild(node: _Node) -> None:
    """instructions/parse.go: parseOnBuild. The trigger is stored, not run, in this build."""
    if node.child is None:
        raise _InstructionError("ONBUILD requires at least one argument")
    _parse_flags(node.flags, ())
    trigger = node.child.cmd.upper()
    if trigger == "ONBUILD":
        raise _InstructionError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger in ("MAINTAINER", "FROM"):
        raise _InstructionError(f"{trigger} isn't allowed as an ONBUILD trigger")


def _instructions(nodes: list[_Node], escape: str) -> tuple[list[tuple[_ArgPairs, int]], list[_Stage]]:
    """instructions/parse.go: Parse: ARGs before the first FROM (with their lines), then the stages."""
    meta: list[tuple[_ArgPairs, int]] = []
    stages: list[_Stage] = []
    for node in nodes:
        try:
            if node.cmd not in _INSTRUCTIONS:
                raise _InstructionError(f"unknown instruction: {node.cmd.upper()}")
            if node.cmd == "from":
                stages.append(_parse_from(node))
                continue
            if node.cmd == "arg":
                pairs = _parse_arg(node, escape)
                if not stages:
                    meta.append((pairs, node.line))
                    continue
            elif node.cmd == "copy":
                copy = _parse_copy(node)
                if stages:
                    stages[-1].copies.append(copy)
            elif node.cmd == "onbuild":
                _check_onbuild(node)
            # Other instructions read no image; their own argument errors are left to the engine.
            if not stages:
                raise _InstructionError("no build stage in current context")
        except _InstructionError as exc:
            raise DockerfileError(str(exc), node.line) from None
    return meta, stages
