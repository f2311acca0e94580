"""The web console: server-rendered pages (Starlette + Jinja2, htmx vendored from
npm for the live parts; every page reads without JavaScript), the same identity,
roles and tenancy as the CLI."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from moorage.admission.compliance_report import compliance_run, policy_reports, team_summary
from moorage.admission.exceptions import ExceptionsError
from moorage.console import pages
from moorage.console.auth import COOKIE, LIFETIME, Sessions, Viewer, grant_of
from moorage.console.views import ConsoleContext, decision_row, matches, record_visible
from moorage.identity.handoff import digest, read_handoff
from moorage.identity.interface import Identity, IdentityError
from moorage.identity.oidc import CodeFlow, OidcProvider, finish_code_flow, start_code_flow
from moorage.images.formats.sarif import sarif_log

__all__ = ["build_app"]

HERE = Path(__file__).parent
log = logging.getLogger("moorage.console")
Handler = Callable[[Request, Viewer], Awaitable[Response]]


def build_app(ctx: ConsoleContext, record: Callable[..., Awaitable[None]]) -> Starlette:
    """The console's ASGI app. ``record(kind, object, outcome, details, user=, teams=)``
    writes an audit record for each change made through it (sign-ins included)."""
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
    sessions = Sessions(ctx.data / "console-session.key")
    flows: dict[str, tuple[float, CodeFlow, str]] = {}
    spent_here: set[str] = set()

    def render(
        request: Request, name: str, viewer: Viewer | None, status: int = 200, **values: Any
    ) -> Response:
        html = env.get_template(name).render(
            viewer=viewer, csrf=sessions.csrf(viewer) if viewer else "", path=request.url.path, **values
        )
        return HTMLResponse(html, status)

    def page(fn: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            viewer = sessions.read(request.cookies.get(COOKIE))
            if viewer is None:
                return RedirectResponse("/login?" + urlencode({"next": request.url.path}), 303)
            if request.method == "POST":
                form = await _form(request)
                request.state.form = form
                if not sessions.check_csrf(viewer, form.get("csrf", "")):
                    return render(
                        request, "error.html", viewer, 403, message="the form's token is not this session's"
                    )
            try:
                return await fn(request, viewer)
            except ExceptionsError as exc:
                return render(request, "error.html", viewer, exc.status, message=exc.message)

        return handler

    def _redirect_uri(request: Request) -> str:
        return f"{request.url.scheme}://{request.url.netloc}/callback"

    async def login_page(request: Request) -> Response:
        providers = sorted(ctx.login.providers) if ctx.login else []
        return render(
            request,
            "login.html",
            None,
            next=request.query_params.get("next", "/"),
            ldap="ldap" in providers,
            oidc="oidc" in providers,
            message="",
        )

    async def login_post(request: Request) -> Response:
        form = await _form(request)
        nxt = _safe_next(form.get("next", "/"))
        if ctx.login is None or "ldap" not in ctx.login.providers:
            return render(
                request,
                "login.html",
                None,
                400,
                next=nxt,
                ldap=False,
                oidc=False,
                message="this gateway has no directory: moorage up --identity FILE",
            )
        try:
            who = await asyncio.to_thread(
                ctx.login.providers["ldap"].authenticate,
                {"username": form.get("username", ""), "password": form.get("password", "")},
            )
            return await _signed_in(who, nxt)  # the mapping may refuse them too
        except IdentityError as exc:
            await record(
                "console.login",
                form.get("username", ""),
                "deny",
                {"provider": "ldap", "error": str(exc)},
                user=form.get("username", "?"),
            )
            return render(
                request,
                "login.html",
                None,
                401,
                next=nxt,
                ldap=True,
                oidc="oidc" in ctx.login.providers,
                message=str(exc),
            )

    async def _signed_in(who: Any, nxt: str) -> Response:
        assert ctx.login is not None
        teams, roles, lifetime = grant_of(ctx.login, who)
        return await _session(who, who.provider, teams, roles, lifetime, nxt)

    async def _session(who: Identity, provider: str, teams: tuple[str, ...], roles: tuple[str, ...],
                       lifetime: float, nxt: str) -> Response:  # fmt: skip
        """Record the sign-in and hand over the session's cookie."""
        details = {"provider": provider, "teams": list(teams)}
        await record("console.login", who.user, "allow", details, user=who.user, teams=teams)
        response = RedirectResponse(nxt, 303)
        response.set_cookie(COOKIE, sessions.issue(who, teams, roles, lifetime), max_age=int(lifetime),
                            httponly=True, samesite="lax", path="/")  # fmt: skip
        return response

    def _console_oidc() -> OidcProvider:
        assert ctx.login is not None
        base = ctx.login.providers["oidc"]
        assert isinstance(base, OidcProvider)
        return OidcProvider(replace(base.config, client_id=ctx.console_client_id), spend=base.spend)

    async def oidc_start(request: Request) -> Response:
        if ctx.login is None or "oidc" not in ctx.login.providers:
            return render(request, "error.html", None, 404, message="this gateway has no OpenID provider")
        flow = await asyncio.to_thread(start_code_flow, _console_oidc(), _redirect_uri(request))
        for k in [k for k, v in flows.items() if time.time() - v[0] > 600]:
            flows.pop(k, None)
        while len(flows) >= MAX_FLOWS:  # sign-ins begun and never finished: the oldest go first
            flows.pop(next(iter(flows)))
        flows[flow.state] = (time.time(), flow, _safe_next(request.query_params.get("next", "/")))
        return RedirectResponse(flow.url, 303)

    async def oidc_callback(request: Request) -> Response:
        params = dict(request.query_params)
        kept = flows.pop(params.get("state", ""), None)
        if kept is None:
            return render(
                request, "error.html", None, 400, message="this login was not started here: sign in again"
            )
        try:
            who = await asyncio.to_thread(
                finish_code_flow, _console_oidc(), kept[1], _redirect_uri(request), params
            )
            return await _signed_in(who, kept[2])  # the mapping may refuse them too
        except IdentityError as exc:
            await record("console.login", "?", "deny", {"provider": "oidc", "error": str(exc)})
            return render(request, "error.html", None, 401, message=str(exc))

    async def handoff(request: Request) -> Response:
        """Redeem a one-time link from ``moorage console`` (client certificate or uid)."""
        token = request.path_params["token"]
        doc = read_handoff(sessions.key, token, time.time())
        spent = doc is not None and await asyncio.to_thread(_spend, digest(token), float(doc["e"]))
        if doc is None or not spent:
            await record(
                "console.login",
                "?",
                "deny",
                {"provider": "handoff", "error": "a used, expired or forged link"},
            )
            return render(
                request,
                "error.html",
                None,
                401,
                message="this sign-in link was used, has expired or is not this console's: "
                "run moorage console again",
            )
        who = Identity(str(doc["a"]), str(doc["u"]), str(doc["u"]))
        teams, roles = tuple(map(str, doc["t"])), tuple(map(str, doc["r"]))
        return await _session(who, f"handoff:{doc['a']}", teams, roles, min(LIFETIME, 3600.0), "/decisions")

    def _spend(token_digest: str, until: float) -> bool:
        if ctx.login is not None:
            return bool(ctx.login.certs.spend_token(token_digest, until))
        if token_digest in spent_here:
            return False
        spent_here.add(token_digest)
        return True

    async def logout(request: Request) -> Response:
        response = RedirectResponse("/login", 303)
        response.delete_cookie(COOKIE, path="/")
        return response

    async def stream(request: Request, viewer: Viewer) -> Response:
        q = request.query_params
        filters = [q.get(k, "") for k in ("team", "user", "rule", "outcome")]
        template = env.get_template("decision_row.html")

        async def events() -> AsyncIterator[str]:
            after = q.get("after", "0")
            last = int(after) if after.isdigit() else 0
            if not last:
                rows = await asyncio.to_thread(pages.tail, ctx.trail, 1)
                last = rows[-1][0] if rows else 0
            yield "retry: 1000\n\n"
            while True:
                if await request.is_disconnected() or time.time() > viewer.expires:
                    return  # a session's stream ends with the session
                found = await asyncio.to_thread(ctx.trail.query, after_seq=last, limit=500)
                for seq, r in found:
                    last = seq
                    row = decision_row(seq, r)
                    if record_visible(viewer, r) and matches(row, r, *filters):
                        html = _one_line(template.render(d=row))
                        yield f"id: {seq}\nevent: decision\ndata: {html}\n\n"
                await asyncio.sleep(0.2)

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def compliance_export(request: Request, viewer: Viewer) -> Response:
        reports = await asyncio.to_thread(ctx.compliance.all, viewer.visible_teams())
        fmt = request.path_params["fmt"]
        if fmt == "sarif":
            return JSONResponse(sarif_log(compliance_run(reports)))
        if fmt == "policyreport":
            return JSONResponse(policy_reports(reports))
        return JSONResponse({"summary": team_summary(reports), "objects": [r.as_dict() for r in reports]})

    async def audit_export(request: Request, viewer: Viewer) -> Response:
        if not viewer.sees_all:
            lines = [
                json.dumps(r)
                for _, r in await asyncio.to_thread(ctx.trail.query)
                if record_visible(viewer, r)
            ]
        else:
            lines = [json.dumps(d) for d in await asyncio.to_thread(lambda: list(ctx.trail.export_lines()))]
        await record(
            "console.audit.export",
            "audit",
            "allow",
            {"records": len(lines)},
            user=viewer.user,
            teams=viewer.teams,
        )
        return Response(
            "\n".join(lines) + "\n",
            media_type="application/x-ndjson",
            headers={"Content-Disposition": "attachment; filename=moorage-audit.jsonl"},
        )

    p = pages.Pages(ctx, render, record)
    routes = [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login_post, methods=["POST"]),
        Route("/login/oidc", oidc_start),
        Route("/callback", oidc_callback),
        Route("/session/{token}", handoff),
        Route("/logout", logout, methods=["GET", "POST"]),
        Route("/", page(lambda r, v: _to("/decisions"))),
        Route("/decisions", page(p.decisions)),
        Route("/decisions/stream", page(stream)),
        Route("/audit", page(p.audit)),
        Route("/audit/export", page(audit_export)),
        Route("/images", page(p.images)),
        Route("/images/{ref:path}", page(p.images)),
        Route("/networks/{nid}", page(p.network)),
        Route("/nodes", page(p.nodes)),
        Route("/nodes/{node_id}", page(p.nodes)),
        Route("/exceptions", page(p.exceptions), methods=["GET", "POST"]),
        Route("/exceptions/{item_id}/{action}", page(p.exception_action), methods=["POST"]),
        Route("/policies", page(p.policies), methods=["GET", "POST"]),
        Route("/teams", page(p.teams)),
        Route("/compliance", page(p.compliance)),
        Route("/compliance.{fmt:str}", page(compliance_export)),
        Route("/map", page(p.map)),
        Route("/map.{fmt:str}", page(p.map_export)),
        Route("/workloads/{kind}/{wid}", page(p.workload)),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]

    async def failed(request: Request, exc: Exception) -> Response:
        """A page that could not be made says why (no traceback), and the log has the rest."""
        log.exception("console page %s failed", request.url.path, exc_info=exc)
        why = f"the console could not read what this page shows: {type(exc).__name__}: {exc}"
        return render(request, "error.html", None, 502, message=why)

    return Starlette(routes=routes, exception_handlers={Exception: failed})


async def _to(url: str) -> Response:
    return RedirectResponse(url, 303)


async def _form(request: Request) -> dict[str, str]:
    """A urlencoded form, first value of each field (no multipart: the console sends none)."""
    body = (await request.body())[:65536].decode("utf-8", "replace")
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}


_NEXT = re.compile(r"/(?![/\\])[A-Za-z0-9/_.~%?=&+-]*")
MAX_FLOWS = 1000


def _safe_next(nxt: str) -> str:
    """Only a path on this console (never another site, whatever a browser strips or
    folds: ``//``, backslashes, tabs, newlines) after sign-in."""
    return nxt if _NEXT.fullmatch(nxt) else "/"


def _one_line(html: str) -> str:
    """An SSE ``data:`` field is one line: no CR or LF of a record may start another field."""
    return html.replace("\r", " ").replace("\n", " ")
