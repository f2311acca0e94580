"""The option strings the engine reads as the engine reads them: security options,
capabilities, local volume driver options, tmpfs options. Pure.

Each parser follows the 20.10 engine's own code (cited beside it), so a rule sees the
same option the engine will apply, and it answers with an allow-list verdict: a value
not named here as safe is refused, even when nobody has seen it used for harm yet.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

__all__ = ["DEFAULT_MASKED_PATHS", "DEFAULT_READONLY_PATHS", "LOCAL_OPTION_KEYS", "SecurityOpt", "cap_name",
           "go_bool", "go_json_compact", "local_volume_problems", "parse_security_opt", "seccomp_digest",
           "tmpfs_option_problem"]  # fmt: skip

# The paths every container gets masked and read-only when MaskedPaths/ReadonlyPaths
# are absent or null (oci/defaults.go; daemon/create_unix.go fills them in). 20.10's
# list, plus /sys/devices/virtual/powercap that later engines add, so a list written
# for 20.10 can't unmask it on a newer engine.
DEFAULT_MASKED_PATHS = ("/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
                        "/sys/firmware", "/sys/devices/virtual/powercap")  # fmt: skip
DEFAULT_READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

# strconv.ParseBool, which the engine uses for no-new-privileges=VALUE.
_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def go_bool(text: str) -> bool | None:
    """``strconv.ParseBool``: the value, or None where Go returns an error."""
    return True if text in _GO_TRUE else False if text in _GO_FALSE else None


def _go_upper(text: str) -> str:
    """Go's ``strings.ToUpper``: simple (one rune to one rune) case mapping. Python's
    ``str.upper`` would turn ``ß`` into ``SS``; Go leaves it."""
    if text.isascii():
        return text.upper()
    return "".join(u if len(u := c.upper()) == 1 else c for c in text)


def cap_name(name: object) -> str:
    """A capability as the engine normalises it (oci/caps/utils.go
    ``NormalizeLegacyCapabilities``: upper-cased, ``CAP_`` added), shown without the
    prefix. ``ALL`` stays ``ALL``. Nothing is trimmed: ``" CHOWN"`` is no capability."""
    text = _go_upper(str(name))
    return text[4:] if text.startswith("CAP_") else text


# ------------------------------------------------------------ security options
@dataclass(frozen=True)
class SecurityOpt:
    """One ``HostConfig.SecurityOpt`` entry as daemon_unix.go ``parseSecurityOpt``
    splits it. ``key`` is None when the engine refuses the entry's shape."""

    key: str | None
    value: str


def parse_security_opt(opt: str) -> SecurityOpt:
    """Split like the 20.10 engine: the bare words ``no-new-privileges`` and
    ``disable`` (SELinux labelling off), else at the first ``=``, else (deprecated) at
    the first ``:``. Keys are compared exactly: ``SECCOMP=x`` is no key the engine knows."""
    if opt == "no-new-privileges":
        return SecurityOpt("no-new-privileges", "true")
    if opt == "disable":
        return SecurityOpt("label", "disable")
    for sep in ("=", ":"):
        if sep in opt:
            key, _, value = opt.partition(sep)
            return SecurityOpt(key, value)
    return SecurityOpt(None, opt)


def go_json_compact(text: str) -> str:
    """Go's ``json.Compact``: whitespace outside strings removed, nothing else changed.
    The docker CLI sends a ``--security-opt seccomp=FILE`` profile compacted this way."""
    out: list[str] = []
    in_string = escaped = False
    for c in text:
        if in_string:
            out.append(c)
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c in " \t\r\n":
            continue
        else:
            out.append(c)
            in_string = c == '"'
    return "".join(out)


