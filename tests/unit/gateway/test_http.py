from __future__ import annotations

import json

import pytest

from moorage.gateway.http import HttpError, Limits, error_response, parse_request_head, parse_response_head


def head(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_parses_a_docker_request() -> None:
    h = parse_request_head(head("POST /v1.41/containers/create?name=x HTTP/1.1", "Host: docker",
                                "Content-Length: 12", "Content-Type: application/json"))  # fmt: skip
    assert h.method == "POST" and h.path == "/v1.41/containers/create"
    assert h.query == {"name": ["x"]} and h.content_length == 12 and h.keep_alive


@pytest.mark.parametrize(
    ("raw", "status", "words"),
    [
        (head("GET /x"), 400, "malformed request line"),
        (head("GET x HTTP/1.1"), 400, "malformed request target"),
        (head("GET /x HTTP/2.0"), 505, "protocol version"),
        (head("BREW /x HTTP/1.1"), 405, "unsupported method"),
        (head("GET /x HTTP/1.1", "Bad Header"), 400, "malformed header"),
        (head("GET /x HTTP/1.1", " folded"), 400, "folding"),
        (head("POST /x HTTP/1.1", "Content-Length: 1", "Content-Length: 2"), 400, "conflicting"),
        (head("POST /x HTTP/1.1", "Content-Length: -1"), 400, "invalid Content-Length"),
        (head("POST /x HTTP/1.1", "Content-Length: 1", "Transfer-Encoding: chunked"), 400, "both"),
        (head("POST /x HTTP/1.1", "Transfer-Encoding: gzip"), 501, "Transfer-Encoding"),
    ],
)
def test_malformed_requests_say_what_is_wrong(raw: bytes, status: int, words: str) -> None:
    with pytest.raises(HttpError) as err:
        parse_request_head(raw)
    assert err.value.status == status and words in err.value.message


def test_limits_are_enforced() -> None:
    many = head("GET /x HTTP/1.1", *[f"X-{i}: y" for i in range(10)])
    with pytest.raises(HttpError) as err:
        parse_request_head(many, Limits(max_headers=5))
    assert err.value.status == 431
    with pytest.raises(HttpError) as err:
        parse_request_head(head("GET /" + "a" * 100 + " HTTP/1.1"), Limits(max_head_bytes=50))
    assert err.value.status == 431


def test_error_response_is_dockers_json_shape() -> None:
    raw = error_response(403, "moorage: no", keep_alive=False)
    status_line, _, rest = raw.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 403 Forbidden"
    assert b"Connection: close" in rest
    assert json.loads(raw.split(b"\r\n\r\n", 1)[1]) == {"message": "moorage: no"}


def test_upstream_garbage_is_a_502() -> None:
    with pytest.raises(HttpError) as err:
        parse_response_head(b"SSH-2.0-OpenSSH\r\n\r\n")
    assert err.value.status == 502


def test_scan_response_head_reads_the_framing_and_refuses_ambiguity() -> None:
    from moorage.gateway.http import scan_response_head

    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: Close\r\n\r\n"
    assert scan_response_head(head) == (200, "", 2, True)
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n"
    assert scan_response_head(chunked) == (200, "chunked", None, False)
    assert scan_response_head(b"HTTP/1.0 204\r\n\r\n") == (204, "", None, False)
    for bad in (b"HTTP/2 200 OK\r\n\r\n", b"HTTP/1.1 2x0 OK\r\n\r\n",
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length: 3\r\n\r\n",
                b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"):  # fmt: skip
        with pytest.raises(HttpError) as err:
            scan_response_head(bad)
        assert err.value.status == 502
