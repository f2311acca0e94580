"""The adversarial corpus as data: escape attempts and ordinary workloads.

Each :class:`Attempt` is one hand-written Engine API exchange (exact bytes: key
spellings, duplicates, Unicode folds, escapes, paths, framing) plus a judge that
reads the *bare* engine afterwards and names the dangerous state it finds (or
``None``). ``tests/integration/test_escapes.py`` first shows each attempt escapes
on a bare engine, then that ``moorage up`` with its default policy refuses it.

Facts about the engine used here come from reading moby v20.10.24 (the engine
the lab runs): ``runconfig/config_unix.go`` (the deprecated top-level host config
in ``ContainerConfigWrapper``, used when no ``HostConfig`` key is given),
``api/server/router/container/container_routes.go`` (a host config on ``start``
below API 1.24), ``oci/caps/utils.go`` (capabilities upper-cased with Go's
``strings.ToUpper``, so ``\u017f`` becomes ``S`` and ``\u0131`` becomes ``I``),
``daemon/daemon_unix.go`` (``seccomp:``/``apparmor:`` with the old ``:``
separator), Go 1.19's ``encoding/json`` (keys matched exactly or with Unicode
simple folding; a repeated object merges into the same struct; a repeated map
merges per key; a slice is replaced) and ``net/http`` (path percent-decoded
before routing; ``Transfer-Encoding: chunked`` wins over ``Content-Length``,
matched case-insensitively, and obs-fold continuation lines are joined).

Tokens written ``@NAME@`` are filled per run: ``NAME`` (this attempt's object
name, always starting ``mx``), ``IMG`` (the lab's busybox), ``AGENT`` (an
operator's container made straight on the engine, with the host's root, network
and pid namespace), ``LABSOCK`` (the engine's own socket), ``VERSION`` (a
service's version, set by the attempt's setup).
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import re
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from moorage.engine import EngineClient, EngineError

__all__ = ["ATTEMPTS", "BOTH", "DEV", "WORKLOADS", "Attempt", "Env", "Response", "Workload", "fill", "tar"]

BOTH = ("alice", "root")  # a developer and an admin
DEV = ("alice",)  # tenancy: what a developer may not touch, and an admin may


# ------------------------------------------------------------------ wire data
@dataclass
class Response:
    """One HTTP response as read off the socket."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def is_docker_refusal(self) -> bool:
        """A 4xx in Docker's error shape: ``{"message": "..."}``."""
        doc = self.json()
        return 400 <= self.status < 500 and isinstance(doc, dict) and isinstance(doc.get("message"), str)

    def __repr__(self) -> str:
        return f"<{self.status} {self.body[:240]!r}>"


class Env(Protocol):
    """One run of an attempt: through the bare engine, or the gateway as a user."""

    engine: EngineClient  # the bare engine: the only judge of what happened
    vars: dict[str, str]
    phase: str  # "bare", "alice", "root"

    def send(self, data: bytes, responses: int = 1) -> list[Response]: ...


Attack = Callable[[dict[str, str]], bytes]
Judge = Callable[[Env, list[Response]], str | None]
Setup = Callable[[Env], None]


def fill(text: str, vars: dict[str, str]) -> str:
    for key, value in vars.items():
        text = text.replace(f"@{key}@", value)
    return text


def http(
    method: str,
    path: str,
    body: str | bytes | None,
    vars: dict[str, str],
    ctype: str = "application/json",
    headers: tuple[tuple[str, str], ...] = (),
) -> bytes:
    """One HTTP/1.1 request, written byte for byte (tokens filled first)."""
    head = f"{method} {fill(path, vars)} HTTP/1.1\r\nHost: docker\r\n"
    for k, v in headers:
        head += f"{k}: {v}\r\n"
    data = b""
    if body is not None:
        data = fill(body, vars).encode() if isinstance(body, str) else body
        head += f"Content-Type: {ctype}\r\nContent-Length: {len(data)}\r\n"
    return head.encode() + b"\r\n" + data


def req(
    method: str,
    path: str,
    body: str | bytes | None = None,
    ctype: str = "application/json",
    headers: tuple[tuple[str, str], ...] = (),
) -> Attack:
    return lambda v: http(method, path, body, v, ctype, headers)


