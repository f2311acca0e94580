"""Plugin privileges: what a client grants a plugin on install, upgrade, set and
enable, held to the privileges a policy document allows. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from moorage.policy.rules.base import Finding, _get
from moorage.policy.rules.operations_base import Operation, _f, _items

__all__ = [
    "PLUGIN_CHECKS",
    "plugin_privileges",
]


# --------------------------------------------------------------------- plugins
def plugin_privileges(body: object) -> list[tuple[str, str, str]]:
    """(field path, privilege name, value) for each value a client grants a plugin:
    the body of ``plugin.pull`` / ``plugin.upgrade`` (``[{Name, Description, Value}]``).
    A privilege without a value is listed with value ``""``."""
    out: list[tuple[str, str, str]] = []
    for i, p in enumerate(_items(body)):
        name = str(_get(p, "Name") or "")
        values = _items(_get(p, "Value"))
        if not values:
            out.append((f"[{i}].Name", name, ""))
        out += [(f"[{i}].Value[{j}]", name, str(v)) for j, v in enumerate(values)]
    return out


def _privilege_allowed(name: str, value: str, allowed: Iterable[str]) -> bool:
    return f"{name}={value}" in allowed


def _config_privileges(config: Mapping[str, object]) -> list[tuple[str, str, str]]:
    """The privileges a plugin's ``Config`` needs, named as the engine names them
    (plugin/backend_linux.go computePrivileges)."""
    out: list[tuple[str, str, str]] = []
    net = str(_get(_get(config, "Network"), "Type") or "")
    if net not in ("", "null", "bridge"):
        out.append(("Config.Network.Type", "network", net))
    if _get(config, "IpcHost"):
        out.append(("Config.IpcHost", "host ipc namespace", "true"))
    if _get(config, "PidHost"):
        out.append(("Config.PidHost", "host pid namespace", "true"))
    for i, m in enumerate(_items(_get(config, "Mounts"))):
        if _get(m, "Source") is not None:
            out.append((f"Config.Mounts[{i}].Source", "mount", str(_get(m, "Source"))))
    linux = _get(config, "Linux")
    for i, d in enumerate(_items(_get(linux, "Devices"))):
        if _get(d, "Path") is not None:
            out.append((f"Config.Linux.Devices[{i}].Path", "device", str(_get(d, "Path"))))
    if _get(linux, "AllowAllDevices"):
        out.append(("Config.Linux.AllowAllDevices", "allow-all-devices", "true"))
    for i, cap in enumerate(_items(_get(linux, "Capabilities"))):
        out.append((f"Config.Linux.Capabilities[{i}]", "capabilities", str(cap)))
    return out


def _settable_kind(name: str, field: str, config: Mapping[str, object] | None) -> str:
    """What a ``plugin set`` entry changes: ``env``, ``args``, ``mount``, ``device``,
    or ``unknown`` (no plugin config to tell by). Mirrors plugin/v2 Plugin.Set, which
    looks the name up in Env, then Mounts, then Devices, then Args."""
    if field == "source":
        return "mount"
    if field == "path":
        return "device"
    if field == "value":
        return "env"  # env or args: mounts and devices have no settable "value" field
    if config is None:
        return "unknown"
    for kind, items in (
        ("env", _items(_get(config, "Env"))),
        ("mount", _items(_get(config, "Mounts"))),
        ("device", _items(_get(_get(config, "Linux"), "Devices"))),
    ):
        if any(str(_get(x, "Name") or "") == name for x in items):
            return kind
    if str(_get(_get(config, "Args"), "Name") or "") == name:
        return "args"
    return "env"  # the engine refuses a name it doesn't find


def _plugin_privilege(op: Operation) -> list[Finding]:
    kind, allowed, facts = op.kind, op.plugin_allow, op.facts
    if kind not in ("plugin.pull", "plugin.upgrade", "plugin.enable"):
        return []
    out: list[Finding] = []
    shown = ", ".join(sorted(allowed)) or "(none)"
    grants = (
        plugin_privileges(op.body)
        if kind != "plugin.enable"
        else (_config_privileges(facts.plugin_config) if facts.plugin_config is not None else [])
    )
    for path, name, value in grants:
        if not _privilege_allowed(name, value, allowed):
            out.append(
                _f(
                    "plugin.privilege",
                    path,
                    f"{name}={value}",
                    f"the plugin would get {name} {value!r}, which is not on the allow-list ({shown})",
                    "use a plugin that needs no host access, or ask an operator "
                    f"to allow '{name}={value}' under plugins.privileges",
                )
            )
    return out


def _plugin_create(op: Operation) -> list[Finding]:
    if op.kind != "plugin.create":
        return []
    return [
        _f(
            "plugin.create",
            "(body)",
            None,
            "a plugin made from an uploaded archive gets whatever host access its "
            "config.json asks for, and the engine doesn't ask anyone to grant it",
            "push the plugin to a registry and install it with docker plugin install, "
            "which grants its privileges explicitly",
        )
    ]


def _plugin_set(op: Operation) -> list[Finding]:
    if op.kind != "plugin.set":
        return []
    out: list[Finding] = []
    for i, arg in enumerate(_items(op.body)):
        text = str(arg)
        key = text.partition("=")[0]
        dot = key.rfind(".")
        name, field = (key[:dot], key[dot + 1 :]) if dot > 0 else (key, "")
        what = _settable_kind(name, field, op.facts.plugin_config)
        if what in ("mount", "device", "unknown"):
            why = (
                f"it repoints the plugin's {what} at a host path"
                if what != "unknown"
                else "Moorage can't tell whether it sets a variable or repoints a host mount or device"
            )
            out.append(
                _f(
                    "plugin.set",
                    f"[{i}]",
                    text,
                    f"plugin setting {key!r} is refused: {why}",
                    "set environment variables as NAME.value=VALUE; plugin mounts and "
                    "devices can't be changed",
                )
            )
    return out


PLUGIN_CHECKS: tuple[tuple[str, Callable[[Operation], list[Finding]]], ...] = (
    ("plugin.privilege", _plugin_privilege),
    ("plugin.create", _plugin_create),
    ("plugin.set", _plugin_set),
)
"""The plugin rules' checks, by rule id, in report order."""
