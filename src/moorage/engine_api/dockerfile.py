"""The images a classic-builder Dockerfile reads, found the way Docker Engine 20.10 finds them. Pure.

``POST /build`` with the classic builder (Engine 20.10.24, ``builder/dockerfile/``) reads other
images in two places: the base of every stage (``FROM <image>``, unless the name is an earlier
stage's or ``scratch``) and the source of ``COPY --from=<image>`` (unless the value names an earlier
stage or is a stage index). A tenancy check has to see each of those names exactly as the engine
resolves them, so this module re-implements the engine's reading rather than approximating it:

- the line reader and parser of ``vendor/github.com/moby/buildkit/frontend/dockerfile/parser``
  (parser.go, split_command.go, line_parsers.go): lines, the ``# escape=`` directive, continuation
  lines, comments, instruction flags;
- the instruction checks of ``.../instructions/parse.go`` and ``bflag.go``;
- ``ARG`` before the first ``FROM`` and the build-args query (``builder/dockerfile/buildargs.go``,
  ``builder.go:processMetaArg``), and variable expansion with the shell lexer of
  ``.../shell/lex.go`` (which reads its input with Go's ``text/scanner``);
- stage resolution at dispatch time (``builder/dockerfile/dispatchers.go``, ``evaluator.go``).

Nothing here was checked against a running dockerd; every rule cites the 20.10.24 source it
comes from. Where Moorage can't be sure of the engine's reading (a variable name next to a
non-ASCII character, whose letter class depends on Go's Unicode tables; an expansion whose result
depends on Go's random map order) it raises :class:`DockerfileError`, so the caller refuses the
build instead of guessing.

What this reading can't see, and the caller must handle:

- ``ONBUILD`` triggers stored in a base image run in this build when a stage starts from that
  image (``dispatchers.go:initializeStage`` -> ``dispatchTriggeredOnBuild``); a trigger may be a
  ``COPY --from=<image>``. Only the base image's config shows them.
- ``ONBUILD COPY --from=...`` in this Dockerfile reads nothing now; it reads when another build
  starts from the image built here (the point above).
- BuildKit (``version=2``) reads Dockerfiles differently (predefined platform args, ``RUN
  --mount=from=``, heredocs with a syntax directive); this module is for the classic builder only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["DockerfileError", "ImageRef", "image_references"]

FROM = "FROM"
COPY_FROM = "COPY --from"


@dataclass(frozen=True)
class ImageRef:
    """An image a build reads: the name as the engine resolves it, after ARG expansion.

    ``ref`` may be anything the engine's image lookup accepts (``daemon/images/image.go:GetImage``):
    a name with tag or digest, a full or short image ID, a ``sha256:`` digest. ``line`` is the
    1-based line where the instruction starts; ``instruction`` is ``"FROM"`` or ``"COPY --from"``.
    """

    ref: str
    line: int
    instruction: str


class DockerfileError(ValueError):
    """The Dockerfile can't be read the way the engine reads it; the build must be refused."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.line = line
        text = f"Dockerfile line {line}: {message}" if line is not None else f"Dockerfile: {message}"
        super().__init__(text)


# --- Go's character classes and case rules -------------------------------------------------------

# unicode.IsSpace: the Latin-1 spaces plus the White_Space property (stable since Unicode 6.3).
_GO_SPACE = frozenset("\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000") | frozenset(
    chr(c) for c in range(0x2000, 0x200B)
)
# The same test applied to single bytes (rune(byte)), as extractBuilderFlags does.
_GO_SPACE_BYTE = frozenset("\t\n\v\f\r \x85\xa0")
_RE_WHITESPACE = re.compile(r"[\t\v\f\r ]+")  # parser.go: reWhitespace (ASCII only)
# parser.go: reDirectives; Go's \s is [\t\n\f\r ] and $ is the end of the text.
_RE_DIRECTIVE = re.compile(r"#[\t\n\f\r ]*([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*\Z")
# instructions/parse.go: parseBuildStageName
_RE_STAGE_NAME = re.compile(r"[a-z][a-z0-9\-_.]*")
_RE_GO_INT = re.compile(r"[+-]?[0-9]+")  # strconv.ParseInt(s, 10, 0) syntax
# Characters that can appear in anything distribution/reference.ParseAnyReference accepts.
_RE_REFERENCE_CHARS = re.compile(r"[A-Za-z0-9._:/@+-]+")
_MAX_LINE = 64 * 1024 - 1  # bufio.MaxScanTokenSize, less the newline (parser.go:handleScannerError)

