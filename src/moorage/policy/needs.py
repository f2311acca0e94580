"""What a decision needs beyond the request: ``needs(policies, request, grants)``.

Admission asks this once, one driver (``moorage.admission.facts``) gathers every fact
named, and ``evaluate`` decides once. Pure: it reads the policy set and the request.
"""

from __future__ import annotations

from dataclasses import dataclass

from moorage.policy.decision import applicable
from moorage.policy.documents import Document
from moorage.policy.loader import PolicySet
from moorage.policy.request import ExceptionGrant, Request
from moorage.policy.rules.images import TRUST_KINDS, needs_trust

__all__ = ["Needs", "TrustNeeds", "fact_needs", "needs", "needs_usage", "trust_needs"]


@dataclass(frozen=True)
class TrustNeeds:
    """Image facts to gather: the trusted keys (id, PEM) of every applicable document,
    and whether the image must be scanned (vulnerabilities, packages, SBOM, database,
    surface)."""

    keys: tuple[tuple[str, bytes], ...]
    scan: bool


@dataclass(frozen=True)
class Needs:
    """Every fact one decision needs; the empty value needs none."""

    usage: bool = False  # the team's live use (quotas)
    image_ids: bool = False  # the ids and digests the request's images resolve to (image-scoped grants)
    trust: TrustNeeds | None = None  # signatures, scans
    engine: frozenset[str] = frozenset()  # names of Facts fields read from engine state

    @property
    def any(self) -> bool:
        """Whether anything must be gathered at all."""
        return self.usage or self.image_ids or self.trust is not None or bool(self.engine)


def needs(pset: PolicySet, req: Request, grants: tuple[ExceptionGrant, ...] = ()) -> Needs:
    """The facts deciding ``req`` under ``pset`` needs, with the active ``grants``
    (the applicable documents are found once, for all of them)."""
    kind = req.kind
    # most kinds need no fact at all: don't even look for their documents
    docs = applicable(pset, req) if kind in TRUST_KINDS or kind in _FACT_NEEDS or kind in _USAGE_KINDS else []
    trust = _trust(docs, kind)
    return Needs(
        usage=_usage(docs, kind),
        image_ids=any(g.image for g in grants),
        trust=TrustNeeds(tuple(trust[0]), trust[1]) if trust is not None else None,
        engine=_engine(docs, kind),
    )


def trust_needs(pset: PolicySet, req: Request) -> tuple[list[tuple[str, bytes]], bool] | None:
    """Whether the decision needs image facts; if so, the trusted keys (id, PEM) of
    every applicable document and whether a scan is needed."""
    return _trust(applicable(pset, req), req.kind) if req.kind in TRUST_KINDS else None


def _trust(docs: list[Document], kind: str) -> tuple[list[tuple[str, bytes]], bool] | None:
    if kind not in TRUST_KINDS:
        return None
    keys: list[tuple[str, bytes]] = []
    scan, any_trust = False, False
    for d in docs:
        spec = d.spec.images
        if spec is None or not needs_trust(spec):
            continue
        any_trust = True
        keys += list(d.compiled.trusted_keys)
        scan = scan or bool(spec.vulnerabilities or spec.packages or spec.sbom or spec.database
                            or spec.surface)  # fmt: skip
    return (keys, scan) if any_trust else None


_FACT_NEEDS: dict[str, frozenset[str]] = {
    "container.create": frozenset({"host_networks"}),
    "service.create": frozenset({"host_networks"}),
    "service.update": frozenset({"host_networks"}),
    "network.connect": frozenset({"host_networks"}),
    "node.update": frozenset({"node_labels"}),
    "plugin.set": frozenset({"plugin_config"}),
    "plugin.enable": frozenset({"plugin_config"}),
}


def fact_needs(pset: PolicySet, req: Request) -> frozenset[str]:
    """The engine facts (names of :class:`Facts` fields) the packs compare this request
    against: ``host_networks`` (ids of host-driver networks), ``node_labels`` (the
    node's current labels), ``plugin_config`` (the plugin's ``Config``). Without them
    the stricter reading applies (see :mod:`moorage.policy.rules.operations`)."""
    return _engine(applicable(pset, req), req.kind) if req.kind in _FACT_NEEDS else frozenset()


def _engine(docs: list[Document], kind: str) -> frozenset[str]:
    wanted = _FACT_NEEDS.get(kind, frozenset())
    if not wanted or not any(d.spec.packs for d in docs):
        return frozenset()
    return wanted


_USAGE_KINDS = frozenset({"container.create", "service.create", "service.update"})


def needs_usage(pset: PolicySet, req: Request) -> bool:
    """Whether the decision needs the team's live use (quota facts)."""
    return req.kind in _USAGE_KINDS and _usage(applicable(pset, req), req.kind)


def _usage(docs: list[Document], kind: str) -> bool:
    return kind in _USAGE_KINDS and any(d.spec.quotas for d in docs)
