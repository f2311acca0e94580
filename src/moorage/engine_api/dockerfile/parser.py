"""parser.Parse: a Dockerfile's bytes to instruction nodes (lines, directives, continuations,
comments, flags), as buildkit's ``frontend/dockerfile/parser`` reads them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from moorage.engine_api.dockerfile.errors import DockerfileError, _InstructionError
from moorage.engine_api.dockerfile.gotext import (
    _GO_SPACE,
    _GO_SPACE_BYTE,
    _go_lower,
    _go_trim,
    _go_trim_left,
    _is_surrogate,
)

_RE_WHITESPACE = re.compile(r"[\t\v\f\r ]+")  # parser.go: reWhitespace (ASCII only)
# parser.go: reDirectives; Go's \s is [\t\n\f\r ] and $ is the end of the text.
_RE_DIRECTIVE = re.compile(r"#[\t\n\f\r ]*([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*\Z")
_MAX_LINE = 64 * 1024 - 1  # bufio.MaxScanTokenSize, less the newline (parser.go:handleScannerError)


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