def tar(files: dict[str, bytes | None]) -> bytes:
    """A tar archive in memory (None makes a directory)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                t.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                t.addfile(info, io.BytesIO(data))
    return out.getvalue()


def image_archive(ref: str) -> bytes:
    """A docker-archive tarball of a one-file image named ``ref`` (what ``docker load`` sends)."""
    layer = tar({"mx": b"mx"})
    diff = "sha256:" + hashlib.sha256(layer).hexdigest()
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    config = json.dumps({"architecture": arch, "os": "linux", "config": {"Cmd": ["sh"]},
                         "rootfs": {"type": "layers", "diff_ids": [diff]}}).encode()  # fmt: skip
    name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": name, "RepoTags": [ref], "Layers": ["l/layer.tar"]}]).encode()
    return tar({"l/": None, "l/layer.tar": layer, name: config, "manifest.json": manifest})


@dataclass(frozen=True)
class Attempt:
    """One escape attempt: its bytes, how to judge the engine afterwards, who tries it."""

    name: str
    group: str
    attack: Attack
    judge: Judge
    responses: int = 1
    setup: Setup | None = None
    users: tuple[str, ...] = BOTH


# ------------------------------------------------------------------ judges
def _get(env: Env, path: str) -> Any:
    try:
        return env.engine.call("GET", fill(path, env.vars))
    except EngineError as exc:
        if exc.status == 404:
            return None
        raise


def container(check: Callable[[dict[str, Any]], str | None]) -> Judge:
    """Judge the container ``@NAME@`` by its inspect (no container: no escape)."""

    def judge(env: Env, _: list[Response]) -> str | None:
        doc = _get(env, "/containers/@NAME@/json")
        return None if doc is None else check(doc)

    return judge


def _hc(doc: dict[str, Any], key: str) -> Any:
    return (doc.get("HostConfig") or {}).get(key)


def privileged(doc: dict[str, Any]) -> str | None:
    return "HostConfig.Privileged is true" if _hc(doc, "Privileged") is True else None


def _cap(c: str) -> str:
    # Python's str.upper maps U+017F and U+0131 as Go's strings.ToUpper does
    return c.upper().removeprefix("CAP_")


def cap_sys_admin(doc: dict[str, Any]) -> str | None:
    bad = [c for c in (_hc(doc, "CapAdd") or []) if _cap(c) in ("SYS_ADMIN", "ALL")]
    return f"HostConfig.CapAdd holds {bad}" if bad else None


def host_bind(doc: dict[str, Any]) -> str | None:
    bad = [b for b in (_hc(doc, "Binds") or []) if b.startswith("/")]
    return f"HostConfig.Binds mounts host paths {bad}" if bad else None


def mode(key: str, value: str) -> Callable[[dict[str, Any]], str | None]:
    def check(doc: dict[str, Any]) -> str | None:
        return f"HostConfig.{key} is {value!r}" if _hc(doc, key) == value else None

    return check


def security_opt(kind: str, unsafe: Callable[[str], bool]) -> Callable[[dict[str, Any]], str | None]:
    def check(doc: dict[str, Any]) -> str | None:
        for opt in _hc(doc, "SecurityOpt") or []:
            sep = "=" if "=" in opt else ":"
            key, _, value = opt.partition(sep)
            if key == kind and unsafe(value):
                return f"HostConfig.SecurityOpt holds {opt[:80]!r}"
        return None

    return check


def seccomp_profile_allows(value: str) -> bool:
    """A custom profile whose default lets syscalls through."""
    if value == "unconfined":
        return True
    try:
        doc = json.loads(value)
    except ValueError:
        return False
    actions = [v for k, v in doc.items() if k.lower() == "defaultaction"] if isinstance(doc, dict) else []
    return any(a in ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE") for a in actions)


def masked_paths_dropped(doc: dict[str, Any]) -> str | None:
    paths = _hc(doc, "MaskedPaths")
    return f"HostConfig.MaskedPaths is {paths}" if paths is not None and "/proc/kcore" not in paths else None


def readonly_paths_dropped(doc: dict[str, Any]) -> str | None:
    paths = _hc(doc, "ReadonlyPaths")
    return f"HostConfig.ReadonlyPaths is {paths}" if paths is not None and "/proc/sys" not in paths else None


def devices(doc: dict[str, Any]) -> str | None:
    found = (_hc(doc, "Devices") or []) + (_hc(doc, "DeviceCgroupRules") or [])
    return f"host devices {found}" if found else None


def cgroup_parent(doc: dict[str, Any]) -> str | None:
    value = _hc(doc, "CgroupParent")
    return f"HostConfig.CgroupParent is {value!r}" if value else None


def sysctls(doc: dict[str, Any]) -> str | None:
    value = _hc(doc, "Sysctls") or {}
    return f"HostConfig.Sysctls is {value}" if any(k.startswith("kernel.") for k in value) else None


def _mount_opts(m: dict[str, Any]) -> dict[str, Any]:
    return ((m.get("VolumeOptions") or {}).get("DriverConfig") or {}).get("Options") or {}


def mount_bind(doc: dict[str, Any]) -> str | None:
    bad = [m.get("Source") for m in (_hc(doc, "Mounts") or []) if m.get("Type") == "bind"]
    return f"HostConfig.Mounts binds host paths {bad}" if bad else None


def mount_volume_device(doc: dict[str, Any]) -> str | None:
    bad = [_mount_opts(m) for m in (_hc(doc, "Mounts") or []) if "device" in _mount_opts(m)]
    return f"an inline local volume with driver options {bad}" if bad else None


def joins(key: str) -> Callable[[dict[str, Any]], str | None]:
    """The container joins another one's namespace (the engine stores ``container:ID``)
    or takes its volumes (``VolumesFrom``); the fixtures hold only one other container."""

    def check(doc: dict[str, Any]) -> str | None:
        value = _hc(doc, key)
        joined = bool(value) if key == "VolumesFrom" else str(value).startswith("container:")
        return f"HostConfig.{key} is {value!r}" if joined else None

    return check


def uses_volume(volume: str) -> Callable[[dict[str, Any]], str | None]:
    def check(doc: dict[str, Any]) -> str | None:
        names = [m.get("Name") for m in doc.get("Mounts") or []]
        return f"mounts the volume {volume}" if volume in names else None

    return check


def on_network(net: str) -> Callable[[dict[str, Any]], str | None]:
    def check(doc: dict[str, Any]) -> str | None:
        nets = ((doc.get("NetworkSettings") or {}).get("Networks") or {}).keys()
        mode_ = _hc(doc, "NetworkMode")
        return f"joined the network {net}" if net in nets or mode_ == net else None

    return check


def execs_privileged(env: Env, _: list[Response]) -> str | None:
    doc = _get(env, "/containers/@NAME@/json")
    for exec_id in (doc or {}).get("ExecIDs") or []:
        info = _get(env, f"/exec/{exec_id}/json") or {}
        if (info.get("ProcessConfig") or {}).get("privileged") is True:
            return f"exec {exec_id[:12]} is privileged"
    return None


def execs_on(target: str) -> Judge:
    def judge(env: Env, _: list[Response]) -> str | None:
        doc = _get(env, f"/containers/{target}/json")
        mine = [e for e in (doc or {}).get("ExecIDs") or [] if e not in env.vars.get("EXECS", "")]
        return f"exec {mine[0][:12]} created in {target}" if mine else None

    return judge


def service(check: Callable[[Env, dict[str, Any]], str | None]) -> Judge:
    def judge(env: Env, _: list[Response]) -> str | None:
        doc = _get(env, "/services/@NAME@")
        return None if doc is None else check(env, doc["Spec"])

    return judge


def _cs(spec: dict[str, Any]) -> dict[str, Any]:
    return (spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}


def svc_bind(_: Env, spec: dict[str, Any]) -> str | None:
    bad = [m.get("Source") for m in _cs(spec).get("Mounts") or [] if m.get("Type") == "bind"]
    return f"service mounts host paths {bad}" if bad else None


def svc_volume_device(_: Env, spec: dict[str, Any]) -> str | None:
    bad = [_mount_opts(m) for m in _cs(spec).get("Mounts") or [] if "device" in _mount_opts(m)]
    return f"service mounts an inline local volume with {bad}" if bad else None


def svc_volume(name: str) -> Callable[[Env, dict[str, Any]], str | None]:
    def check(_: Env, spec: dict[str, Any]) -> str | None:
        used = [m.get("Source") for m in _cs(spec).get("Mounts") or []]
        return f"service mounts the volume {name}" if name in used else None

    return check


def svc_caps(_: Env, spec: dict[str, Any]) -> str | None:
    bad = [c for c in _cs(spec).get("CapabilityAdd") or [] if _cap(c) in ("SYS_ADMIN", "ALL")]
    return f"service adds capabilities {bad}" if bad else None


def svc_host_network(env: Env, spec: dict[str, Any]) -> str | None:
    targets = [n.get("Target") for n in (spec.get("TaskTemplate") or {}).get("Networks") or []]
    targets += [n.get("Target") for n in spec.get("Networks") or []]
    for t in targets:
        net = _get(env, f"/networks/{t}") if t else None
        if net is not None and net.get("Driver") == "host":
            return f"service attached to the host network ({t})"
    return None


def volume(check: Callable[[dict[str, Any]], str | None], name: str = "@NAME@") -> Judge:
    def judge(env: Env, _: list[Response]) -> str | None:
        doc = _get(env, f"/volumes/{name}")
        return None if doc is None else check(doc)

    return judge


SAFE_LOCAL_OPTS: frozenset[str] = frozenset()  # a plain local volume has no options


def volume_opts(doc: dict[str, Any]) -> str | None:
    opts = doc.get("Options") or {}
    return f"local volume with driver options {opts}" if set(opts) - SAFE_LOCAL_OPTS else None


def network_driver(doc: dict[str, Any]) -> str | None:
    return f"network driver {doc.get('Driver')!r} on the host's interfaces" if doc.get("Driver") in (
        "macvlan", "ipvlan") else None  # fmt: skip


def image_exists(ref: str) -> Judge:
    def judge(env: Env, _: list[Response]) -> str | None:
        doc = _get(env, f"/images/{ref}/json")
        return None if doc is None else f"image {fill(ref, env.vars)} was built"

    return judge


def image_moved(ref: str, var: str) -> Judge:
    """The name ``ref`` no longer points at the image id in ``vars[var]``."""

    def judge(env: Env, _: list[Response]) -> str | None:
        doc = _get(env, f"/images/{ref}/json")
        if doc is not None and doc["Id"] != env.vars[var]:
            return f"{ref} now names {doc['Id'][:19]}, not its owner's {env.vars[var][:19]}"
        return None

    return judge


def plugin(check: Callable[[dict[str, Any]], str | None]) -> Judge:
    def judge(env: Env, _: list[Response]) -> str | None:
        doc = _get(env, "/plugins/@NAME@:latest/json")
        return None if doc is None else check(doc["Config"])

    return judge


def plugin_privileges(cfg: dict[str, Any]) -> str | None:
    found = []
    if (cfg.get("Network") or {}).get("Type") == "host":
        found.append("host network")
    if any(m.get("Source") for m in cfg.get("Mounts") or []):
        found.append("host mounts")
    linux = cfg.get("Linux") or {}
    if linux.get("Capabilities") or linux.get("AllowAllDevices"):
        found.append("capabilities/devices")
    return f"plugin installed with {', '.join(found)}" if found else None


def got_archive(env: Env, responses: list[Response]) -> str | None:
    hits = [r for r in responses if r.status == 200 and len(r.body) >= 512]
    return f"read {len(hits[0].body)} bytes of archive" if hits else None


def file_in(target: str, path: str) -> Judge:
    def judge(env: Env, _: list[Response]) -> str | None:
        try:
            env.engine.call("HEAD", fill(f"/containers/{target}/archive?path={path}", env.vars))
        except EngineError:
            return None
        return f"wrote {fill(path, env.vars)} into {target}"

    return judge


# ------------------------------------------------------------------ setups
class SetupRefused(AssertionError):
    """A setup step (the ordinary part of an attempt) was not accepted."""


def must(env: Env, attack: Attack) -> Response:
    got = env.send(attack(env.vars))
    if not got or not 200 <= got[-1].status < 300:
        raise SetupRefused(f"{env.phase}: setup step refused: {got}")
    return got[-1]


CREATE = "/containers/create?name=@NAME@"


def own_container(cmd: str = '["true"]', start: bool = False) -> Setup:
    def setup(env: Env) -> None:
        must(env, req("POST", CREATE, f'{{"Image":"@IMG@","Cmd":{cmd}}}'))
        if start:
            must(env, req("POST", "/containers/@NAME@/start"))

    return setup


def own_service(env: Env) -> None:
    must(env, req("POST", "/services/create", SERVICE % ""))
    env.vars["VERSION"] = str(env.engine.call("GET", fill("/services/@NAME@", env.vars))["Version"]["Index"])


def service_with_a_dangerous_past(env: Env) -> None:
    """A service of the attacker's team whose previous spec had the host network: made on
    the engine directly (as before a policy tightened), then updated to a safe spec.
    ``rollback=previous`` makes the engine run the previous spec, whatever the body says."""
    labels = {"io.moorage.team": "payments", "io.moorage.owner": "alice"}
    spec = json.loads(fill('{"Name":"@NAME@","TaskTemplate":{"ContainerSpec":{"Image":"@IMG@",'
                           '"Command":["sleep","300"]},"Networks":[{"Target":"host"}]},'
                           '"Mode":{"Replicated":{"Replicas":0}}}', env.vars))  # fmt: skip
    spec["Labels"] = labels
    env.engine.call("POST", "/services/create", spec)
    safe = json.loads(fill(SERVICE % "", env.vars))
    safe["Labels"] = labels
    # Swarm's store answers "update out of sequence" when the object moved since it
    # was read (here now and then, right after the create): read again and retry.
    for attempt in range(5):
        doc = env.engine.call("GET", fill("/services/@NAME@", env.vars))
        try:
            env.engine.call(
                "POST",
                fill("/services/@NAME@/update?version=", env.vars) + str(doc["Version"]["Index"]),
                safe,
            )
            break
        except EngineError as exc:
            if "out of sequence" not in str(exc) or attempt == 4:
                raise
            time.sleep(0.5)
    # The update's status moves (updating -> completed), each move bumping the
    # version: read it once it holds still, or the rollback is out of sequence.
    deadline = time.monotonic() + 20
    last = None
    while time.monotonic() < deadline:
        version = env.engine.call("GET", fill("/services/@NAME@", env.vars))["Version"]["Index"]
        if version == last:
            break
        last = version
        time.sleep(0.5)
    env.vars["VERSION"] = str(last)


def remember_execs(target: str) -> Setup:
    def setup(env: Env) -> None:
        doc = env.engine.call("GET", f"/containers/{target}/json")
        env.vars["EXECS"] = ",".join(doc.get("ExecIDs") or [])

    return setup


# ------------------------------------------------------------------ the corpus
S, DOTLESS_I, K = "\u017f", "\u0131", "\u212a"  # long s, dotless i, Kelvin sign: Go folds/uppercases them
BASE = '"Image":"@IMG@","Cmd":["true"]'
BASE_LOWER = '"image":"@IMG@","cmd":["true"]'
HOSTCONFIG_FOLD = f"Ho{S}tconfig"

# field -> (dangerous JSON value, a safe JSON value, the judge)
FIELDS: dict[str, tuple[str, str, Callable[[dict[str, Any]], str | None]]] = {
    "Privileged": ("true", "false", privileged),
    "CapAdd": ('["SYS_ADMIN"]', '["NET_BIND_SERVICE"]', cap_sys_admin),
    "Binds": ('["/:/host"]', "null", host_bind),
    "PidMode": ('"host"', '""', mode("PidMode", "host")),
    "NetworkMode": ('"host"', '"default"', mode("NetworkMode", "host")),
    "IpcMode": ('"host"', '""', mode("IpcMode", "host")),
    "UTSMode": ('"host"', '""', mode("UTSMode", "host")),
    "SecurityOpt": ('["seccomp=unconfined"]', "null", security_opt("seccomp", seccomp_profile_allows)),
    "MaskedPaths": ("[]", "null", masked_paths_dropped),
    "ReadonlyPaths": ("[]", "null", readonly_paths_dropped),
    "Devices": ('[{"PathOnHost":"/dev/kmsg","PathInContainer":"/dev/kmsg","CgroupPermissions":"rwm"}]',
                "null", devices),
    "CgroupParent": ('"/mxescape"', '""', cgroup_parent),
    "Mounts": ('[{"Type":"bind","Source":"/etc","Target":"/h"}]', "null", mount_bind),
}  # fmt: skip


def _fold_key(key: str) -> str:
    """The key with one letter swapped for a character Go folds to it."""
    for i, ch in enumerate(key):
        if ch in "sS":
            return key[:i] + S + key[i + 1 :]
        if ch in "kK":
            return key[:i] + K + key[i + 1 :]
    raise ValueError(f"{key} has no s or k to fold")


def _escape_key(key: str) -> str:
    return f"\\u{ord(key[0]):04x}" + key[1:]


def _create_variants(fld: str, forms: list[str]) -> list[Attempt]:
    value, safe, check = FIELDS[fld]
    bodies = {
        "canonical": f'{{{BASE},"HostConfig":{{"{fld}":{value}}}}}',
        "lower": f'{{{BASE_LOWER},"hostconfig":{{"{fld.lower()}":{value}}}}}',
        "upper": f'{{{BASE},"HostConfig":{{"{fld.upper()}":{value}}}}}',
        "escaped-key": f'{{{BASE},"HostConfig":{{"{_escape_key(fld)}":{value}}}}}',
        "dup-key-later-wins": f'{{{BASE},"HostConfig":{{"{fld}":{safe},"{fld}":{value}}}}}',
        "dup-object-merges": f'{{{BASE},"HostConfig":{{"{fld}":{safe}}},"HostConfig":{{"{fld}":{value}}}}}',
        "fold-object-merges": f'{{{BASE},"HostConfig":{{"{fld}":{safe}}},"{HOSTCONFIG_FOLD}":{{"{fld}":{value}}}}}',
        "fold-parent": f'{{{BASE},"{HOSTCONFIG_FOLD}":{{"{fld}":{value}}}}}',
        "fold-key": f'{{{BASE},"HostConfig":{{"{_fold_key(fld) if any(c in fld for c in "sSkK") else fld}":{value}}}}}',
        "toplevel": f'{{{BASE},"{fld}":{value}}}',
        "toplevel-null-hostconfig": f'{{{BASE},"HostConfig":null,"{fld}":{value}}}',
        "toplevel-lower": f'{{{BASE_LOWER},"{fld.lower()}":{value}}}',
        # a key whose escape decodes to a folding character
        "escaped-fold-parent": f'{{{BASE},"Ho\\u017ftconfig":{{"{fld}":{value}}}}}',
        # the nested config is set, then nulled under a folded spelling: the top level counts again
        "toplevel-hostconfig-nulled-by-fold": f'{{{BASE},"HostConfig":{{}},"{fld}":{value},"{HOSTCONFIG_FOLD}":null}}',
        # two spellings of one field: the later one wins, whichever is exact
        "case-dup-later-wins": f'{{{BASE},"HostConfig":{{"{fld}":{safe},"{fld.lower()}":{value}}}}}',
    }  # fmt: skip
    return [
        Attempt(
            f"create-{fld}-{form}", "container create", req("POST", CREATE, bodies[form]), container(check)
        )
        for form in forms
    ]


def _create(name: str, host: str, check: Callable[[dict[str, Any]], str | None], top: str = "") -> Attempt:
    body = f'{{{BASE}{top},"HostConfig":{{{host}}}}}' if host else f"{{{BASE}{top}}}"
    return Attempt(f"create-{name}", "container create", req("POST", CREATE, body), container(check))


def _seccomp(profile: dict[str, Any] | str) -> str:
    text = profile if isinstance(profile, str) else json.dumps(profile)
    return json.dumps(["seccomp=" + text])


VOLUME_DEVICE = '{"Name":"@NAME@","Driver":"local","DriverOpts":{"type":"none","o":"bind","device":"/"}}'
INLINE_VOLUME = (
    '[{"Type":"volume","Source":"@NAME@","Target":"/h","VolumeOptions":{"DriverConfig":'
    '{"Name":"local","Options":%s}}}]'
)

CONTAINER_ATTEMPTS: list[Attempt] = [
    *_create_variants("Privileged", ["canonical", "lower", "escaped-key", "dup-key-later-wins", "dup-object-merges",
                                     "fold-object-merges", "fold-parent", "toplevel", "toplevel-null-hostconfig",
                                     "escaped-fold-parent", "toplevel-hostconfig-nulled-by-fold",
                                     "case-dup-later-wins"]),
    *_create_variants("CapAdd", ["canonical", "fold-object-merges", "toplevel"]),
    _create("CapAdd-string-not-list", '"CapAdd":"SYS_ADMIN"', cap_sys_admin),
    _create("CapAdd-long-s-value", f'"CapAdd":["{S}ys_admin"]', cap_sys_admin),
    _create("CapAdd-dotless-i-value", f'"CapAdd":["SYS_ADM{DOTLESS_I}N"]', cap_sys_admin),
    _create("CapAdd-all-mixed-case", '"CapAdd":["aLl"]', cap_sys_admin),
    _create("CapAdd-toplevel-string", "", cap_sys_admin, top=',"CapAdd":"SYS_ADMIN"'),
    *_create_variants("Binds", ["canonical", "fold-key", "fold-object-merges", "toplevel", "dup-key-later-wins"]),
    _create("Binds-docker-socket", '"Binds":["@LABSOCK@:/var/run/docker.sock"]', host_bind),
    *_create_variants("PidMode", ["canonical", "toplevel"]),
    *_create_variants("NetworkMode", ["canonical", "toplevel", "fold-key", "fold-object-merges"]),
    *_create_variants("IpcMode", ["canonical"]),
    *_create_variants("SecurityOpt", ["canonical", "fold-key", "toplevel"]),
    _create("SecurityOpt-seccomp-colon", '"SecurityOpt":["seccomp:unconfined"]',
            security_opt("seccomp", seccomp_profile_allows)),
    _create("SecurityOpt-apparmor-unconfined", '"SecurityOpt":["apparmor=unconfined"]',
            security_opt("apparmor", lambda v: v == "unconfined")),
    _create("SecurityOpt-seccomp-profile-allow",
            '"SecurityOpt":' + _seccomp({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []}),
            security_opt("seccomp", seccomp_profile_allows)),
    _create("SecurityOpt-seccomp-profile-folded-key",
            '"SecurityOpt":' + _seccomp('{"defaultaction":"SCMP_ACT_ALLOW"}'),
            security_opt("seccomp", seccomp_profile_allows)),
    _create("SecurityOpt-seccomp-profile-dup-key",
            '"SecurityOpt":' + _seccomp('{"defaultAction":"SCMP_ACT_ERRNO","defaultAction":"SCMP_ACT_ALLOW"}'),
            security_opt("seccomp", seccomp_profile_allows)),
    *_create_variants("MaskedPaths", ["canonical"]),
    _create("MaskedPaths-kelvin-key", f'"Mas{K}edPaths":[]', masked_paths_dropped),
    _create("MaskedPaths-short-list", '"MaskedPaths":["/proc/asound"]', masked_paths_dropped),
    *_create_variants("ReadonlyPaths", ["canonical", "toplevel"]),
    *_create_variants("Devices", ["canonical"]),
    _create("DeviceCgroupRules", '"DeviceCgroupRules":["a *:* rwm"]', devices),
    *_create_variants("CgroupParent", ["canonical"]),
    _create("Sysctls-kernel", '"Sysctls":{"kernel.msgmax":"65536"}', sysctls),
    *_create_variants("Mounts", ["canonical"]),
    _create("Mounts-lowercase-keys", '"Mounts":[{"type":"bind","source":"/","target":"/h"}]', mount_bind),
    _create("Mounts-volume-device-root", '"Mounts":' + INLINE_VOLUME % '{"type":"none","o":"bind","device":"/"}',
            mount_volume_device),
    _create("Mounts-volume-ext4-device",
            '"Mounts":' + INLINE_VOLUME % '{"type":"ext4","device":"/dev/mxnodisk"}', mount_volume_device),
    _create("Mounts-volume-lowercase-keys",
            '"Mounts":[{"type":"volume","source":"@NAME@","target":"/h","volumeoptions":{"driverconfig":'
            '{"name":"local","options":{"type":"none","o":"bind","device":"/"}}}}]', mount_volume_device),
]  # fmt: skip

OLD_START = '{"Privileged":true}'
OLD_API_ATTEMPTS: list[Attempt] = [
    Attempt("start-v1.23-hostconfig-privileged", "old API",
            req("POST", "/v1.23/containers/@NAME@/start", OLD_START), container(privileged),
            setup=own_container()),
    Attempt("start-v1.23-hostconfig-binds", "old API",
            req("POST", "/v1.23/containers/@NAME@/start", '{"Binds":["/:/host"]}'), container(host_bind),
            setup=own_container()),
    Attempt("start-v1.18-hostconfig-capadd", "old API",
            req("POST", "/v1.18/containers/@NAME@/start", '{"CapAdd":["SYS_ADMIN"]}'), container(cap_sys_admin),
            setup=own_container()),
    Attempt("start-v1.23-chunked-body", "old API",
            lambda v: (f"POST /v1.23/containers/{v['NAME']}/start HTTP/1.1\r\nHost: d\r\n"
                       "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                       f"{len(OLD_START):x}\r\n{OLD_START}\r\n0\r\n\r\n").encode(),
            container(privileged), setup=own_container()),
    Attempt("start-v1.23-folded-key", "old API",
            req("POST", "/v1.23/containers/@NAME@/start", f'{{"Privileged":false,"privileged":true,"Bind{S}":[]}}'),
            container(privileged), setup=own_container()),
    Attempt("start-old-version-percent-encoded-slash", "old API",
            req("POST", "/v1.23%2Fcontainers/@NAME@/start", OLD_START), container(privileged),
            setup=own_container()),
    Attempt("create-v1.23-privileged", "old API",
            req("POST", "/v1.23/containers/create?name=@NAME@", f'{{{BASE},"HostConfig":{{"Privileged":true}}}}'),
            container(privileged)),
]  # fmt: skip

PRIV = f'{{{BASE},"HostConfig":{{"Privileged":true}}}}'
PATH_ATTEMPTS: list[Attempt] = [
    Attempt(f"path-{label}", "paths", req("POST", path, PRIV), container(privileged))
    for label, path in [
        ("percent-encoded-verb", "/containers/%63reate?name=@NAME@"),
        ("percent-encoded-slash", "/containers%2Fcreate?name=@NAME@"),
        ("version-leading-zero", "/v01.41/containers/create?name=@NAME@"),
        ("version-three-parts", "/v1.41.0/containers/create?name=@NAME@"),
        ("version-percent-encoded-slash", "/v1.41%2Fcontainers/create?name=@NAME@"),
    ]
] + [
    Attempt("path-volume-percent-encoded", "paths", req("POST", "/volumes/%63reate", VOLUME_DEVICE),
            volume(volume_opts)),
    Attempt("path-volume-version-three-parts", "paths", req("POST", "/v1.41.0/volumes/create", VOLUME_DEVICE),
            volume(volume_opts)),
    Attempt("path-exec-percent-encoded", "paths",
            req("POST", "/containers/@NAME@/%65xec", '{"Cmd":["true"],"Privileged":true}'), execs_privileged,
            setup=own_container('["sleep","300"]', start=True)),
    Attempt("path-exec-version-three-parts", "paths",
            req("POST", "/v1.41.0/containers/@NAME@/exec", '{"Cmd":["true"],"Privileged":true}'), execs_privileged,
            setup=own_container('["sleep","300"]', start=True)),
]  # fmt: skip

EXEC_ATTEMPTS: list[Attempt] = [
    Attempt(
        f"exec-privileged-{label}",
        "exec",
        req("POST", "/containers/@NAME@/exec", body),
        execs_privileged,
        setup=own_container('["sleep","300"]', start=True),
    )
    for label, body in [
        ("canonical", '{"Cmd":["true"],"Privileged":true}'),
        ("lower", '{"cmd":["true"],"privileged":true}'),
        ("escaped-key", '{"Cmd":["true"],"\\u0050rivileged":true}'),
        ("dup-key-later-wins", '{"Cmd":["true"],"Privileged":false,"Privileged":true}'),
        ("escaped-dup-later-wins", '{"Cmd":["true"],"Privileged":false,"\\u0050rivileged":true}'),
    ]
]

SERVICE = (
    '{"Name":"@NAME@","TaskTemplate":{"ContainerSpec":{"Image":"@IMG@","Command":["sleep","300"]%s}},'
    '"Mode":{"Replicated":{"Replicas":0}}}'
)
SVC_BIND = ',"Mounts":[{"Type":"bind","Source":"/","Target":"/host"}]'
SERVICE_ATTEMPTS: list[Attempt] = [
    Attempt("service-bind-canonical", "services", req("POST", "/services/create", SERVICE % SVC_BIND),
            service(svc_bind)),
    Attempt("service-bind-type-upper-case", "services",
            req("POST", "/services/create", SERVICE % ',"Mounts":[{"Type":"BIND","Source":"/etc","Target":"/h"}]'),
            service(svc_bind)),
    # the engine converts a service mount's type with strings.ToUpper, which maps U+0131 to I
    Attempt("service-bind-type-dotless-i", "services",
            req("POST", "/services/create",
                SERVICE % f',"Mounts":[{{"Type":"b{DOTLESS_I}nd","Source":"/","Target":"/h"}}]'),
            service(svc_bind)),
    # the engine takes the deprecated Spec.Networks when TaskTemplate.Networks is empty
    Attempt("service-host-network-deprecated-beside-empty-list", "services",
            req("POST", "/services/create",
                '{"Name":"@NAME@","TaskTemplate":{"ContainerSpec":{"Image":"@IMG@","Command":["sleep","300"]},'
                '"Networks":[]},"Networks":[{"Target":"host"}],"Mode":{"Replicated":{"Replicas":0}}}'),
            service(svc_host_network)),
    Attempt("service-bind-folded-key", "services",
            req("POST", "/services/create", SERVICE % f',"Mount{S}":[{{"Type":"bind","Source":"/","Target":"/h"}}]'),
            service(svc_bind)),
    Attempt("service-tasktemplate-fold-merges", "services",
            req("POST", "/services/create",
                '{"Name":"@NAME@","TaskTemplate":{"ContainerSpec":{"Image":"@IMG@","Command":["sleep","300"]}},'
                f'"Ta{S}kTemplate":{{"ContainerSpec":{{"Mounts":[{{"Type":"bind","Source":"/","Target":"/h"}}]}}}},'
                '"Mode":{"Replicated":{"Replicas":0}}}'),
            service(svc_bind)),
    Attempt("service-capability-add", "services",
            req("POST", "/services/create", SERVICE % ',"CapabilityAdd":["CAP_SYS_ADMIN"]'), service(svc_caps)),
    Attempt("service-capability-add-folded-value", "services",
            req("POST", "/services/create", SERVICE % f',"CapabilityAdd":["CAP_{S}YS_ADMIN"]'), service(svc_caps)),
    Attempt("service-host-network", "services",
            req("POST", "/services/create",
                '{"Name":"@NAME@","TaskTemplate":{"ContainerSpec":{"Image":"@IMG@","Command":["sleep","300"]},'
                '"Networks":[{"Target":"host"}]},"Mode":{"Replicated":{"Replicas":0}}}'),
            service(svc_host_network)),
    Attempt("service-host-network-deprecated-spec-networks", "services",
            req("POST", "/services/create",
                '{"Name":"@NAME@","TaskTemplate":{"ContainerSpec":{"Image":"@IMG@","Command":["sleep","300"]}},'
                '"Networks":[{"Target":"host"}],"Mode":{"Replicated":{"Replicas":0}}}'),
            service(svc_host_network)),
    Attempt("service-volume-device-root", "services",
            req("POST", "/services/create", SERVICE % (',"Mounts":' + INLINE_VOLUME % '{"type":"none","o":"bind","device":"/"}')),
            service(svc_volume_device)),
    Attempt("service-update-adds-bind", "services",
            req("POST", "/services/@NAME@/update?version=@VERSION@", SERVICE % SVC_BIND), service(svc_bind),
            setup=own_service),
    Attempt("service-update-adds-host-network", "services",
            req("POST", "/services/@NAME@/update?version=@VERSION@",
                '{"Name":"@NAME@","TaskTemplate":{"ContainerSpec":{"Image":"@IMG@","Command":["sleep","300"]},'
                '"Networks":[{"Target":"host"}]},"Mode":{"Replicated":{"Replicas":0}}}'),
            service(svc_host_network), setup=own_service),
    Attempt("service-rollback-to-a-host-network-spec", "services",
            req("POST", "/services/@NAME@/update?version=@VERSION@&rollback=previous", SERVICE % ""),
            service(svc_host_network), setup=service_with_a_dangerous_past),
    Attempt("service-version-three-parts", "services", req("POST", "/v1.41.0/services/create", SERVICE % SVC_BIND),
            service(svc_bind)),
]  # fmt: skip

VOLUME_ATTEMPTS: list[Attempt] = [
    Attempt(f"volume-{label}", "volumes", req("POST", "/volumes/create", body), volume(volume_opts))
    for label, body in [
        ("bind-root", VOLUME_DEVICE),
        ("rbind-root", '{"Name":"@NAME@","DriverOpts":{"type":"none","o":"rbind","device":"/"}}'),
        ("ext4-device", '{"Name":"@NAME@","DriverOpts":{"type":"ext4","device":"/dev/mxnodisk"}}'),
        ("nfs", '{"Name":"@NAME@","DriverOpts":{"type":"nfs","o":"addr=127.0.0.1,ro","device":":/"}}'),
        ("driveropts-lowercase", '{"name":"@NAME@","driveropts":{"type":"none","o":"bind","device":"/"}}'),
        (
            "driveropts-fold-merges",
            f'{{"Name":"@NAME@","DriverOpts":{{"type":"none","o":"bind"}},"DriverOpt{S}":{{"device":"/"}}}}',
        ),
    ]
]

NETWORK_ATTEMPTS: list[Attempt] = [
    Attempt(f"network-{label}", "networks", req("POST", "/networks/create", body), lambda env, _: _net_driver(env))
    for label, body in [
        ("macvlan-on-host-interface", '{"Name":"@NAME@","Driver":"macvlan","Options":{"parent":"eth0"}}'),
        ("ipvlan-on-host-interface", '{"Name":"@NAME@","Driver":"ipvlan","Options":{"parent":"eth0"}}'),
        ("macvlan-lowercase-keys", '{"name":"@NAME@","driver":"macvlan","options":{"parent":"eth0"}}'),
    ]
] + [
    Attempt("network-connect-unowned", "tenancy",
            req("POST", "/networks/mx-ops-net/connect", '{"Container":"@NAME@"}'),
            container(on_network("mx-ops-net")), setup=own_container(), users=DEV),
    Attempt("network-mode-unowned", "tenancy",
            req("POST", CREATE, f'{{{BASE},"HostConfig":{{"NetworkMode":"mx-ops-net"}}}}'),
            container(on_network("mx-ops-net")), users=DEV),
    Attempt("network-endpoints-config-unowned", "tenancy",
            req("POST", CREATE, f'{{{BASE},"NetworkingConfig":{{"EndpointsConfig":{{"mx-ops-net":{{}}}}}}}}'),
            container(on_network("mx-ops-net")), users=DEV),
]  # fmt: skip


def _net_driver(env: Env) -> str | None:
    doc = _get(env, "/networks/@NAME@")
    return None if doc is None else network_driver(doc)


BUILD_CHECK_HOSTNET = "RUN grep -q docker0 /proc/net/dev"
BUILD_QS = "/build?t=@NAME@:1&nocache=1&rm=1&forcerm=1"


def _build(label: str, query: str, step: str, path: str = BUILD_QS, users: tuple[str, ...] = BOTH) -> Attempt:
    def attack(v: dict[str, str]) -> bytes:
        dockerfile = f"FROM {v['IMG']}\n# {v['NAME']}\n{step}\n".encode()
        return http("POST", path + query, tar({"Dockerfile": dockerfile}), v, ctype="application/x-tar")

    return Attempt(f"build-{label}", "builds", attack, image_exists("@NAME@:1"), users=users)


BUILD_ATTEMPTS: list[Attempt] = [
    _build("networkmode-host", "&networkmode=host", BUILD_CHECK_HOSTNET),
    _build("networkmode-container-of-host-agent", "&networkmode=container:mx-ops-agent", BUILD_CHECK_HOSTNET),
    _build("networkmode-first-value-wins", "&networkmode=host&networkmode=default", BUILD_CHECK_HOSTNET),
    _build("cgroupparent", "&cgroupparent=/mxescape", "RUN grep -q mxescape /proc/self/cgroup"),
    _build("path-percent-encoded", "&networkmode=host", BUILD_CHECK_HOSTNET,
           path="/%62uild?t=@NAME@:1&nocache=1&rm=1&forcerm=1"),
]  # fmt: skip

PLUGIN_BASE = {"description": "mx", "documentation": "mx", "entrypoint": ["/bin/true"],
               "interface": {"types": ["docker.volumedriver/1.0"], "socket": "p.sock"}}  # fmt: skip


def _plugin(label: str, extra: dict[str, Any]) -> Attempt:
    config = json.dumps({**PLUGIN_BASE, **extra}).encode()
    body = tar({"config.json": config, "rootfs/": None, "rootfs/mx": b"mx"})
    return Attempt(f"plugin-create-{label}", "plugins",
                   req("POST", "/plugins/create?name=@NAME@:latest", body, ctype="application/x-tar"),
                   plugin(plugin_privileges))  # fmt: skip


PLUGIN_ATTEMPTS: list[Attempt] = [
    _plugin("host-network", {"network": {"type": "host"}}),
    _plugin(
        "host-root-mount",
        {"mounts": [{"source": "/", "destination": "/host", "type": "bind", "options": ["rbind"]}]},
    ),
    _plugin("sys-admin", {"linux": {"capabilities": ["CAP_SYS_ADMIN"]}}),
]

FORM = "application/x-www-form-urlencoded"
IMAGE_ATTEMPTS: list[Attempt] = [
    Attempt("image-tag-onto-other-team", "tenancy",
            req("POST", "/images/@IMG@/tag?repo=mx-search/app&tag=1"),
            image_moved("mx-search/app:1", "BOB_IMAGE"), users=DEV),
    Attempt("image-tag-onto-unowned-name", "tenancy",
            req("POST", "/images/@IMG@/tag?repo=mx-ops/base&tag=1"),
            image_moved("mx-ops/base:1", "OPS_IMAGE"), users=DEV),
    Attempt("image-tag-form-body", "tenancy", req("POST", "/images/@IMG@/tag", "repo=mx-ops/base&tag=1", ctype=FORM),
            image_moved("mx-ops/base:1", "OPS_IMAGE"), users=DEV),
    Attempt("image-tag-form-body-beats-query", "tenancy",
            req("POST", "/images/@IMG@/tag?repo=mxown/app&tag=1", "repo=mx-ops/base&tag=1", ctype=FORM),
            image_moved("mx-ops/base:1", "OPS_IMAGE"), users=DEV),
    Attempt("image-tag-first-query-value-wins", "tenancy",
            req("POST", "/images/@IMG@/tag?repo=mx-ops/base&tag=1&repo=mxown/app"),
            image_moved("mx-ops/base:1", "OPS_IMAGE"), users=DEV),
    Attempt("image-commit-onto-other-team", "tenancy",
            req("POST", "/commit?container=@NAME@&repo=mx-search/app&tag=1", "{}"),
            image_moved("mx-search/app:1", "BOB_IMAGE"), setup=own_container(), users=DEV),
    Attempt("image-build-onto-other-team", "tenancy",
            lambda v: http("POST", "/build?t=mx-search/app:1&nocache=1&rm=1",
                           tar({"Dockerfile": f"FROM {v['IMG']}\nRUN echo {v['NAME']} > /x\n".encode()}), v,
                           ctype="application/x-tar"),
            image_moved("mx-search/app:1", "BOB_IMAGE"), users=DEV),
    Attempt("image-import-onto-other-team", "tenancy",
            req("POST", "/images/create?fromSrc=-&repo=mx-search/app&tag=1", tar({"mx": b"mx"}),
                ctype="application/x-tar"),
            image_moved("mx-search/app:1", "BOB_IMAGE"), users=DEV),
    Attempt("image-load-onto-other-team", "tenancy",
            req("POST", "/images/load?quiet=1", image_archive("mx-search/app:1"), ctype="application/x-tar"),
            image_moved("mx-search/app:1", "BOB_IMAGE"), users=DEV),
    Attempt("image-run-other-teams-image", "tenancy",
            req("POST", CREATE, '{"Image":"mx-search/app:1","Cmd":["true"]}'),
            container(lambda d: "runs another team's image" if d else None), users=DEV),
]  # fmt: skip

AGENT = "mx-ops-agent"
TENANCY_ATTEMPTS: list[Attempt] = [
    Attempt("unowned-volumes-from", "tenancy", req("POST", CREATE, f'{{{BASE},"HostConfig":{{"VolumesFrom":["{AGENT}"]}}}}'),
            container(joins("VolumesFrom")), users=DEV),
    Attempt("unowned-pid-join", "tenancy", req("POST", CREATE, f'{{{BASE},"HostConfig":{{"PidMode":"container:{AGENT}"}}}}'),
            container(joins("PidMode")), users=DEV),
    Attempt("unowned-network-join", "tenancy",
            req("POST", CREATE, f'{{{BASE},"HostConfig":{{"NetworkMode":"container:{AGENT}"}}}}'),
            container(joins("NetworkMode")), users=DEV),
    Attempt("unowned-ipc-join", "tenancy", req("POST", CREATE, f'{{{BASE},"HostConfig":{{"IpcMode":"container:{AGENT}"}}}}'),
            container(joins("IpcMode")), users=DEV),
    Attempt("unowned-exec", "tenancy", req("POST", f"/containers/{AGENT}/exec", '{"Cmd":["cat","/host/etc/shadow"]}'),
            execs_on(AGENT), setup=remember_execs(AGENT), users=DEV),
    Attempt("unowned-archive-read", "tenancy", req("GET", f"/containers/{AGENT}/archive?path=/host/etc/hostname"),
            got_archive, users=DEV),
    Attempt("unowned-archive-write", "tenancy",
            lambda v: http("PUT", f"/containers/{AGENT}/archive?path=/tmp", tar({v["NAME"]: b"mx"}), v,
                           ctype="application/x-tar"),
            file_in(AGENT, "/tmp/@NAME@"), users=DEV),
    Attempt("unowned-export", "tenancy", req("GET", f"/containers/{AGENT}/export"), got_archive, users=DEV),
    Attempt("unowned-commit", "tenancy", req("POST", f"/commit?container={AGENT}&repo=@NAME@&tag=stolen", "{}"),
            image_exists("@NAME@:stolen"), users=DEV),
    # volume create is idempotent on the engine: "creating" an operator's volume must not make it yours
    Attempt("unowned-volume-claimed-by-create", "tenancy",
            lambda v: http("POST", "/volumes/create", '{"Name":"mx-ops-root"}', v)
            + http("POST", CREATE, f'{{{BASE},"HostConfig":{{"Binds":["mx-ops-root:/h"]}}}}', v),
            container(uses_volume("mx-ops-root")), responses=2, users=DEV),
    Attempt("unowned-volume-bind", "tenancy", req("POST", CREATE, f'{{{BASE},"HostConfig":{{"Binds":["mx-ops-root:/h"]}}}}'),
            container(uses_volume("mx-ops-root")), users=DEV),
    Attempt("unowned-volume-mount", "tenancy",
            req("POST", CREATE, f'{{{BASE},"HostConfig":{{"Mounts":[{{"Type":"volume","Source":"mx-ops-data","Target":"/d"}}]}}}}'),
            container(uses_volume("mx-ops-data")), users=DEV),
    Attempt("unowned-volume-service-mount", "tenancy",
            req("POST", "/services/create", SERVICE % ',"Mounts":[{"Type":"volume","Source":"mx-ops-root","Target":"/h"}]'),
            service(svc_volume("mx-ops-root")), users=DEV),
]  # fmt: skip

EVIL = f'{{{BASE},"HostConfig":{{"Privileged":true}}}}'


def _smuggle(head: str) -> Attack:
    """A read whose framing hides a privileged create after a chunked body's end."""

    def attack(v: dict[str, str]) -> bytes:
        evil = http("POST", CREATE, EVIL, v)
        body = b"0\r\n\r\n" + evil
        return head.replace("@LEN@", str(len(body))).encode() + body

    return attack


