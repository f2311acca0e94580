"""shell/lex.go: variable expansion in FROM and COPY --from values and in ARG defaults."""

from __future__ import annotations

from collections.abc import Mapping

from moorage.engine_api.dockerfile.errors import DockerfileError
from moorage.engine_api.dockerfile.gotext import _is_surrogate


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
