"""Request heads read by llhttp (httptools), with the pure framing core as the judge.

``http.parse_request_head`` is the reference: strict RFC 9112, a precise message for
every refusal. This module reads the common case in C and falls back to the
reference for everything else, so the two can't disagree:

- the same byte-level refusals are checked first (size, one blank line at the end,
  NUL, bare CR or LF), with C-speed ``bytes`` operations;
- a head with any byte outside visible ASCII, HTAB, CR and LF goes to the reference;
- llhttp's result is used only when it reads exactly the lines the reference reads:
  the request line is ``METHOD SP /target SP HTTP/1.x`` byte for byte, every header
  line is ``name:value`` with the name llhttp reported, and there are as many
  headers as lines;
- anything llhttp refuses, an upgrade, an unknown method or version, a repeated
  framing header: the reference parses it again and gives its answer and message;
- the framing rules after the fields (Content-Length, Transfer-Encoding, Host,
  Content-Type) are the reference's own function.

tests/unit/gateway/test_cframing.py checks the two against each other on generated
and mutated heads.
"""

from __future__ import annotations

import re

import httptools

from moorage.gateway.http.limits import DEFAULT as _DEFAULT
from moorage.gateway.http.limits import Limits
from moorage.gateway.http.request import (
    _BAD_PERCENT,
    _METHODS,
    _SINGLE,
    RequestHead,
    _check_framing,
    parse_request_head,
)

__all__ = ["parse_request_head_c"]

_PLAIN = re.compile(rb"[\t\r\n\x20-\x7e]*")  # visible ASCII, SP, HTAB and line ends
_TARGET = re.compile(rb'/[!"$-~]*')  # the reference's origin-form target
_TCHAR = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class _Fields:
    __slots__ = ("headers", "url")

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))


def parse_request_head_c(raw: bytes, limits: Limits | None = None) -> RequestHead:
    """The same result as ``http.parse_request_head(raw, limits)``, read by llhttp
    where that is certain to agree; the reference otherwise."""
    limits = limits or _DEFAULT
    size = len(raw)
    crlf = raw.count(b"\r\n")
    if (
        size > limits.max_head_bytes
        or raw.find(b"\r\n\r\n") != size - 4
        or raw.count(b"\n") != crlf
        or raw.count(b"\r") != crlf
        or crlf - 2 > limits.max_headers
        or _PLAIN.fullmatch(raw) is None  # also refuses NUL
    ):
        return parse_request_head(raw, limits)
    fields = _Fields()
    parser = httptools.HttpRequestParser(fields)
    try:
        parser.feed_data(raw)
    except (httptools.HttpParserError, httptools.HttpParserUpgrade):
        return parse_request_head(raw, limits)
    method = parser.get_method()
    version = parser.get_http_version()
    url = fields.url
    if (
        version not in ("1.1", "1.0")
        or method.decode("ascii") not in _METHODS
        or _TARGET.fullmatch(url) is None
        or not raw.startswith(b"%s %s HTTP/%s\r\n" % (method, url, version.encode()))
        or len(fields.headers) != crlf - 2
    ):
        return parse_request_head(raw, limits)
    target = url.decode("ascii")
    if "%" in target and _BAD_PERCENT.search(target.partition("?")[0]):
        return parse_request_head(raw, limits)  # refused, as the reference words it
    lines = raw[:-4].split(b"\r\n")
    headers: list[tuple[str, str]] = []
    lower: dict[str, str] = {}
    for line, (name, _value) in zip(lines[1:], fields.headers, strict=True):
        if not line.startswith(name + b":") or _TCHAR.fullmatch(name) is None:
            return parse_request_head(raw, limits)
        # the value as the reference takes it: everything after the colon, OWS trimmed
        text_name = name.decode("ascii")
        value = line[len(name) + 1 :].decode("ascii").strip(" \t")
        headers.append((text_name, value))
        lname = text_name.lower()
        if lname not in lower:
            lower[lname] = value
        elif lname in _SINGLE:
            return parse_request_head(raw, limits)
        elif lname == "connection":
            lower[lname] += ", " + value
    http_version = "HTTP/" + version
    _check_framing(http_version, lower)
    return RequestHead(method.decode("ascii"), target, http_version, tuple(headers), lower)