FRAMING_ATTEMPTS: list[Attempt] = [
    Attempt("framing-content-length-and-chunked", "framing",
            _smuggle("GET /_ping HTTP/1.1\r\nHost: d\r\nContent-Length: @LEN@\r\nTransfer-Encoding: chunked\r\n\r\n"),
            container(privileged), responses=2),
    Attempt("framing-chunked-upper-case", "framing",
            _smuggle("GET /_ping HTTP/1.1\r\nHost: d\r\nContent-Length: @LEN@\r\nTransfer-Encoding: CHUNKED\r\n\r\n"),
            container(privileged), responses=2),
    Attempt("framing-chunked-obs-fold", "framing",
            _smuggle("GET /_ping HTTP/1.1\r\nHost: d\r\nContent-Length: @LEN@\r\nTransfer-Encoding:\r\n chunked\r\n\r\n"),
            container(privileged), responses=2),
    Attempt("framing-chunked-without-length", "framing",
            _smuggle("GET /version HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n"),
            container(privileged), responses=2),
    Attempt("framing-bare-line-feeds", "framing",
            lambda v: b"GET /_ping HTTP/1.1\nHost: d\n\n" + http("POST", CREATE, EVIL, v),
            container(privileged), responses=2),
    Attempt("framing-pipelined-after-read", "framing",
            lambda v: http("GET", "/_ping", None, v) + http("POST", CREATE, EVIL, v),
            container(privileged), responses=2),
]  # fmt: skip