# builder/dockerfile/buildargs.go: builtinAllowedBuildArgs, visible to FROM without an ARG.
_BUILTIN_ARGS = (
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
)
# command/command.go; instructions/parse.go:ParseInstruction refuses anything else.
_INSTRUCTIONS = frozenset(
    {
        "add", "arg", "cmd", "copy", "entrypoint", "env", "expose", "from", "healthcheck", "label",
        "maintainer", "onbuild", "run", "shell", "stopsignal", "user", "volume", "workdir",
    }
)  # fmt: skip


def _is_surrogate(c: str) -> bool:
    return "\udc80" <= c <= "\udcff"


def _go_trim_left(s: str) -> str:
    """bytes.TrimLeftFunc(s, unicode.IsSpace); an invalid byte decodes to U+FFFD, not a space."""
    i = 0
    while i < len(s) and s[i] in _GO_SPACE:
        i += 1
    return s[i:]


def _go_trim(s: str) -> str:
    """strings.TrimSpace."""
    s = _go_trim_left(s)
    j = len(s)
    while j > 0 and s[j - 1] in _GO_SPACE:
        j -= 1
    return s[:j]


def _go_lower(s: str) -> str:
    """strings.ToLower with Go's simple case mapping.

    Only U+0130 and the Kelvin sign lower to ASCII letters (Python's full mapping turns U+0130
    into two characters), which matters because stage names and instruction names are ASCII.
    """
    out = []
    for c in s:
        if c == "\u0130":
            out.append("i")
        elif c == "\u212a":
            out.append("k")
        else:
            low = c.lower()
            out.append(low if len(low) == 1 else c)
    return "".join(out)


def _go_equal_fold_ascii(s: str, lower_ascii: str) -> bool:
    """strings.EqualFold(s, t) for an all-lowercase ASCII ``t``: simple folding, so U+017F (long
    s) matches ``s`` and U+212A (Kelvin) matches ``k``, but U+0130 matches nothing ASCII."""
    if len(s) != len(lower_ascii):
        return False
    for a, b in zip(s, lower_ascii, strict=True):
        if a.lower() == b and a.isascii():
            continue
        if (a, b) in (("\u017f", "s"), ("\u212a", "k")):
            continue
        return False
    return True


def _go_parse_int(s: str) -> int | None:
    """strconv.ParseInt(s, 10, 0) on a 64-bit engine; None where Go returns an error."""
    if not _RE_GO_INT.fullmatch(s):
        return None
    n = int(s)
    return n if -(2**63) <= n < 2**63 else None


# --- parser.Parse -------------------------------------------------------------------------------


@dataclass
class _Node:
    """One instruction as parser.Parse leaves it (Node.Value, Flags, the arguments' text)."""

    cmd: str
    flags: list[str]
    rest: str
    line: int
    child: _Node | None = None


@dataclass
class _Directives:
    """parser.go: directives (the escape token and whether directives may still appear)."""

    escape: str = "\\"
    done: bool = False
    seen: set[str] = field(default_factory=set)

    def possible_directive(self, line: str, lineno: int) -> None:
        """parser.go: possibleParserDirective."""
        if self.done:
            return
        m = _RE_DIRECTIVE.match(line)
        if m is None:
            self.done = True
            return
        key = m.group(1).lower()
        if key not in ("escape", "syntax"):
            self.done = True
            return
        if key in self.seen:
            raise DockerfileError(f"only one {key} parser directive can be used", lineno)
        self.seen.add(key)
        if key == "escape":
            value = m.group(2)
            if value not in ("`", "\\"):
                raise DockerfileError(f"invalid escape token {value!r} does not match ` or \\", lineno)
            self.escape = value

    def trim_continuation(self, line: str) -> tuple[str, bool]:
        """parser.go: trimContinuationCharacter with lineContinuationRegex
        ``([^E])E[ \\t]*$|^E[ \\t]*$``: the escape token, then only blanks, ends the line, unless the
        escape token itself precedes it. Returns the line and whether the instruction ends here."""
        e = re.escape(self.escape)
        m = re.search(rf"([^{e}]){e}[ \t]*\Z|^{e}[ \t]*\Z", line)
        if m is None:
            return line, True
        return line[: m.start()] + (m.group(1) or ""), False


