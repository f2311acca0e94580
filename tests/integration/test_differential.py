"""One reading, judged by the engine: Moorage's canonical model of a create body
against what a real dockerd (Debian 20.10) does with the very same bytes.

For security-relevant host config fields, hypothesis generates encodings: case and
Unicode folds, escaped keys, duplicates (a later scalar, a repeated object that
merges, a repeated array decoded into the same slice), top-level (deprecated
wrapper) against nested placement, string against list. Each body goes through
Moorage's decoder and, as sent, to the engine. Either Moorage refuses it, or:

- the engine's inspect shows, for every generated field, the value of Moorage's
  model (the model is the engine's reading), and
- the canonical re-encoding Moorage would forward creates a container whose
  inspect equals the one created from the client's bytes (the engine can't tell
  them apart).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moorage.engine_api.canonical import RequestError, encode_body, read_body
from moorage.lab import Lab, build_busybox, load_into
from moorage.lab.images import BUSYBOX_REF
from tests.conftest import needs_root, unique_name


class _Unix(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("docker", timeout=30)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(30)
        self.sock.connect(self.path)


def _send(sock: str, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
    conn = _Unix(sock)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
    finally:
        conn.close()
    try:
        return resp.status, json.loads(raw) if raw.strip() else None
    except ValueError:
        return resp.status, raw.decode(errors="replace")


@pytest.fixture(scope="module")
def engine() -> Iterator[str]:
    needs_root()
    lab = Lab(unique_name("dif"))
    lab.up(nodes=1, owner_pid=os.getpid())
    try:
        load_into(build_busybox(), [lab.client(1)])
        yield str(lab.socket_path(1))
    finally:
        lab.down()


# ------------------------------------------------------------------ encodings
# field -> values worth sending (each dangerous or telling)
FIELDS: dict[str, list[Any]] = {
    "Privileged": [True, False],
    "CapAdd": [["SYS_ADMIN"], "NET_ADMIN", ["CAP_SYS_PTRACE", "chown"]],
    "CapDrop": ["ALL", ["NET_RAW"]],
    "Binds": [["/:/host"], ["/etc:/h:ro"], []],
    "PidMode": ["host", ""],
    "IpcMode": ["host", "private"],
    "UTSMode": ["host"],
    "NetworkMode": ["host", "none", "bridge"],
    "SecurityOpt": [["seccomp=unconfined"], ["apparmor=unconfined"], ["no-new-privileges"]],
    "MaskedPaths": [[], ["/proc/kcore"]],
    "ReadonlyPaths": [[], ["/proc/sys"]],
    "Memory": [8 << 20, 0],
    "PidsLimit": [50],
    "ReadonlyRootfs": [True],
    "CgroupParent": ["/moorage-diff"],
    "Mounts": [[{"Type": "bind", "Source": "/", "Target": "/host"}], [{"Type": "tmpfs", "Target": "/t"}]],
}
_LONG_S, _KELVIN = "\u017f", "\u212a"


def _spellings(name: str) -> st.SearchStrategy[str]:
    """Keys Go's decoder matches to ``name``."""
    variants = {name, name.lower(), name.upper(), name.swapcase()}
    if "s" in name.lower():
        i = name.lower().index("s")
        variants.add(name[:i] + _LONG_S + name[i + 1 :])
    if "k" in name.lower():
        i = name.lower().index("k")
        variants.add(name[:i] + _KELVIN + name[i + 1 :])
    return st.sampled_from(sorted(variants))


def _key_json(key: str, escape: bool) -> str:
    if escape:
        return '"' + "".join(f"\\u{ord(c):04x}" for c in key) + '"'
    return json.dumps(key, ensure_ascii=False)


@st.composite
def _members(draw: st.DrawFn) -> list[tuple[str, str, str]]:
    """(placement, key JSON, value JSON) members; placement is 'top' or 'host'."""
    out = []
    for _ in range(draw(st.integers(1, 4))):
        name = draw(st.sampled_from(sorted(FIELDS)))
        key = draw(_spellings(name))
        value = draw(st.sampled_from(FIELDS[name]))
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str) and draw(st.booleans()):
            value = value[0]  # string for list: only StrSlice fields take it
        where = draw(st.sampled_from(["host", "host", "top"]))
        out.append((where, _key_json(key, draw(st.booleans())), json.dumps(value)))
    return out


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    members = draw(_members())
    top = [f"{k}:{v}" for w, k, v in members if w == "top"]
    host = [f"{k}:{v}" for w, k, v in members if w == "host"]
    parts = [f'"Image":"{BUSYBOX_REF}"', '"Cmd":["true"]', *top]
    if host:
        if draw(st.booleans()) and len(host) > 1:  # the host config sent as two objects that merge
            cut = draw(st.integers(1, len(host) - 1))
            key2 = draw(_spellings("HostConfig"))
            parts.append('"HostConfig":{' + ",".join(host[:cut]) + "}")
            parts.append(f"{_key_json(key2, False)}:{{" + ",".join(host[cut:]) + "}")
        else:
            parts.append('"HostConfig":{' + ",".join(host) + "}")
    return ("{" + ",".join(parts) + "}").encode()