ATTEMPTS: list[Attempt] = [
    *CONTAINER_ATTEMPTS, *OLD_API_ATTEMPTS, *PATH_ATTEMPTS, *EXEC_ATTEMPTS, *SERVICE_ATTEMPTS,
    *VOLUME_ATTEMPTS, *NETWORK_ATTEMPTS, *BUILD_ATTEMPTS, *PLUGIN_ATTEMPTS, *IMAGE_ATTEMPTS,
    *TENANCY_ATTEMPTS, *FRAMING_ATTEMPTS,
]  # fmt: skip


# ------------------------------------------------------------------ ordinary workloads
Step = tuple[str, ...] | Attack  # a docker CLI invocation, or raw bytes (what an SDK sends)
State = Callable[[EngineClient, dict[str, str]], Any]


@dataclass(frozen=True)
class Workload:
    """Something a developer does every day: it must pass, and leave the same state as direct."""

    name: str
    steps: tuple[Step, ...]
    state: State
    files: dict[str, str] = field(default_factory=dict)  # a build context, written to @CTX@


def _norm(x: Any) -> Any:
    """Moorage's ``io.moorage.*`` bookkeeping aside, empty and absent alike, random ids alike."""
    if isinstance(x, dict):
        out = {
            k: _norm(sorted(v) if k == "Env" and v else v)
            for k, v in x.items()
            if not k.startswith("io.moorage.")
        }
        return {k: v for k, v in out.items() if v not in ({}, None, [])}
    if isinstance(x, list):
        return [_norm(i) for i in x]
    if isinstance(x, str) and re.fullmatch(r"[0-9a-f]{64}", x):
        return "<random id>"
    return x