def _split_lines(data: bytes) -> list[str]:
    """bufio.Scanner with ScanLines: split at LF, drop one CR before it, no empty last line.

    Bytes that aren't UTF-8 are kept as surrogate escapes, so byte-level rules still see them.
    """
    raw = data.split(b"\n")
    if raw and raw[-1] == b"":
        raw.pop()
    lines = []
    for n, line in enumerate(raw, start=1):
        if len(line) > _MAX_LINE:
            raise DockerfileError(f"line longer than the engine's maximum of {_MAX_LINE} bytes", n)
        if line.endswith(b"\r"):
            line = line[:-1]
        if n == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]  # parser.go:Parse strips a byte-order mark on the first line only
        lines.append(line.decode("utf-8", "surrogateescape"))
    return lines


def _is_comment(line: str) -> bool:
    """parser.go: isComment (``^#.*$`` after leading white space)."""
    return _go_trim_left(line).startswith("#")


def _trim_comment(line: str) -> str:
    """parser.go: trimComments; ``^#.*$`` spans the whole line, which holds no newline."""
    return "" if line.startswith("#") else line


def _parse(data: bytes) -> tuple[list[_Node], str]:
    """parser.go: Parse. Returns the instructions and the escape token."""
    d = _Directives()
    lines = _split_lines(data)
    nodes: list[_Node] = []
    i = 0
    while i < len(lines):
        token = _go_trim_left(lines[i])
        d.possible_directive(token, i + 1)
        i += 1
        start = i
        line, end = d.trim_continuation(_trim_comment(token))
        if end and line == "":
            continue
        while not end and i < len(lines):
            raw = lines[i]
            # Directives are over by now: a continued line follows a line that wasn't one.
            i += 1
            if _is_comment(raw):
                continue
            cont = _trim_comment(raw)
            if _go_trim_left(cont) == "":
                continue  # an empty continuation line: only a warning in 20.10
            cont, end = d.trim_continuation(cont)
            line += cont
        nodes.append(_new_node(line, start))
    if not nodes:
        raise DockerfileError("file with no instructions")
    return nodes, d.escape


def _new_node(line: str, lineno: int) -> _Node:
    """parser.go: newNodeFromLine and split_command.go: splitCommand."""
    parts = _RE_WHITESPACE.split(_go_trim(line), maxsplit=1)
    cmd = _go_lower(parts[0])
    flags: list[str] = []
    rest = ""
    if len(parts) == 2:
        rest, flags = _extract_builder_flags(parts[1])
    rest = _go_trim(rest)
    node = _Node(cmd, flags, rest, lineno)
    if cmd == "onbuild" and rest:
        node.child = _new_node(rest, lineno)  # line_parsers.go: parseSubCommand
    return node


def _extract_builder_flags(line: str) -> tuple[str, list[str]]:
    """split_command.go: extractBuilderFlags.

    The Go code walks bytes, not characters (``rune(line[pos])``): each byte becomes the
    character of the same number, bytes 0x85 and 0xA0 count as white space, and the escape is
    always a backslash. Walking the Latin-1 reading of the bytes reproduces that exactly.
    """
    raw = line.encode("utf-8", "surrogateescape")
    s = raw.decode("latin-1")
    words: list[str] = []
    in_spaces, in_word, in_quote = 0, 1, 2
    phase = in_spaces
    word = ""
    quote = ""
    blank_ok = False
    pos = 0
    n = len(s)
    while pos <= n:
        ch = s[pos] if pos != n else ""
        if phase == in_spaces:
            if pos == n:
                break
            if ch in _GO_SPACE_BYTE:
                pos += 1
                continue
            if ch != "-" or pos + 1 == n or s[pos + 1] != "-":
                return raw[pos:].decode("utf-8", "surrogateescape"), words
            phase = in_word
        if phase in (in_word, in_quote) and pos == n:
            if word != "--" and (blank_ok or word):
                words.append(word)
            break
        if phase == in_word:
            if ch in _GO_SPACE_BYTE:
                phase = in_spaces
                if word == "--":
                    return raw[pos:].decode("utf-8", "surrogateescape"), words
                if blank_ok or word:
                    words.append(word)
                word = ""
                blank_ok = False
                pos += 1
                continue
            if ch in ("'", '"'):
                quote = ch
                blank_ok = True
                phase = in_quote
                pos += 1
                continue
            if ch == "\\":
                if pos + 1 == n:
                    pos += 1
                    continue
                pos += 1
                ch = s[pos]
            word += ch
            pos += 1
            continue
        # in_quote
        if ch == quote:
            phase = in_word
            pos += 1
            continue
        if ch == "\\":
            if pos + 1 == n:
                phase = in_word
                pos += 1
                continue
            pos += 1
            ch = s[pos]
        word += ch
        pos += 1
    return "", words