# ------------------------------------------------------------------ the judge
_COMPARED = sorted(FIELDS)


def _norm(field: str, value: Any) -> Any:
    if value is None or value == "":
        return None if field not in ("MaskedPaths", "ReadonlyPaths") or value is None else value
    if field in ("Memory", "PidsLimit") and value == 0:
        return None
    if field in ("Privileged", "ReadonlyRootfs") and value is False:
        return None
    if isinstance(value, list) and not value and field not in ("MaskedPaths", "ReadonlyPaths"):
        return None
    return value


def _create(engine: str, raw: bytes) -> tuple[int, Any]:
    return _send(engine, "POST", "/v1.41/containers/create", raw)


def _host_config(engine: str, cid: str) -> dict[str, Any]:
    status, doc = _send(engine, "GET", f"/v1.41/containers/{cid}/json")
    assert status == 200, doc
    _send(engine, "DELETE", f"/v1.41/containers/{cid}?force=1")
    return dict(doc["HostConfig"])


# A fixed sequence in CI (the suite must not flake); MOORAGE_DIFF_RANDOM=1 explores anew.
@settings(max_examples=int(os.environ.get("MOORAGE_DIFF_EXAMPLES", "120")), deadline=None,
          derandomize=not os.environ.get("MOORAGE_DIFF_RANDOM"),
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
@given(raw=bodies())
def test_the_engine_reads_what_moorage_reads(engine: str, raw: bytes) -> None:
    try:
        model = read_body("container.create", raw).value
    except RequestError:
        return  # Moorage refuses: nothing reaches the engine
    host = model.get("HostConfig") or {}
    status, created = _create(engine, raw)
    canon_status, canon = _create(engine, encode_body(model))
    # the engine accepts the client's bytes exactly when it accepts Moorage's encoding
    assert (status < 300) == (canon_status < 300), (raw, created, canon)
    if status >= 300:
        return
    seen = _host_config(engine, created["Id"])
    again = _host_config(engine, canon["Id"])
    for field in _COMPARED:
        if field in host:
            engine_value = seen.get(field)
            shares_host = "host" in (host.get("IpcMode"), host.get("PidMode")) or host.get("Privileged")
            if field == "SecurityOpt" and shares_host:
                # the engine itself adds label=disable to a privileged container or one
                # sharing the host's IPC or PID namespace (daemon/create.go,
                # generateSecurityOpt): its doing, not a reading
                engine_value = [o for o in engine_value or [] if o != "label=disable"] or None
            assert _norm(field, engine_value) == _norm(field, host[field]), (field, raw, host)
    # and the engine can't tell the canonical bytes from the client's
    for field in _COMPARED:
        assert seen.get(field) == again.get(field), (field, raw)


@pytest.mark.parametrize(
    "raw",
    [
        # examples the issue names, pinned so they run every time
        b'{"Image":"%s","Privileged":true}',
        b'{"Image":"%s","Binds":["/:/host"],"HostConfig":{"Memory":8388608}}',
        b'{"Image":"%s","HostConfig":{"Mounts":[{"Type":"bind","Source":"/","Target":"/a"}]},'
        b'"HostConfig":{"Mounts":[{"Target":"/b"}]}}',
        '{"Image":"%s","HostConfig":{"\u017fecurityOpt":["seccomp=unconfined"]}}'.encode(),
        b'{"Image":"%s","HostConfig":{"Privileged":true,"privileged":null}}',
        b'{"Image":"%s","HostConfig":{"CapAdd":"SYS_ADMIN"}}',
    ],
)
def test_pinned_examples(engine: str, raw: bytes) -> None:
    raw = raw.replace(b"%s", BUSYBOX_REF.encode())
    model = read_body("container.create", raw).value
    status, created = _create(engine, raw)
    assert status < 300, created
    seen = _host_config(engine, created["Id"])
    for field, value in (model.get("HostConfig") or {}).items():
        if field in FIELDS:
            assert _norm(field, seen.get(field)) == _norm(field, value), field