def seccomp_digest(profile: str | bytes) -> str:
    """``sha256:<hex>`` of a seccomp profile's JSON text with insignificant whitespace
    removed: the same digest for a profile file and for what the CLI sends of it."""
    text = profile.decode("utf-8", "surrogateescape") if isinstance(profile, bytes) else profile
    data = go_json_compact(text).encode("utf-8", "surrogateescape")
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- tmpfs options
_SIZE = r"[0-9]+[kKmMgGtTpPeE%]?"
_COUNT = r"[0-9]+[kKmMgG]?"
# Flags that only narrow what the mount allows (or are tmpfs defaults), and data
# options with the shape their values must have. Anything else, bind and remount
# included, is refused.
_TMPFS_FLAGS = frozenset({"ro", "rw", "exec", "noexec", "suid", "nosuid", "dev", "nodev", "sync", "async",
                          "dirsync", "atime", "noatime", "diratime", "nodiratime", "relatime", "norelatime",
                          "strictatime", "nostrictatime", "inode64"})  # fmt: skip
_TMPFS_DATA = {
    "size": re.compile(_SIZE),
    "mode": re.compile(r"[0-7]{1,4}"),
    "uid": re.compile(r"[0-9]+"),
    "gid": re.compile(r"[0-9]+"),
    "nr_inodes": re.compile(_COUNT),
    "nr_blocks": re.compile(_COUNT),
    "huge": re.compile(r"never|always|within_size|advise"),
}


def tmpfs_option_problem(option: str, flags: frozenset[str] = _TMPFS_FLAGS,
                         data: dict[str, re.Pattern[str]] | None = None) -> str | None:  # fmt: skip
    """Why one comma-separated tmpfs option is not allowed, or None if it is."""
    data = _TMPFS_DATA if data is None else data
    key, eq, value = option.partition("=")
    if not eq:
        return None if key in flags else f"{option!r} is not an allowed tmpfs flag"
    pattern = data.get(key)
    if pattern is None:
        return f"{key!r} is not an allowed tmpfs option"
    return None if pattern.fullmatch(value) else f"{option!r}: {key} must look like {pattern.pattern}"


# -------------------------------------------------- local volume driver options
# volume/local/local_unix.go: the keys the local driver accepts, exactly spelt.
LOCAL_OPTION_KEYS = frozenset({"type", "device", "o", "size"})
# A local volume with type/device/o is mount(2) of DEVICE with TYPE and options O, run
# by the engine on the host: any host path (o=bind), disk (type=ext4,device=/dev/sda1)
# or network share (type=nfs). Only a tmpfs is allowed, with options that size it.
_LOCAL_O_FLAGS = frozenset({"ro", "rw", "noexec", "nosuid", "nodev", "noatime"})
_LOCAL_O_DATA = {k: _TMPFS_DATA[k] for k in ("size", "mode", "uid", "gid", "nr_inodes")}


def local_volume_problems(opts: object) -> list[tuple[str, object, str]]:
    """Why local volume driver options are not allowed: ``(key, value, reason)`` per
    problem, empty when they are. ``opts`` is the options map (DriverOpts, or a mount's
    VolumeOptions.DriverConfig.Options)."""
    if opts is None:
        return []
    if not isinstance(opts, dict):
        return [("", opts, "driver options must be a map of strings")]
    out: list[tuple[str, object, str]] = []
    for key, value in opts.items():
        if key not in LOCAL_OPTION_KEYS:
            out.append((str(key), value, f"{key!r} is not an option of the local driver"))
        elif not isinstance(value, str):
            out.append((key, value, "the value must be a string"))
    if out:
        return out
    if "size" in opts and not re.fullmatch(_SIZE, opts["size"]):
        out.append(("size", opts["size"], "size must be a size such as 512m"))
    mounting = {"type", "device", "o"} & set(opts)
    if not mounting:
        return out
    if opts.get("type") != "tmpfs":
        out.append(("type", opts.get("type"), "only type=tmpfs may be mounted by a local volume"))
    if opts.get("device") != "tmpfs":
        out.append(("device", opts.get("device"), "a tmpfs volume's device must be tmpfs"))
    for option in (opts.get("o") or "").split(",") if opts.get("o") else []:
        reason = tmpfs_option_problem(option, _LOCAL_O_FLAGS, _LOCAL_O_DATA)
        if reason is not None:
            out.append(("o", opts["o"], reason + " (allowed: size, mode, uid, gid, nr_inodes, ro, rw, "
                        "noexec, nosuid, nodev, noatime)"))  # fmt: skip
    return out