def _parse_words(rest: str, escape: str) -> list[str]:
    """line_parsers.go: parseWords (used by ARG). Quotes and escapes stay in the words; an
    invalid byte becomes U+FFFD, as utf8.DecodeRuneInString and ``string(rune)`` make it."""
    s = "".join("\ufffd" if _is_surrogate(c) else c for c in rest)
    words: list[str] = []
    in_spaces, in_word, in_quote = 0, 1, 2
    phase = in_spaces
    word = ""
    quote = ""
    blank_ok = False
    pos = 0
    n = len(s)
    while pos <= n:
        ch = s[pos] if pos != n else ""
        if phase == in_spaces:
            if pos == n:
                break
            if ch in _GO_SPACE:
                pos += 1
                continue
            phase = in_word
        if phase in (in_word, in_quote) and pos == n:
            if blank_ok or word:
                words.append(word)
            break
        if phase == in_word:
            if ch in _GO_SPACE:
                phase = in_spaces
                if blank_ok or word:
                    words.append(word)
                word = ""
                blank_ok = False
                pos += 1
                continue
            if ch in ("'", '"'):
                quote = ch
                blank_ok = True
                phase = in_quote
            if ch == escape:
                if pos + 1 == n:
                    pos += 1
                    continue  # an escape token at the end of the line is dropped
                word += ch
                pos += 1
                ch = s[pos]
            word += ch
            pos += 1
            continue
        # in_quote
        if ch == quote:
            phase = in_word
        if ch == escape and quote != "'":
            if pos + 1 == n:
                phase = in_word
                pos += 1
                continue
            pos += 1
            word += ch
            ch = s[pos]
        word += ch
        pos += 1
    return words


def _json_or_words(rest: str) -> list[str]:
    """line_parsers.go: parseMaybeJSONToList (COPY's arguments, needed only for their count)."""
    text = _go_trim_left(rest)
    if text.startswith("["):

        def _reject(name: str) -> object:
            raise ValueError(name)  # Go's encoding/json has no NaN or Infinity

        try:
            value, _ = json.JSONDecoder(parse_constant=_reject).raw_decode(text)
        except ValueError:
            value = None
        if isinstance(value, list):
            if not all(isinstance(v, str) for v in value):
                raise _InstructionError(
                    "when using JSON array syntax, arrays must be comprised of strings only"
                )
            return value
    return _RE_WHITESPACE.split(rest) if rest else []


# --- instructions.Parse -------------------------------------------------------------------------


class _InstructionError(Exception):
    """An error in one instruction; its line is added where it is caught."""


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


# --- shell/lex.go -------------------------------------------------------------------------------


class _LexError(Exception):
    """shell/lex.go refuses the word."""


class _Env:
    """What ProcessWord sees: shell/lex.go:BuildEnvs over the engine's ``key=value`` list.

    The list comes from a Go map, so its order is random; a key holding ``=`` (possible only by
    expanding an ARG name) can make two entries claim one name, and then the engine's result is
    not determined. Such names are refused when looked up.
    """

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values: dict[str, str] = {}
        self.ambiguous: set[str] = set()
        for key, value in values.items():
            name, _, rest = f"{key}={value}".partition("=")
            if name in self.values and self.values[name] != rest:
                self.ambiguous.add(name)
            self.values[name] = rest

    def get(self, name: str) -> tuple[str, bool]:
        if name in self.ambiguous:
            raise _LexError(f"{name}: its value depends on the engine's map order")
        if name in self.values:
            return self.values[name], True
        return "", False