def container_state(ref: str = "@NAME@") -> State:
    def state(engine: EngineClient, v: dict[str, str]) -> Any:
        doc = engine.call("GET", f"/containers/{fill(ref, v)}/json")
        config = {**doc["Config"], "Hostname": None}  # the hostname is the random id's start
        nets = sorted(((doc.get("NetworkSettings") or {}).get("Networks") or {}).keys())
        mounts = sorted([m.get("Type"), m.get("Name"), m.get("Destination")] for m in doc["Mounts"])
        return _norm({"Config": config, "HostConfig": doc["HostConfig"], "Networks": nets, "Mounts": mounts})

    return state


def volume_state(engine: EngineClient, v: dict[str, str]) -> Any:
    doc = engine.call("GET", f"/volumes/{v['NAME']}v")
    return _norm({"Driver": doc["Driver"], "Options": doc["Options"], "Labels": doc["Labels"]})


def network_state(subnets: bool) -> State:
    """A network's settings; its subnet only when the workload chose it (the engine
    hands out the next free one otherwise)."""

    def state(engine: EngineClient, v: dict[str, str]) -> Any:
        doc = engine.call("GET", f"/networks/{v['NAME']}n")
        out = {k: doc[k] for k in ("Driver", "Internal", "Attachable", "Options", "Labels")}
        if subnets:
            out["Subnets"] = [c.get("Subnet") for c in doc["IPAM"]["Config"] or []]
        return _norm(out)

    return state


