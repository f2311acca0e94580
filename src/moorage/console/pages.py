"""The console's pages, one method each; every list is cut to what the viewer may see."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

import moorage.console.map as supply
from moorage.admission.compliance import Inputs, judge
from moorage.admission.compliance_report import team_summary
from moorage.admission.exceptions import ExceptionsError
from moorage.cluster.placement import moorage_labels, projected_labels
from moorage.cluster.views import NodeView, SwarmView
from moorage.console.auth import Viewer
from moorage.console.mapsvg import draw
from moorage.console.views import ConsoleContext, decision_row, matches, record_visible, team_quotas
from moorage.policy.documents import PolicyError, parse_document
from moorage.policy.loader import PolicySet

__all__ = ["Pages", "tail"]

Render = Callable[..., Response]
Record = Callable[..., Awaitable[None]]


class Pages:
    """The page handlers, sharing the context, the renderer and the audit hook."""

    def __init__(self, ctx: ConsoleContext, render: Render, record: Record) -> None:
        self.ctx = ctx
        self.render = render
        self.record = record

    async def decisions(self, request: Request, v: Viewer) -> Response:
        """The live feed: the latest decisions, then new ones over SSE."""
        q = request.query_params
        filters = {k: q.get(k, "") for k in ("team", "user", "rule", "outcome")}
        rows = []
        for seq, r in reversed(await asyncio.to_thread(tail, self.ctx.trail, 2000)):
            row = decision_row(seq, r)
            if record_visible(v, r) and matches(row, r, *filters.values()):
                rows.append(row)
            if len(rows) >= 100:
                break
        after = max((r["seq"] for r in rows), default=0)
        stream = "/decisions/stream?" + urlencode(
            {**{k: val for k, val in filters.items() if val}, "after": after}
        )
        return self.render(
            request,
            "decisions.html",
            v,
            rows=rows,
            filters=filters,
            stream=stream,
        )

    async def audit(self, request: Request, v: Viewer) -> Response:
        """Search, the chain's verify status and the latest signed checkpoint."""
        q = request.query_params
        user, obj, outcome = q.get("user") or None, q.get("object") or None, q.get("outcome") or None
        found = await asyncio.to_thread(self.ctx.trail.query, user=user, obj=obj, decision=outcome)
        rows = [decision_row(s, r) for s, r in found if record_visible(v, r)][-200:][::-1]
        # verifying reads the whole chain: on request only
        verified = await asyncio.to_thread(self.ctx.trail.verify) if q.get("verify") else None
        checkpoints = await asyncio.to_thread(self.ctx.trail.checkpoints)
        last = max(checkpoints, default=None)
        return self.render(request, "audit.html", v, rows=rows, verified=verified, checkpoint=last, q=dict(q))

    async def images(self, request: Request, v: Viewer) -> Response:
        """Images in use: digest, signer, SBOM size, findings by severity, where each runs."""
        snap = await self.ctx.snapshot()
        visible = [w for w in snap.top_level() if v.sees(w.team)]
        facts = await self.ctx.image_facts(visible)
        used: dict[str, list[Any]] = {}
        for w in visible:
            used.setdefault(w.image_id or w.image, []).append(w)
        reports = await self.ctx.reports(snap, [i for i in used if i.startswith("sha256:")])
        rows = []
        for image_id, ws in sorted(used.items()):
            img = snap.images.get(image_id)
            f = facts.get(ws[0].image)
            rep = reports.get(image_id)
            counts = rep.counts() if rep else {}
            rows.append(
                {
                    "id": image_id,
                    # the names the viewer's workloads use: another team's tag for a shared image stays theirs
                    "tags": ", ".join(img.repo_tags if img and v.sees_all else sorted({w.image for w in ws})),
                    "digest": (
                        img.repo_digests[0].partition("@")[2]
                        if img and img.repo_digests
                        else (f.digest if f else "")
                    ),
                    "size": img.size if img else 0,
                    "signers": ", ".join(f.signers) if f and f.signers else (f.signature_error if f else ""),
                    "packages": len(rep.inventory.packages) if rep else (len(f.packages) if f else None),
                    "counts": counts,
                    "runs": [(w.kind, w.name, w.id, w.nodes) for w in ws],
                    "sbom": [p.as_dict() for p in rep.inventory.packages][:500] if rep else [],
                }
            )
        ref = request.path_params.get("ref") or request.query_params.get("id", "")
        selected = next((r["id"] for r in rows if ref and ref in (r["id"], r["digest"])), "")
        if ref and not selected:  # not an image the viewer's workloads run
            return self.render(request, "error.html", v, 404, message=f"no such image among yours: {ref}")
        return self.render(request, "images.html", v, rows=rows, selected=selected)

    async def network(self, request: Request, v: Viewer) -> Response:
        """One network: its driver and scope, and the viewer's workloads on it."""
        snap = await self.ctx.snapshot()
        nid = request.path_params["nid"]
        net = snap.networks.get(nid)
        on = [w for w in snap.top_level() if v.sees(w.team) and net is not None and
              (net.name in w.networks or net.id in w.networks)]  # fmt: skip
        if net is None or (net.team and not v.sees(net.team)) or (not net.team and not on and not v.sees_all):
            return self.render(request, "error.html", v, 404, message=f"no such network: {nid}")
        return self.render(request, "network.html", v, net=net, workloads=on)

    async def nodes(self, request: Request, v: Viewer) -> Response:
        """Nodes: role, availability, enrolment, attestations (class, expiry), drift, trust root."""
        snap = await self.ctx.snapshot()
        mine = {n for w in snap.top_level() if v.sees(w.team) for n in w.nodes}
        rows = await asyncio.to_thread(self._node_rows, snap, v, mine)
        roots = await asyncio.to_thread(self.ctx.cluster.store.roots) if self.ctx.cluster else {}
        selected = request.path_params.get("node_id", "")
        return self.render(request, "nodes.html", v, rows=rows, roots=roots, selected=selected,
                           now=time.time(), governed=self.ctx.cluster is not None)  # fmt: skip

    def _node_rows(self, snap: Any, v: Viewer, mine: set[str]) -> list[dict[str, Any]]:
        """Each node the viewer may see, with what the store says it should carry."""
        trust = self.ctx.cluster
        docs = {d["ID"]: d for d in self.ctx.engine.call("GET", "/nodes") or []} if snap.local_node else {}
        swarm = SwarmView.from_engine(self.ctx.engine.call("GET", "/swarm")) if trust and docs else None
        enrolled = trust.store.enrolled() if trust else {}
        requests = trust.store.requests() if trust else []
        roots = trust.store.roots() if trust else {}
        rows = []
        for n in sorted(snap.nodes.values(), key=lambda n: n.hostname):
            if not v.sees_all and n.id not in mine:
                continue
            attestations = [{"classes": ", ".join(r.classes), "status": r.status, "expires": r.expires_at}
                            for r in requests if r.node_id == n.id]  # fmt: skip
            row: dict[str, Any] = {"node": n, "enrolled": n.id in enrolled, "drift": {}, "problems": {},
                                   "attestations": attestations}  # fmt: skip
            doc = docs.get(n.id)
            if trust is not None and swarm is not None and doc is not None:
                view = NodeView.from_engine(doc)
                validity = trust.validity(view, swarm)
                want, have = projected_labels(n.id in enrolled, validity.classes), moorage_labels(view.labels)
                row["drift"] = {k: (have.get(k), want.get(k)) for k in sorted(set(have) | set(want))
                                if have.get(k) != want.get(k)}  # fmt: skip
                row["problems"] = validity.problems
                row["root"] = (view.trust_root, view.trust_root in roots)
            rows.append(row)
        return rows

    async def exceptions(self, request: Request, v: Viewer) -> Response:
        """List, request (POST) and, for security officers, approve or revoke."""
        store = self.ctx.exceptions
        message = ""
        if request.method == "POST":
            if not v.principal().may("exception.request"):
                raise ExceptionsError(
                    403, f"your roles ({', '.join(v.roles) or 'none'}) may not request exceptions"
                )
            form = request.state.form
            body = {k: form[k] for k in ("rule", "team", "image", "reason", "expires") if form.get(k)}
            item = await asyncio.to_thread(store.request, v.user, v.teams, v.sees_all, body)
            await self.record(
                "exception.request",
                item["id"],
                "allow",
                {"rule": item["rule"], "via": "console"},
                user=v.user,
                teams=v.teams,
            )
            message = f"requested {item['id']}: a security officer (not you) approves it"
        items = await asyncio.to_thread(store.list, v.visible_teams())
        return self.render(
            request,
            "exceptions.html",
            v,
            items=items,
            message=message,
            may_approve="security-officer" in v.roles,
        )

    async def exception_action(self, request: Request, v: Viewer) -> Response:
        """Approve or revoke one exception (the store refuses its requester's approval)."""
        item_id, action = request.path_params["item_id"], request.path_params["action"]
        if not v.principal().may("exception.approve"):
            raise ExceptionsError(
                403, f"your roles ({', '.join(v.roles) or 'none'}) may not approve or expire exceptions"
            )
        if action == "approve":
            await asyncio.to_thread(self.ctx.exceptions.approve, item_id, v.user, v.roles)
        elif action == "revoke":
            await asyncio.to_thread(self.ctx.exceptions.revoke, item_id, v.user, v.roles)
        else:
            raise ExceptionsError(404, f"no such action: {action}")
        await self.record(
            f"exception.{action}", item_id, "allow", {"via": "console"}, user=v.user, teams=v.teams
        )
        return RedirectResponse("/exceptions", 303)

    async def policies(self, request: Request, v: Viewer) -> Response:
        """The documents in force, their version, and a dry run of a proposed document
        against what runs (who would fall out of compliance)."""
        pset = self.ctx.policies()
        dry: dict[str, Any] | None = None
        text = ""
        if request.method == "POST":
            text = request.state.form.get("document", "")
            dry = await self._dry_run(text, v)
        return self.render(
            request,
            "policies.html",
            v,
            docs=[d.summary() for d in pset.documents],
            version=pset.version,
            dry=dry,
            text=text,
        )

    async def _dry_run(self, text: str, v: Viewer) -> dict[str, Any]:
        try:
            digest = hashlib.sha256(text.encode()).hexdigest()[:12]
            proposed = PolicySet(
                tuple(parse_document(text, "(proposed in the console)")), f"proposed-{digest}"
            )
        except (PolicyError, ValueError) as exc:
            return {"error": str(exc)}
        snap = await self.ctx.snapshot(0)
        current, now = self.ctx.policies(), time.time()
        caught = []
        for w in snap.top_level():
            if not v.sees(w.team):
                continue
            before = {
                (i.rule, i.path)
                for i in judge(current, w, Inputs(current.version), None, None, now).items
                if i.result == "fail"
            }
            after = [
                i
                for i in judge(proposed, w, Inputs(proposed.version), None, None, now).items
                if i.result == "fail" and (i.rule, i.path) not in before
            ]
            if after:
                caught.append({"kind": w.kind, "name": w.name, "team": w.team, "items": after})
        return {"version": proposed.version, "caught": caught, "objects": len(snap.top_level())}

    async def teams(self, request: Request, v: Viewer) -> Response:
        """Quota use against limits, per team."""
        snap = await self.ctx.snapshot()
        teams = {w.team for w in snap.workloads if w.team} if v.sees_all else set(v.teams)
        return self.render(request, "teams.html", v, teams=team_quotas(self.ctx.policies(), snap, teams))

    async def compliance(self, request: Request, v: Viewer) -> Response:
        """Each running object's compliance, the per-team summary, the sweeps."""
        reports = await asyncio.to_thread(self.ctx.compliance.all, v.visible_teams())
        sweeps = await asyncio.to_thread(self.ctx.compliance.sweeps, 5)
        return self.render(
            request, "compliance.html", v, reports=reports, summary=team_summary(reports), sweeps=sweeps
        )

    async def workload(self, request: Request, v: Viewer) -> Response:
        """One container or service: its spec summary and compliance."""
        snap = await self.ctx.snapshot()
        wid = request.path_params["wid"]
        w = next((w for w in snap.workloads if w.id == wid), None)
        if w is None or not v.sees(w.team):
            return self.render(
                request, "error.html", v, 404, message=f"no such {request.path_params['kind']}: {wid}"
            )
        report = await asyncio.to_thread(self.ctx.compliance.by_id, w.id)
        return self.render(
            request,
            "workload.html",
            v,
            w=w,
            report=report,
            body=json.dumps(w.body, indent=2, default=str)[:20000],
        )

    async def _map(self, request: Request, v: Viewer) -> Any:
        snap = await self.ctx.snapshot()
        ids = {w.image_id for w in snap.workloads if w.image_id and v.sees(w.team)}
        reports = await self.ctx.reports(snap, ids)
        team = request.query_params.get("team") or None
        if not v.sees_all:
            team = team if team in v.teams else (v.teams[0] if v.teams else "\0none")
        graph = supply.build_map(snap, reports, team=team)
        if not v.sees_all and len(v.teams) > 1 and not request.query_params.get("team"):
            graph = supply.build_map(snap, reports, team=v.teams[0])
        return graph

    async def map(self, request: Request, v: Viewer) -> Response:
        """The supply-chain map, drawn; ``package`` answers who runs it, from where, on which port."""
        graph = await self._map(request, v)
        package = request.query_params.get("package", "")
        name, _, version = package.partition("@")
        exposures = supply.vulnerable_workloads(graph, name, version or None) if name else []
        return self.render(
            request,
            "map.html",
            v,
            svg=draw(supply.to_json(graph), exposures),
            exposures=exposures,
            package=package,
            team=request.query_params.get("team", ""),
        )

    async def map_export(self, request: Request, v: Viewer) -> Response:
        """The map as JSON, DOT or CycloneDX."""
        graph = await self._map(request, v)
        fmt = request.path_params["fmt"]
        if fmt == "dot":
            return Response(supply.to_dot(graph), media_type="text/vnd.graphviz")
        if fmt == "cdx.json":
            return JSONResponse(supply.to_cyclonedx(graph))
        return JSONResponse(supply.to_json(graph))


def tail(trail: Any, n: int) -> list[tuple[int, dict[str, Any]]]:
    """The last ``n`` records of the trail (read from the last signed checkpoint on)."""
    sizes = [size for size, _ in trail.checkpoints()]
    after = max(0, max(sizes, default=0) - n)
    found: list[tuple[int, dict[str, Any]]] = []
    while True:
        chunk = trail.query(after_seq=after, limit=5000)
        if not chunk:
            return found[-n:]
        found = (found + chunk)[-n:]
        after = chunk[-1][0]
