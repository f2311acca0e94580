"""Loading policy: the only module in ``policy/`` that reads files.

Loading is all or nothing: :func:`load_folder` returns a complete :class:`PolicySet`
or raises :class:`~moorage.policy.documents.PolicyError` naming the file, the line and
the field. The caller keeps its previous set on error. Compiling a document reads the
Rego files and public keys it names, relative to its folder.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import cast

import msgspec

from moorage.policy.custom import CelRule, RegoRule, compile_cel
from moorage.policy.documents import Compiled, Document, PolicyError, parse_document
from moorage.policy.keys import key_ids
from moorage.policy.pack import Plan, plan
from moorage.policy.rules.runtime_allow import RuntimeAllow
from moorage.policy.schema import Pack, PolicySpec, Scope

__all__ = ["PolicySet", "builtin_set", "compile_document", "load_folder"]


@dataclass(frozen=True)
class PolicySet:
    """The documents in force, each compiled, and a version that changes whenever any
    of them does. A document handed in uncompiled is compiled here, so no set can
    hold a document whose CEL, Rego or keys were silently left out."""

    documents: tuple[Document, ...]
    version: str
    _plans: dict[int, Plan] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not all(d.compiled.ready for d in self.documents):
            docs = tuple(d if d.compiled.ready else compile_document(d) for d in self.documents)
            object.__setattr__(self, "documents", docs)
        # each document's checks, compiled once (the set holds the documents, so ids stay theirs)
        object.__setattr__(self, "_plans", {id(d): plan(d) for d in self.documents})

    def plan(self, doc: Document) -> Plan:
        """The checks ``doc`` turns on, compiled at load (``doc`` is one of this set's)."""
        found = self._plans.get(id(doc))
        return found if found is not None else plan(doc)

    def shared(self, kind: str) -> tuple[str, ...]:
        """What the documents declare shared: ``kind`` is networks, volumes or labels."""
        out: list[str] = []
        for doc in self.documents:
            shared = doc.spec.shared
            for item in (getattr(shared, kind, None) if shared else None) or ():
                if item not in out:
                    out.append(str(item))
        return tuple(out)


def compile_document(doc: Document) -> Document:
    """The document with its CEL and Rego compiled and its trusted keys read (from its
    folder), as typed state. Raises :class:`PolicyError` naming the file and field."""
    spec = doc.spec
    default_fix = "change the request so the rule holds"
    cel = tuple(
        CelRule(r.id, r.expr, r.message, r.fix if r.fix is not None else default_fix,
                tuple(r.kinds or ()), compile_cel(r.expr))
        for r in spec.custom or []
    )  # fmt: skip
    rego: list[RegoRule] = []
    for i, r in enumerate(spec.rego or []):
        where = f"{doc.source}: spec.rego[{i}]"
        if doc.folder is None:
            raise PolicyError(f"{where}: policy {doc.name}: a Rego file needs a policy folder")
        message = r.message if r.message is not None else "the Rego policy does not allow this request"
        query = r.query if r.query is not None else "data.docker.authz.allow"
        try:
            rego.append(RegoRule(r.id, doc.folder / r.file, query, message))
        except OSError as exc:
            raise PolicyError(f"{where}.file: cannot read {doc.folder / r.file}: {exc.strerror}") from exc
        except ValueError as exc:
            raise PolicyError(f"{where}.file: {exc}") from exc
    keys: tuple[tuple[str, bytes], ...] = ()
    if spec.images and spec.images.signatures and spec.images.signatures.keys:
        keys = tuple(_trusted_keys(doc, spec.images.signatures.keys, doc.folder or Path(".")))
    try:
        runtime_allow = RuntimeAllow.from_spec(msgspec.to_builtins(spec.runtime) if spec.runtime else None)
    except ValueError as exc:
        raise PolicyError(f"{doc.source}: spec.{exc}") from exc
    privileges = frozenset((spec.plugins.privileges if spec.plugins else None) or ())
    subnets = tuple((spec.network.subnets if spec.network else None) or ())
    compiled = Compiled(cel, tuple(rego), keys, runtime_allow, privileges, subnets, ready=True)
    return replace(doc, compiled=compiled)


def load_folder(folder: Path) -> PolicySet:
    """Every ``*.yaml`` / ``*.yml`` in ``folder``, or one file. All or nothing."""
    if folder.is_file():
        files = [folder]
        base = folder.parent
    elif folder.is_dir():
        files = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        base = folder
    else:
        raise PolicyError(f"{folder}: no such policy file or folder")
    docs: list[Document] = []
    digest = hashlib.sha256()
    names: dict[str, str] = {}
    for path in files:
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError(f"{path}: cannot read: {exc}") from exc
        digest.update(path.name.encode() + b"\0" + text.encode() + b"\0")
        for doc in parse_document(text, str(path), base):
            if doc.name in names:
                raise PolicyError(f"{path}: policy name {doc.name!r} is also used in {names[doc.name]}")
            names[doc.name] = str(path)
            for i, rego in enumerate(doc.spec.rego or []):
                rego_path = base / rego.file
                try:
                    digest.update(rego_path.read_bytes())
                except OSError as exc:
                    raise PolicyError(f"{path}: spec.rego[{i}].file: rego {rego.id}: cannot read "
                                      f"{rego_path}: {exc.strerror}") from exc  # fmt: skip
            doc = compile_document(doc)
            for _, pem in doc.compiled.trusted_keys:
                digest.update(pem)
            docs.append(doc)
    if not docs:
        raise PolicyError(f"{folder}: no policy documents (*.yaml) found")
    return PolicySet(tuple(docs), digest.hexdigest()[:12])


def _trusted_keys(doc: Document, entries: list[str], base: Path) -> list[tuple[str, bytes]]:
    """(key id, PEM) of each key a document trusts: a path (relative to the policy
    folder) or an inline PEM block. Read at load, so a bad key fails the load."""
    out = []
    for i, entry in enumerate(entries):
        where = f"{doc.source}: spec.images.signatures.keys[{i}]"
        if entry.lstrip().startswith("-----BEGIN"):
            pem = entry.encode()
        else:
            path = base / entry
            try:
                pem = path.read_bytes()
            except OSError as exc:
                raise PolicyError(f"{where}: cannot read {path}: {exc.strerror}") from exc
        try:
            ids = key_ids(pem, entry if not entry.startswith("-----") else "an inline key")
        except ValueError as exc:
            raise PolicyError(f"{where}: {exc}") from exc
        out += [(kid, pem) for kid in ids]
    return out


def builtin_set(enforce: str | None = "baseline", audit: str | None = "restricted") -> PolicySet:
    """The default for ``moorage up``: one pack enforced and one in audit."""
    docs = []
    if enforce:
        spec = PolicySpec(packs=[cast(Pack, enforce)])
        docs.append(Document(f"builtin-{enforce}", "1", "enforce", Scope(), spec))
    if audit:
        spec = PolicySpec(packs=[cast(Pack, audit)])
        docs.append(Document(f"builtin-{audit}-audit", "1", "audit", Scope(), spec))
    version = hashlib.sha256(json.dumps([enforce, audit]).encode()).hexdigest()[:12]
    return PolicySet(tuple(docs), f"builtin-{version}")