def service_state(engine: EngineClient, v: dict[str, str]) -> Any:
    return _norm(engine.call("GET", f"/services/{v['NAME']}")["Spec"])


def image_state(ref: str) -> State:
    def state(engine: EngineClient, v: dict[str, str]) -> Any:
        doc = engine.call("GET", f"/images/{fill(ref, v)}/json")
        history = engine.call("GET", f"/images/{fill(ref, v)}/history")
        config = {**doc["Config"], "Hostname": None, "Image": None}  # the build's random container and parent
        return _norm(
            {"Config": config, "Layers": len(doc["RootFS"].get("Layers") or []), "History": len(history)}
        )

    return state


def exec_state(engine: EngineClient, v: dict[str, str]) -> Any:
    doc = engine.call("GET", f"/containers/{v['NAME']}/json")
    out = []
    for exec_id in doc.get("ExecIDs") or []:
        out.append(engine.call("GET", f"/exec/{exec_id}/json")["ProcessConfig"])
    return _norm(sorted(out, key=json.dumps))


def both(a: State, b: State) -> State:
    return lambda engine, v: [a(engine, v), b(engine, v)]


RUN = ("create", "--name", "@NAME@")
IMG = "@IMG@"
DOCKERFILE = {"Dockerfile": 'FROM @IMG@\nRUN echo built > /built\nENV APP=1\nCMD ["sh"]\n'}