class _Lexer:
    """shell/lex.go: shellWord.processStopOn and friends, for ProcessWord (one word out)."""

    def __init__(self, word: str, escape: str, env: _Env) -> None:
        # text/scanner: an invalid byte reads as U+FFFD, and a leading byte-order mark is skipped.
        chars = ["\ufffd" if _is_surrogate(c) else c for c in word]
        if chars[:1] == ["\ufeff"]:
            chars = chars[1:]
        self.chars = chars
        self.pos = 0
        self.escape = escape
        self.env = env

    def peek(self) -> str | None:
        return self.chars[self.pos] if self.pos < len(self.chars) else None

    def next(self) -> str | None:
        ch = self.peek()
        if ch is not None:
            self.pos += 1
        return ch

    def word(self, stop: str | None = None) -> str:
        out: list[str] = []
        while (ch := self.peek()) is not None:
            if stop is not None and ch == stop:
                self.next()
                return "".join(out)
            if ch == "'":
                out.append(self.single_quote())
            elif ch == '"':
                out.append(self.double_quote())
            elif ch == "$":
                out.append(self.dollar())
            else:
                self.next()
                if ch == self.escape:
                    ch = self.next()
                    if ch is None:
                        break  # an escape at the end of the word is dropped
                out.append(ch)
        if stop is not None:
            raise _LexError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(out)

    def single_quote(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.next()
            if ch is None:
                raise _LexError("unexpected end of statement while looking for matching single-quote")
            if ch == "'":
                return "".join(out)
            out.append(ch)

    def double_quote(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.peek()
            if ch is None:
                raise _LexError("unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                self.next()
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            self.next()
            if ch == self.escape:
                after = self.peek()
                if after is None:
                    continue
                if after in ('"', "$", self.escape):
                    ch = after
                    self.next()
            out.append(ch)

    def stop_on_brace(self) -> str:
        try:
            return self.word("}")
        except _LexError:
            if self.peek() is None:
                raise _LexError("syntax error: missing '}'") from None
            raise

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            if name == "":
                return "$"
            return self.env.get(name)[0]
        self.next()
        after = self.peek()
        if after is None:
            raise _LexError("syntax error: missing '}'")
        if after in ("{", "}", ":"):
            raise _LexError("syntax error: bad substitution")
        name = self.name()
        ch = self.next()
        if ch == "}":
            return self.env.get(name)[0]
        if ch == "?":
            word = self.stop_on_brace()
            value, found = self.env.get(name)
            if not found:
                raise _LexError(f"{name}: {word or 'is not allowed to be unset'}")
            return value
        if ch == ":":
            modifier = self.next()
            word = self.stop_on_brace()  # evaluated (and may fail) whatever the modifier does
            value, found = self.env.get(name)
            if modifier == "+":
                return word if value != "" else value
            if modifier == "-":
                return word if value == "" else value
            if modifier == "?":
                if not found:
                    raise _LexError(f"{name}: {word or 'is not allowed to be unset'}")
                if value == "":
                    raise _LexError(f"{name}: {word or 'is not allowed to be empty'}")
                return value
            raise _LexError(f"unsupported modifier ({modifier}) in substitution")
        raise _LexError("missing ':' in substitution")

    def name(self) -> str:
        """processName: letters, digits and ``_``; or a run of digits; or one special parameter.

        Go decides "letter" and "digit" with its own Unicode tables; for a non-ASCII character
        Moorage can't be sure they agree with Python's, so it refuses rather than guess.
        """
        out: list[str] = []
        while (ch := self.peek()) is not None:
            if not ch.isascii():
                raise _LexError(f"a variable name meets the non-ASCII character {ch!r}")
            if not out and ch.isdigit():
                while (d := self.peek()) is not None and (d.isdigit() or not d.isascii()):
                    if not d.isascii():
                        raise _LexError(f"a variable name meets the non-ASCII character {d!r}")
                    out.append(d)
                    self.next()
                return "".join(out)
            if not out and ch in "@*#?-$!0":
                self.next()
                return ch
            if not (ch.isalnum() or ch == "_"):
                break
            out.append(ch)
            self.next()
        return "".join(out)


def _expand(word: str, escape: str, env: _Env, line: int, what: str) -> str:
    """shell.Lex.ProcessWord; its errors fail the build, so they are refusals here."""
    try:
        return _Lexer(word, escape, env).word()
    except _LexError as exc:
        raise DockerfileError(f"{what}: failed to process {word!r}: {exc}", line) from None


# --- dispatch -----------------------------------------------------------------------------------


def _visible_args(meta: Mapping[str, str | None], build_args: Mapping[str, str | None]) -> _Env:
    """buildargs.go: getAllFromMapping over the ARGs before FROM plus the builtin proxy args.

    A build arg overrides a value only when it is not null (``getBuildArg``: ``ok && v != nil``);
    a null one (the CLI's ``--build-arg NAME`` with NAME unset in its environment) leaves the
    default. An ARG without a default and without a build arg is unset, not empty.
    """
    values: dict[str, str] = {}
    for key in [*meta, *(k for k in _BUILTIN_ARGS if k not in meta)]:
        override = build_args.get(key)
        if override is not None:
            values[key] = override
        elif (default := meta.get(key)) is not None:
            values[key] = default
    return _Env(values)


def _check_ref(ref: str, line: int, what: str) -> str:
    """A name no image lookup can accept (``ParseAnyReference`` and then the pull both refuse it)
    fails the build; say so now rather than hand the caller something that isn't a name."""
    if not _RE_REFERENCE_CHARS.fullmatch(ref):
        raise DockerfileError(f"{what} {ref!r} is not an image reference the engine can read", line)
    return ref


def image_references(
    dockerfile: bytes, build_args: Mapping[str, str | None], *, target: str = ""
) -> list[ImageRef]:
    """Every image a classic-builder build of ``dockerfile`` reads, in the engine's order.

    ``build_args`` is the decoded ``buildargs`` query (a ``null`` value is ``None``); ``target``
    is the ``target`` query, which makes the engine build only the stages up to that one. Stage
    references (by name, case-insensitively, or by index for ``COPY --from``) and ``scratch``
    are not images and are left out. Raises :class:`DockerfileError` wherever the engine would
    fail the build while reading names, or where Moorage can't be sure how the engine reads one.
    """
    nodes, escape = _parse(dockerfile)
    meta_instructions, stages = _instructions(nodes, escape)

    # builder.go: build: a target truncates the stages (instructions.HasStage uses EqualFold).
    if target:
        for position, stage in enumerate(stages):
            if _go_equal_fold_ascii(target, stage.name) and stage.name:
                stages = stages[: position + 1]
                break
        else:
            raise DockerfileError(f"failed to reach build target {target} in Dockerfile")

    # builder.go: processMetaArg. Every name and value of one ARG is expanded with the args
    # visible before it; then they are added in order, and ``ARG X`` resets X's default.
    meta: dict[str, str | None] = {}
    for pairs, line in meta_instructions:
        env = _visible_args(meta, build_args)
        expanded = [
            (
                _expand(key, escape, env, line, "ARG"),
                None if value is None else _expand(value, escape, env, line, "ARG"),
            )
            for key, value in pairs
        ]
        for key, value in expanded:
            meta[key] = value
    env = _visible_args(meta, build_args)  # dispatchers.go: getExpandedString (GetAllMeta)

    refs: list[ImageRef] = []
    names: set[str] = set()  # evaluator.go: stagesBuildResults.indexed (lower-cased names)
    built = 0  # len(stagesBuildResults.flat)
    for stage in stages:
        if stage.name and stage.name in names:
            raise DockerfileError(f"{stage.name} stage name already used", stage.line)
        # dispatchers.go: initializeStage. An empty platform after expansion fails platforms.Parse.
        if stage.platform and not _expand(stage.platform, escape, env, stage.line, "FROM --platform"):
            raise DockerfileError(
                f"failed to parse platform {stage.platform!r}: it expands to nothing", stage.line
            )
        base = _expand(stage.base, escape, env, stage.line, "FROM")
        if base == "":  # dispatchers.go: getFromImage
            raise DockerfileError(f"base name ({stage.base}) should not be blank", stage.line)
        # dispatchers.go: getImageOrStage: an earlier stage's name first, then scratch (exactly).
        if _go_lower(base) not in names and base != "scratch":
            refs.append(ImageRef(_check_ref(base, stage.line, FROM), stage.line, FROM))
        for copy in stage.copies:
            # dispatchers.go: dispatchCopy -> getImageMount -> stagesBuildResults.get
            if copy.source == "" or _go_lower(copy.source) in names:
                continue
            index = _go_parse_int(copy.source)
            if index is None:
                refs.append(ImageRef(_check_ref(copy.source, copy.line, COPY_FROM), copy.line, COPY_FROM))
            elif index == built:
                message = f"invalid from flag value {copy.source}: refers to current build stage"
                raise DockerfileError(message, copy.line)
            elif not 0 <= index < built:
                message = f"invalid from flag value {copy.source}: index out of bounds"
                raise DockerfileError(message, copy.line)
        if stage.name:
            names.add(stage.name)
        built += 1
    return refs
