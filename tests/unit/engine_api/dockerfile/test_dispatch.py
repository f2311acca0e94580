"""The images a classic-builder Dockerfile reads, as Docker Engine 20.10.24 resolves them.

Expectations come from reading the 20.10.24 source (builder/dockerfile/ and the vendored
buildkit frontend/dockerfile parser, instructions and shell lexer); no dockerd was run to
confirm them. Each case names the rule it pins.
"""

from __future__ import annotations

import pytest

from moorage.engine_api.dockerfile import DockerfileError, ImageRef, image_references

F = "FROM"
C = "COPY --from"

Case = tuple[str, bytes, dict[str, str | None], list[tuple[str, int, str]]]

CASES: list[Case] = [
    ("one image", b"FROM alpine\n", {}, [("alpine", 1, F)]),
    ("no trailing newline, tag and digest",
     b"FROM 127.0.0.1:5000/lab/debian:bookworm@sha256:" + b"a" * 64,
     {}, [("127.0.0.1:5000/lab/debian:bookworm@sha256:" + "a" * 64, 1, F)]),
    ("multi-stage: names are case-insensitive, indices and images",
     b"FROM golang:1.20 AS build\n"
     b"RUN make\n"
     b"FROM build AS test\n"
     b"FROM Build\n"
     b"COPY --from=BUILD /a /b\n"
     b"COPY --from=0 /a /b\n"
     b"COPY --from=+1 /a /b\n"
     b"COPY --from=lab/tools:1 /a /b\n"
     b"FROM scratch\n"
     b"COPY --from=test /x /y\n",
     {}, [("golang:1.20", 1, F), ("lab/tools:1", 8, C)]),
    ("the current stage's own name is an image, not a stage",
     b"FROM alpine AS a\nCOPY --from=a /x /y\n", {}, [("alpine", 1, F), ("a", 2, C)]),
    ("FROM x AS x reads image x", b"FROM app AS app\n", {}, [("app", 1, F)]),
    ("a stage may be called scratch and then FROM scratch is that stage",
     b"FROM alpine AS scratch\nFROM scratch\nFROM SCRATCH\n", {}, [("alpine", 1, F)]),
    ("FROM scratch is exact: SCRATCH is an image name", b"FROM SCRATCH\n", {}, [("SCRATCH", 1, F)]),
    ("an empty --from copies from the context", b"FROM alpine\nCOPY --from= /a /b\n", {}, [("alpine", 1, F)]),
    ("an index out of int64 range is an image name",
     b"FROM alpine\nCOPY --from=99999999999999999999 /a /b\n",
     {}, [("alpine", 1, F), ("99999999999999999999", 2, C)]),
    ("--from value quoted", b'FROM alpine\nCOPY --from="busybox" --chown=1 /a /b\n', {},
     [("alpine", 1, F), ("busybox", 2, C)]),
    ("COPY in JSON form", b'FROM alpine\nCOPY --from=busybox ["/a", "/b"]\n', {},
     [("alpine", 1, F), ("busybox", 2, C)]),
    ("ARG default", b"ARG BASE=alpine\nARG TAG\nFROM ${BASE}:${TAG:-3.18}\n", {}, [("alpine:3.18", 3, F)]),
    ("ARG overridden", b"ARG BASE=alpine\nARG TAG\nFROM ${BASE}:${TAG:-3.18}\n",
     {"TAG": "edge", "BASE": "busybox"}, [("busybox:edge", 3, F)]),
    ("a null build arg keeps the default", b"ARG BASE=alpine\nFROM $BASE\n", {"BASE": None}, [("alpine", 2, F)]),
    ("an empty build arg is a value", b"ARG BASE=alpine\nFROM img${BASE}\n", {"BASE": ""}, [("img", 2, F)]),
    (":+ alternative, unset", b"ARG DEBUG\nFROM img${DEBUG:+-debug}\n", {}, [("img", 2, F)]),
    (":+ alternative, set", b"ARG DEBUG\nFROM img${DEBUG:+-debug}\n", {"DEBUG": "1"}, [("img-debug", 2, F)]),
    (":- default for an empty value", b"ARG V=\nFROM ${V:-alpine}\n", {}, [("alpine", 2, F)]),
    ("a build arg without an ARG is invisible", b"FROM ${IMG:-alpine}\n", {"IMG": "evil"}, [("alpine", 1, F)]),
    ("the builtin proxy args are visible without an ARG",
     b"FROM ${HTTP_PROXY:-alpine}\n", {"HTTP_PROXY": "evil"}, [("evil", 1, F)]),
    ("ARG without a value resets the default", b"ARG A=one\nARG A\nFROM ${A:-two}\n", {}, [("two", 3, F)]),
    ("ARG without a value takes a build arg", b"ARG A=one\nARG A\nFROM ${A:-two}\n", {"A": "three"},
     [("three", 3, F)]),
    ("one ARG's values see only earlier ARGs", b"ARG A=x B=$A\nFROM img${B}\n", {}, [("img", 2, F)]),
    ("a later ARG sees an earlier one", b"ARG A=x\nARG B=$A\nFROM img$B\n", {}, [("imgx", 3, F)]),
    ("ARG values lose their quotes", b'ARG IMG="alpine"\nFROM $IMG\n', {}, [("alpine", 2, F)]),
    ("ARG names are expanded too", b"ARG N=IMG\nARG ${N}=busybox\nFROM $IMG\n", {}, [("busybox", 3, F)]),
    ("ARG ignores flags", b"ARG --foo=bar IMG=busybox\nFROM $IMG\n", {}, [("busybox", 2, F)]),
    ("quotes in FROM", b"FROM 'alp'\"ine\"\n", {}, [("alpine", 1, F)]),
    ("a leading byte-order mark in the word is skipped by text/scanner",
     "FROM \ufeffalpine\n".encode(), {}, [("alpine", 1, F)]),
    ("ARG after FROM is not for FROM",
     b"FROM alpine\nARG IMG=busybox\nFROM ${IMG:-debian}\n", {"IMG": "x"}, [("alpine", 1, F), ("debian", 3, F)]),
    ("lower-case instructions and AS", b"from alpine as Base\nfrom base\ncopy --from=BASE /a /b\n", {},
     [("alpine", 1, F)]),
    ("AS matched with Unicode simple folding (long s)",
     "FROM alpine A\u017f b\nFROM b\n".encode(), {}, [("alpine", 1, F)]),
    ("a Kelvin sign lowers to k: a stage reference",
     "FROM alpine AS kit\nFROM \u212aIT\n".encode(), {}, [("alpine", 1, F)]),
    ("--platform", b"ARG P=linux/arm64\nFROM --platform=$P alpine AS a\nFROM --platform=linux/amd64 a\n", {},
     [("alpine", 2, F)]),
    ("escape directive", b"# escape=`\nFROM alpine `\n  AS base\nCOPY --from=busybox C:\\ D:\\\n", {},
     [("alpine", 2, F), ("busybox", 4, C)]),
    ("directives: syntax, then escape, any case and spacing",
     b"# syntax=docker/dockerfile:1\n  #  ESCAPE = `\nARG X=alp`\nine\nFROM $X\n", {}, [("alpine", 5, F)]),
    ("continuations skip comments and empty lines; continued lines keep their indent",
     b"FROM \\\n# comment\n\n\\\n   alpine \\\n  AS a\nCOPY \\\n --from=busybox /a /b\n", {},
     [("alpine", 1, F), ("busybox", 7, C)]),
    ("a continuation at the end of the file", b"FROM alpine \\\n# c\n", {}, [("alpine", 1, F)]),
    ("indented comments and instructions", b"  # c\n\t FROM alpine\n", {}, [("alpine", 2, F)]),
    ("BOM and CRLF", b"\xef\xbb\xbfFROM alpine\r\nCOPY --from=busybox /a /b\r\n", {},
     [("alpine", 1, F), ("busybox", 2, C)]),
    ("ONBUILD COPY --from is stored, not read, by this build",
     b"FROM alpine\nONBUILD COPY --from=busybox /a /b\n", {}, [("alpine", 1, F)]),
    ("heredoc syntax is plain arguments in 20.10", b"FROM alpine\nCOPY <<EOF /x\n", {}, [("alpine", 1, F)]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("dockerfile", "build_args", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_image_references(
    dockerfile: bytes, build_args: dict[str, str | None], expected: list[tuple[str, int, str]]
) -> None:
    assert image_references(dockerfile, build_args) == [ImageRef(*e) for e in expected]


ErrorCase = tuple[str, bytes, dict[str, str | None], str]

ERRORS: list[ErrorCase] = [
    ("empty file", b"", {}, "no instructions"),
    ("only comments", b"# escape=`\n# hello\n\n", {}, "no instructions"),
    ("unknown instruction", b"FROM alpine\nFETCH x\n", {}, "line 2: unknown instruction: FETCH"),
    ("heredoc bodies are instructions in 20.10", b"FROM alpine\nRUN <<EOF\necho hi\nEOF\n", {},
     "line 3: unknown instruction: ECHO"),
    ("an instruction before FROM", b"RUN true\nFROM alpine\n", {}, "line 1: no build stage"),
    ("FROM without image", b"FROM\n", {}, "one or three arguments"),
    ("FROM with two words", b"FROM alpine b\n", {}, "one or three arguments"),
    ("comments only at the start of a line", b"FROM alpine # base\n", {}, "one or three arguments"),
    ("invalid stage name", b"FROM alpine AS 1x\n", {}, "invalid name for build stage"),
    ("unset ARG makes an empty base", b"ARG IMG\nFROM $IMG\n", {}, "line 2: base name ($IMG) should not be blank"),
    ("a stage ARG is not visible to FROM", b"FROM alpine\nARG IMG=busybox\nFROM $IMG\n", {"IMG": "x"},
     "line 3: base name"),
    ("required variable", b"FROM ${X:?needs-X}\n", {}, "X: needs-X"),
    ("required variable, no colon", b"FROM ${X?}\n", {}, "X: is not allowed to be unset"),
    ("the default word is always evaluated", b"ARG X=a\nFROM ${X:-${Y:?}}\n", {}, "Y: is not allowed to be unset"),
    ("missing brace", b"FROM ${X\n", {}, "missing ':' in substitution"),
    ("no colon", b"FROM ${X-y}\n", {}, "missing ':' in substitution"),
    ("bad substitution", b"FROM ${}\n", {}, "bad substitution"),
    ("unsupported modifier", b"FROM ${X:=y}\n", {}, "unsupported modifier"),
    ("unterminated quote", b"FROM 'alpine\n", {}, "single-quote"),
    ("a variable name meeting a non-ASCII character", "ARG \u00c9=x\nFROM img$\u00c9\n".encode(), {},
     "non-ASCII"),
    ("COPY --from is not expanded in 20.10", b"ARG IMG=busybox\nFROM alpine\nCOPY --from=${IMG} /a /b\n", {},
     "line 3: COPY --from '${IMG}' is not an image reference"),
    ("--from needs =", b"FROM alpine\nCOPY --from busybox /a /b\n", {}, "Missing a value on flag: from"),
    ("duplicate --from", b"FROM alpine\nCOPY --from=a --from=b /a /b\n", {}, "Duplicate flag specified: from"),
    ("unknown flag", b"FROM --foo=bar alpine\n", {}, "Unknown flag: foo"),
    ("--platform needs a value", b"FROM --platform alpine\n", {}, "Missing a value on flag: platform"),
    ("--platform expanding to nothing", b"ARG P\nFROM --platform=$P alpine\n", {}, "failed to parse platform"),
    ("COPY needs two arguments", b"FROM alpine\nCOPY --from=busybox /a\n", {}, "at least two arguments"),
    ("COPY JSON of non-strings", b'FROM alpine\nCOPY ["a", 1]\n', {}, "strings only"),
    ("an index for the current stage", b"FROM alpine\nCOPY --from=0 /a /b\n", {}, "refers to current build stage"),
    ("an index past the current stage", b"FROM alpine\nFROM busybox\nCOPY --from=5 /a /b\n", {},
     "line 3: invalid from flag value 5: index out of bounds"),
    ("a negative index", b"FROM alpine\nFROM busybox\nCOPY --from=-1 /a /b\n", {}, "index out of bounds"),
    ("a duplicate stage name", b"FROM alpine AS a\nFROM busybox AS A\n", {}, "line 2: a stage name already used"),
    ("long s does not lower to s", "FROM alpine AS stage\nFROM \u017ftage\n".encode(), {},
     "is not an image reference"),
    ("invalid escape directive", b"# escape=x\nFROM alpine\n", {}, "invalid escape token"),
    ("repeated escape directive", b"# escape=`\n# escape=\\\nFROM alpine\n", {}, "only one escape"),
    ("a directive after an empty line is a comment", b"\n# escape=`\nFROM alpine `\n", {},
     "one or three arguments"),
    ("ONBUILD FROM", b"FROM alpine\nONBUILD FROM busybox\n", {}, "isn't allowed as an ONBUILD trigger"),
    ("ONBUILD ONBUILD", b"FROM alpine\nONBUILD ONBUILD RUN x\n", {}, "Chaining ONBUILD"),
    ("ARG with a blank name", b"ARG =x\nFROM alpine\n", {}, "ARG names can not be blank"),
    ("an empty continued line is an unknown instruction", b"FROM alpine\n\\\n", {}, "unknown instruction"),
    ("a line longer than the scanner's buffer", b"FROM alpine\nRUN " + b"x" * 70000 + b"\n", {}, "line 2: line longer"),
    ("a name whose value depends on Go's map order",
     b"ARG K=a=b\nARG ${K}=x\nARG a=y\nFROM img$a\n", {}, "line 4: FROM: failed to process"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("dockerfile", "build_args", "message"), [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS]
)
def test_refused(dockerfile: bytes, build_args: dict[str, str | None], message: str) -> None:
    with pytest.raises(DockerfileError) as info:
        image_references(dockerfile, build_args)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


MULTI = b"FROM alpine AS base\nFROM base AS test\nCOPY --from=lab/secret /a /b\nFROM busybox AS final\n"


def test_target_builds_only_the_stages_up_to_it() -> None:
    assert image_references(MULTI, {}, target="base") == [ImageRef("alpine", 1, F)]
    # instructions.HasStage compares with EqualFold: upper case and the long s match.
    assert image_references(MULTI, {}, target="TE\u017fT") == [
        ImageRef("alpine", 1, F),
        ImageRef("lab/secret", 3, C),
    ]
    assert [r.ref for r in image_references(MULTI, {})] == ["alpine", "lab/secret", "busybox"]


def test_missing_target_is_refused() -> None:
    with pytest.raises(DockerfileError, match="failed to reach build target nope"):
        image_references(MULTI, {}, target="nope")


def test_error_names_the_line() -> None:
    with pytest.raises(DockerfileError) as info:
        image_references(b"FROM alpine\n\nFROM ${X:?set-X}\n", {})
    assert info.value.line == 3
    assert str(info.value).startswith("Dockerfile line 3: ")
