"""Expose one loopback TCP port of the root namespace inside lab namespaces.

Each lab node's dockerd lives in its own network namespace, where 127.0.0.1 is
its own loopback. So that ``docker push 127.0.0.1:PORT/x`` reaches the lab
registry from any node, this process listens on 127.0.0.1:PORT *inside* each
node's namespace and connects to 127.0.0.1:PORT in the namespace it started in.
A socket keeps the namespace it was created in, so one process can do both.

Run as ``python -m moorage.lab.forward PORT NETNS [NETNS ...]``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading

from moorage.lab._sys import NETNS_DIR, setns


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


def _serve(listener: socket.socket, port: int) -> None:
    while True:
        client, _ = listener.accept()
        try:
            upstream = socket.create_connection(("127.0.0.1", port), timeout=10)
            upstream.settimeout(None)
        except OSError:
            client.close()
            continue
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pump, args=(a, b), daemon=True).start()


def listeners(port: int, namespaces: list[str]) -> list[socket.socket]:
    """Bind 127.0.0.1:port inside each namespace; return to our own namespace after."""
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    socks: list[socket.socket] = []
    try:
        for name in namespaces:
            fd = os.open(NETNS_DIR / name, os.O_RDONLY)
            try:
                setns(fd)
            finally:
                os.close(fd)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
            sock.listen(128)
            socks.append(sock)
    finally:
        setns(home)
        os.close(home)
    return socks


def main(argv: list[str]) -> int:
    """``PORT NETNS...``: serve 127.0.0.1:PORT in each namespace, connecting to
    127.0.0.1:PORT of this one; runs until killed."""
    port = int(argv[0])
    threads = [
        threading.Thread(target=_serve, args=(sock, port), daemon=True) for sock in listeners(port, argv[1:])
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
