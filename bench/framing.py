"""Request-head framing: the pure core (the reference) against llhttp (httptools).

    python bench/framing.py

Times ``http.parse_request_head`` and ``cframing.parse_request_head_c`` on the heads
Docker clients send most (a bare ``/_ping``; the docker CLI's list with its usual
headers; a compose-style create head), and prints µs per head and the ratio.
"""

from __future__ import annotations

import sys
import timeit

from moorage.gateway.cframing import parse_request_head_c
from moorage.gateway.http import parse_request_head

HEADS = {
    "/_ping, bare": b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n",
    "docker ps": b"GET /v1.47/containers/json?all=1 HTTP/1.1\r\nHost: api.moby.localhost\r\n"
    b"User-Agent: Docker-Client/28.0.1 (linux)\r\nAccept-Encoding: gzip\r\n\r\n",
    "compose create": b"POST /v1.41/containers/create?name=p-web-1 HTTP/1.1\r\nHost: localhost\r\n"
    b"User-Agent: docker-compose/1.29.2 docker-py/5.0.3 Linux/6.1\r\nAccept-Encoding: gzip, deflate\r\n"
    b"Accept: */*\r\nConnection: keep-alive\r\nContent-Type: application/json\r\nContent-Length: 1234\r\n\r\n",
}


def main() -> int:
    print("| head | pure core (µs) | llhttp (µs) | llhttp / pure |\n| --- | ---: | ---: | ---: |")
    for name, raw in HEADS.items():
        assert parse_request_head(raw) == parse_request_head_c(raw)
        n = 50_000
        pure = min(timeit.repeat(lambda r=raw: parse_request_head(r), number=n, repeat=5)) / n * 1e6  # type: ignore[misc]
        c = min(timeit.repeat(lambda r=raw: parse_request_head_c(r), number=n, repeat=5)) / n * 1e6  # type: ignore[misc]
        print(f"| {name} | {pure:.2f} | {c:.2f} | {c / pure:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
