from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import pytest

from moorage.engine import EngineClient, EngineError


def _serve_once(path: Path, response: bytes) -> threading.Thread:
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(path))
    srv.listen(1)

    def run() -> None:
        conn, _ = srv.accept()
        conn.recv(65536)
        conn.sendall(response)
        conn.close()
        srv.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_json_error_message_is_surfaced(tmp_path: Path) -> None:
    body = json.dumps({"message": "No such container: x"}).encode()
    _serve_once(
        tmp_path / "s",
        b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body,
    )
    with pytest.raises(EngineError, match="404 No such container: x") as err:
        EngineClient(str(tmp_path / "s")).call("GET", "/containers/x/json")
    assert err.value.status == 404


def test_unreachable_engine_names_the_socket(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match=f"unix://{tmp_path}/missing"):
        EngineClient(str(tmp_path / "missing")).call("GET", "/_ping")
    assert EngineClient(str(tmp_path / "missing")).ping() is False


def test_json_answer_is_decoded(tmp_path: Path) -> None:
    body = b'{"ID": "abc"}'
    _serve_once(
        tmp_path / "s",
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n" + body,
    )
    assert EngineClient(str(tmp_path / "s")).call("GET", "/info") == {"ID": "abc"}
