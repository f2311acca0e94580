"""Tenancy on the wire: the team filter a list request gets, and Moorage's labels
taken out of answers. Deciding what is whose is admission's (``moorage.admission.tenancy``)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlencode

from moorage.admission.tenancy import PREFIX, TEAM
from moorage.engine_api import kinds
from moorage.gateway.http import HttpError

__all__ = ["STRIPPED_ANSWERS", "inject_team_filter", "strip_answer", "strip_labels"]


def inject_team_filter(target: str, team: str) -> str:
    """Add ``label=io.moorage.team=TEAM`` to a list request's filters (ANDed by the engine)."""
    path, _, query = target.partition("?")
    params = parse_qs(query, keep_blank_values=True)
    raw = params.get("filters", ["{}"])[-1] or "{}"
    try:
        filters = json.loads(raw)
    except ValueError as exc:
        raise HttpError(400, f"moorage: the filters parameter is not valid JSON: {exc}") from exc
    if not isinstance(filters, dict):
        raise HttpError(400, "moorage: the filters parameter must be a JSON object")
    mine = f"{TEAM}={team}"
    # Two forms exist: {"label": ["k=v"]} and the legacy {"label": {"k=v": true}}.
    # The engine refuses a mix, so answer in the form the client used.
    legacy = any(isinstance(v, dict) for v in filters.values())
    label = filters.get("label", {} if legacy else [])
    if isinstance(label, dict):
        filters["label"] = {**label, mine: True}
    elif isinstance(label, list):
        filters["label"] = [*label, mine] if not legacy else {**dict.fromkeys(label, True), mine: True}
    else:
        raise HttpError(400, "moorage: filters.label must be a list or an object")
    params["filters"] = [json.dumps(filters, separators=(",", ":"))]
    return f"{path}?{urlencode(params, doseq=True)}"


# Answers that can carry labels (owner bookkeeping to hide), by operation kind.
STRIPPED_ANSWERS = frozenset(k for k, row in kinds.KINDS.items() if row.strips_labels)
# Where labels live in engine answers: every ``Labels`` map (containers, images'
# Config and ContainerConfig, networks, volumes, specs, task specs, mounts'
# VolumeOptions), and the ``Attributes`` of an event's ``Actor``.
_LABEL_MAPS = frozenset({"Labels", "Attributes"})


def strip_labels(doc: Any) -> Any:
    """``doc`` with every ``io.moorage.*`` label removed, in place (returned too)."""
    if isinstance(doc, list):
        for item in doc:
            strip_labels(item)
    elif isinstance(doc, dict):
        for key, value in doc.items():
            if key in _LABEL_MAPS and isinstance(value, dict):
                for label in [k for k in value if isinstance(k, str) and k.lower().startswith(PREFIX)]:
                    del value[label]
            else:
                strip_labels(value)
    return doc


def strip_answer(raw: bytes) -> bytes:
    """An engine JSON answer without Moorage's labels. Unchanged, byte for byte, when
    it carries none (the common case: no decode, no re-encode)."""
    if b"io.moorage." not in raw.lower():  # ASCII case folding, a quarter of a (?i) regex's cost
        return raw
    try:
        doc = json.loads(raw)
    except ValueError:
        return raw  # not JSON: nothing of ours in a form we could find
    # the engine's encoder ends each document with a newline; keep that shape
    return json.dumps(strip_labels(doc), ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