WORKLOADS: list[Workload] = [
    Workload("create-plain", ((*RUN, IMG, "true"),), container_state()),
    Workload("run-detached-env", (("run", "-d", "--name", "@NAME@", "-e", "A=1", "-e", "B=two", IMG, "sleep", "60"),),
             container_state()),
    Workload("named-volume", (("volume", "create", "@NAME@v"), (*RUN, "-v", "@NAME@v:/data", IMG, "true")),
             container_state()),
    Workload("anonymous-volume", ((*RUN, "-v", "/data", IMG, "true"),), container_state()),
    Workload("tmpfs", ((*RUN, "--tmpfs", "/run:rw,size=16m", IMG, "true"),), container_state()),
    Workload("mount-tmpfs", ((*RUN, "--mount", "type=tmpfs,target=/cache", IMG, "true"),), container_state()),
    Workload("mount-named-volume", (("volume", "create", "@NAME@v"),
                                    (*RUN, "--mount", "type=volume,source=@NAME@v,target=/d", IMG, "true")),
             container_state()),
    Workload("ports-loopback", ((*RUN, "-p", "127.0.0.1:18080:80", IMG, "true"),), container_state()),
    Workload("ports-loopback-random", ((*RUN, "-p", "127.0.0.1::80", "--expose", "81", IMG, "true"),),
             container_state()),
    Workload("labels", ((*RUN, "--label", "app=web", "--label", "tier=front", IMG, "true"),), container_state()),
    Workload("healthcheck", ((*RUN, "--health-cmd", "true", "--health-interval", "5s", "--health-retries", "2",
                              IMG, "sleep", "60"),), container_state()),
    Workload("restart-policy", ((*RUN, "--restart", "on-failure:3", IMG, "true"),), container_state()),
    Workload("resource-limits", ((*RUN, "--memory", "64m", "--cpus", "0.5", "--pids-limit", "100", IMG, "true"),),
             container_state()),
    Workload("cap-add-net-bind-service", ((*RUN, "--cap-add", "NET_BIND_SERVICE", IMG, "true"),), container_state()),
    Workload("cap-drop-all", ((*RUN, "--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE", IMG, "true"),),
             container_state()),
    Workload("read-only-rootfs", ((*RUN, "--read-only", "--tmpfs", "/tmp", IMG, "true"),), container_state()),
    Workload("non-root-user", ((*RUN, "--user", "1000:1000", "-w", "/tmp", IMG, "true"),), container_state()),
    Workload("entrypoint", ((*RUN, "--entrypoint", "sh", IMG, "-c", "echo hi"),), container_state()),
    Workload("no-new-privileges", ((*RUN, "--security-opt", "no-new-privileges", IMG, "true"),), container_state()),
    Workload("hostname-dns-hosts", ((*RUN, "--hostname", "web1", "--dns", "127.0.0.1", "--add-host", "db:127.0.0.1",
                                     IMG, "true"),), container_state()),
    Workload("ulimit-log-init", ((*RUN, "--ulimit", "nofile=1024:2048", "--log-opt", "max-size=1m", "--init",
                                  IMG, "true"),), container_state()),
    Workload("safe-sysctl", ((*RUN, "--sysctl", "net.ipv4.ip_local_port_range=32768 60999", IMG, "true"),),
             container_state()),
    Workload("team-network", (("network", "create", "@NAME@n"),
                              (*RUN, "--network", "@NAME@n", "--network-alias", "web", IMG, "true")),
             both(container_state(), network_state(subnets=False))),
    Workload("network-connect", (("network", "create", "@NAME@n"), (*RUN, IMG, "true"),
                                 ("network", "connect", "@NAME@n", "@NAME@")), container_state()),
    Workload("default-bridge-explicit", ((*RUN, "--network", "bridge", IMG, "true"),), container_state()),
    Workload("exec-as-user", (("run", "-d", "--name", "@NAME@", IMG, "sleep", "60"),
                              ("exec", "-u", "1000", "-e", "X=1", "@NAME@", "true")),
             both(container_state(), exec_state)),
    Workload("volume-create", (("volume", "create", "--label", "team=pay", "@NAME@v"),), volume_state),
    Workload("network-create-subnet", (("network", "create", "--subnet", "172.31.231.0/24", "--internal",
                                        "--label", "x=y", "@NAME@n"),), network_state(subnets=True)),
    Workload("service-replicas", (("service", "create", "--detach", "--name", "@NAME@", "--replicas", "1",
                                   "--env", "A=1", "--limit-memory", "64m", IMG, "sleep", "300"),), service_state),
    Workload("service-volume-tmpfs", (("volume", "create", "@NAME@v"),
                                      ("service", "create", "--detach", "--name", "@NAME@", "--replicas", "0",
                                       "--mount", "type=volume,source=@NAME@v,target=/d",
                                       "--mount", "type=tmpfs,target=/t", IMG, "sleep", "300")), service_state),
    Workload("service-update", (("service", "create", "--detach", "--name", "@NAME@", "--replicas", "0", IMG,
                                 "sleep", "300"),
                                ("service", "update", "--detach", "--env-add", "B=2", "--replicas", "1",
                                 "@NAME@")), service_state),
    Workload("build", (("build", "-q", "-t", "@NAME@:1", "@CTX@"),), image_state("@NAME@:1"), files=DOCKERFILE),
    Workload("tag-own-image", (("build", "-q", "-t", "@NAME@:1", "@CTX@"), ("tag", "@NAME@:1", "@NAME@:2")),
             image_state("@NAME@:2"), files=DOCKERFILE),
    Workload("commit-own-container", ((*RUN, "-e", "K=v", IMG, "true"), ("commit", "@NAME@", "@NAME@:c")),
             image_state("@NAME@:c")),
    Workload("sdk-create-minimal", (req("POST", CREATE, '{"Image":"@IMG@","Cmd":["true"],"HostConfig":'
                                                        '{"NetworkMode":"default","Binds":[]}}'),),
             container_state()),
    Workload("sdk-create-toplevel-memory", (req("POST", CREATE, '{"Image":"@IMG@","Cmd":["true"],"Memory":33554432}'),),
             container_state()),
]  # fmt: skip
