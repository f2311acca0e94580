"""The request phase of one Engine API call: RBAC, tenancy (through admission's
sans-io checks), body reading, policy, then forwarding."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import tempfile
from collections.abc import Callable
from typing import IO, Any
from urllib.parse import parse_qs, quote, urlencode

from moorage.admission import AdmissionRequest, bodies, ownership, rbac, tenancy
from moorage.admission.driver import drive
from moorage.admission.errors import ClientError, PolicyRefusal, for_status
from moorage.admission.ownership import Owned
from moorage.admission.records import Outcome
from moorage.engine_api.canonical import MAX_KNOWN_VERSION, RequestError, Target, parse_version
from moorage.engine_api.canonical import read_body as read_json_body
from moorage.engine_api.endpoints import Operation
from moorage.engine_api.kinds import kind, summarise
from moorage.engine_api.models import body_type
from moorage.gateway import answers
from moorage.gateway.archive import archive_names, context_dockerfile
from moorage.gateway.http import RequestHead, read_body, spool_body
from moorage.gateway.routes import _MoorageRoutes
from moorage.gateway.streams import add_warnings, dump_json
from moorage.gateway.upstream import UpstreamError
from moorage.identity import Principal

__all__ = []

log = logging.getLogger("moorage.gateway")


# The first segment after the type in a route: where the full id replaces the reference.
_REF_SEGMENT = re.compile(r"^(/[a-z]+/)([^/]+)")


class _RequestFlow(_MoorageRoutes):
    """Judge one Engine API request and carry it out."""

    async def _authorised(
        self,
        head: RequestHead,
        op: Operation,
        p: Principal,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        outcome: Outcome,
        t: Target,
    ) -> bool:
        rbac.authorise(p, op, head.method)
        if op.kind.startswith("moorage."):
            return await self._moorage_api(head, op, p, reader, writer, outcome)
        target = t.encoded  # never the client's spelling of the path or query
        row = kind(op.kind)
        owned: Owned | None = None
        if op.object_type and op.object_ref:
            ref = op.object_ref
            tag = t.first("tag") if row.tagged_ref else None
            if tag:  # the engine pushes NAME:TAG (or NAME@DIGEST): that is the image to own
                ref = f"{ref}@{tag}" if tag.startswith("sha256:") else f"{ref}:{tag}"
            owned = await self._check_owner(op, p, op.object_type, ref)
            outcome.object_id = owned.full_id
            if op.object_type == "container" and "/" in op.object_ref:
                # PARENT/ALIAS: the engine resolves the link name (the container it points
                # at, checked above) and, with link=1, changes PARENT: check that too. The
                # name is forwarded as it is: the engine resolves links by name only.
                await self._check_owner(op, p, "container", op.object_ref.split("/", 1)[0])
            else:
                target = self._rewrite_ref(target, op, owned)
        if row.query_names and op.object_ref is None and not p.sees_all:
            # `docker save A B` names its images in the query: each must be readable
            for name in t.query.get("names", []):
                await self._check_owner(op, p, "image", name)
        body: Any = None
        raw_body: bytes | IO[bytes] | None = None
        if body_type(op.kind) is not None:
            outcome.body = "reading"
            raw_body = await read_body(reader, head.chunked, head.content_length, self.limits.max_body_bytes)
            outcome.body = "read"
            body = self._decode_body(op, raw_body, outcome)
            outcome.summary = summarise(op.kind, body)
            if row.by_changes:
                await self._check_swarm_update(p, body, t.query, outcome)
            if row.owner_labels:
                existing = owned.labels if owned and row.keeps_owner else None
                body = tenancy.apply_owner_labels(op.kind, body if body is not None else {},
                                                  p, existing)  # fmt: skip
            if row.names_container and not p.sees_all:
                ref = tenancy.get_ci(body, "Container")
                if isinstance(ref, str):
                    await self._check_owner(op, p, "container", ref)
            if not p.sees_all:
                await drive(ownership.check_references(self._tenancy(p), op.kind, body), self.upstream)
        if raw_body is None and head.has_body and not row.streamed_body:
            # The engine doesn't read this endpoint's body (API >= 1.24): drop it, so no
            # client bytes reach the engine unread by Moorage.
            outcome.body = "reading"
            await read_body(reader, head.chunked, head.content_length, self.limits.max_body_bytes)
            outcome.body = "read"
            raw_body = b""
        if row.spool == "context" and not p.sees_all and t.first("version") == "2":
            raise PolicyRefusal("moorage: BuildKit builds (version=2) take their Dockerfile over a session "
                                 "Moorage can't read, so the images they read can't be checked. Build with "
                                 "the classic builder: DOCKER_BUILDKIT=0 docker build ...")  # fmt: skip
        if row.spool and not p.sees_all and head.has_body:
            # An archive names the tags it writes, a build context the images its build
            # reads: spool it, read those before the engine acts, send on what was read.
            outcome.body = "reading"
            outcome.spool = spool = await self._spool(head, reader)
            outcome.body = "read"
            raw_body = spool
            if row.spool == "archive":
                names = await asyncio.to_thread(archive_names, spool)
                await drive(ownership.check_targets(self._tenancy(p), op, {}, names), self.upstream)
            else:
                await self._check_build_reads(p, t, spool)
        if row.writes_image_name and not p.sees_all:
            query = parse_qs(target.partition("?")[2], keep_blank_values=True)
            await drive(ownership.check_targets(self._tenancy(p), op, query), self.upstream)
        if not p.sees_all and row.team_filter:
            target = answers.inject_team_filter(target, p.team)  # only the team's own objects
        elif not p.sees_all and row.admin_only:
            raise PolicyRefusal(f"moorage: {op.kind} removes every team's unused images or build cache, "
                                 "so only an admin may run it")  # fmt: skip
        self._require_audit(op)
        if op.reads_only:
            return await self._carry_out(head, target, op, p, reader, writer, body, raw_body, outcome, None)
        judged = body
        if row.rollback and t.first("rollback") == "previous" and owned is not None:
            # The engine runs the service's previous spec and ignores the body: judge that.
            judged = await drive(bodies.previous_spec(owned.full_id), self.upstream)
        request = AdmissionRequest(p, op, head.method, target, t.query, judged,
                                   owned.full_id if owned is not None else None)  # fmt: skip
        key = self.admission.serial_key(request)
        if key is None:
            return await self._carry_out(
                head, target, op, p, reader, writer, body, raw_body, outcome, request
            )
        # Decide and carry out one at a time per key: a quota counted from the
        # engine's live state can't be overshot by creates racing each other.
        async with self.key_locks.hold(key):
            return await self._carry_out(
                head, target, op, p, reader, writer, body, raw_body, outcome, request
            )

    async def _carry_out(
        self,
        head: RequestHead,
        target: str,
        op: Operation,
        p: Principal,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        body: Any,
        raw_body: bytes | IO[bytes] | None,
        outcome: Outcome,
        request: AdmissionRequest | None,
    ) -> bool:
        post_filter: Callable[[Any], Any] | None = None
        after: tuple[tuple[str, str], ...] = ()
        if request is not None:
            decision = await self.admission.admit_async(request, self.upstream)
            outcome.rules = decision.rules
            outcome.mutations = decision.mutations
            outcome.policy_version = decision.policy_version
            outcome.image_digest = decision.image_digest
            if not decision.allowed:
                # a 404 ("No such image": the CLI then pulls it) is worded as the engine words it
                raise for_status(decision.status, f"moorage: {decision.reason}" if decision.status == 403
                                 else decision.reason, engine_words=decision.status == 404)  # fmt: skip
            rollback = (request.query.get("rollback") or [""])[0] == "previous"
            if decision.mutations and kind(op.kind).rollback and rollback:
                # The engine runs the previous spec as it was: what the decision adds can't reach it.
                raise PolicyRefusal(
                    "moorage: a rollback runs the service's previous spec as it was, and that spec lacks "
                    f"what Moorage requires now ({'; '.join(decision.mutations)}). Update the service "
                    "instead (docker service update), so Moorage can add it.",
                )
            if decision.body is not None:
                body = decision.body
            if decision.target is not None:
                target = decision.target
            after = decision.after
            if decision.warnings and kind(op.kind).warnings:
                post_filter = add_warnings(list(decision.warnings))
        if isinstance(raw_body, bytes):
            raw_body = b"" if body is None else dump_json(body)
        out_head = head.with_target(target)
        if isinstance(raw_body, bytes):
            # Moorage's encoding of what was judged, typed as what it is
            out_head = out_head.with_json_body(len(raw_body)) if raw_body else out_head.with_body_length(0)
        elif raw_body is not None:  # a spooled archive, sent on as it was checked
            out_head = out_head.with_body_length(raw_body.seek(0, os.SEEK_END))
            raw_body.seek(0)
        post_filter = await self._answer_filter(op, p, outcome, post_filter)
        result = await self._forward(out_head, op, p, reader, writer, raw_body, outcome, post_filter)
        for method, path in after:
            try:
                status, answer = await self.upstream.call_json(method, path)
            except Exception as exc:
                status, answer = 0, str(exc)
            if status >= 300 or status == 0:
                log.warning("follow-up %s %s answered %s: %s", method, path, status, answer)
        return result

    def _decode_body(self, op: Operation, raw: bytes, outcome: Outcome) -> Any:
        """The body as the engine reads it (Go's decoder, the engine's types). A field
        Moorage doesn't know is refused on a change, unless an admin setting lets it
        through; then it is forwarded as sent and named in the audit record."""
        try:
            decoded = read_json_body(op.kind, raw, keep_unknown=self.allow_unknown_fields)
        except RequestError as exc:
            raise for_status(exc.status, f"moorage: {exc.message}") from exc
        if decoded.unknown and not op.reads_only:
            if not self.allow_unknown_fields:
                raise ClientError(
                    f"moorage: the {op.kind} body has fields the Docker Engine API (as Moorage knows it) "
                    f"does not define: {', '.join(decoded.unknown[:10])}. Moorage can't judge what it "
                    "doesn't know: remove them, or ask an administrator (moorage up "
                    "--allow-unknown-fields).",
                )
            outcome.reason = f"unknown fields passed by setting: {', '.join(decoded.unknown[:10])}"
        return decoded.value

    async def _max_version(self) -> tuple[int, int]:
        """The newest API version the engine serves (asked once, from /version)."""
        if self._api_max is None:
            try:
                status, doc = await self.upstream.call_json("GET", "/version")
            except UpstreamError:
                return MAX_KNOWN_VERSION  # the engine is down: ask again next time
            text = str(doc.get("ApiVersion", "")) if status == 200 and isinstance(doc, dict) else ""
            try:
                self._api_max = min(parse_version(text), MAX_KNOWN_VERSION)
            except RequestError:
                self._api_max = MAX_KNOWN_VERSION  # an engine that doesn't say: refuse what it refuses
        return self._api_max

    async def _check_swarm_update(self, p: Principal, body: Any, query: dict[str, list[str]],
                                  outcome: Outcome) -> None:  # fmt: skip
        """Judge a swarm update by what it changes (``rbac.judge_swarm_update``)."""
        update = await drive(rbac.read_swarm_update(body, query), self.upstream)
        outcome.summary = {"changes": sorted(update.aspects)}  # recorded whether it is refused or not
        rbac.judge_swarm_update(p, update.aspects)
        if self.cluster is not None and update.rotates_ca:
            # only a new root (ForceRotate, or a root the caller supplies): not an expiry change
            self.cluster.rotation_expected = (self.clock(), p.user)

    def _tenancy(self, p: Principal) -> ownership.Tenancy:
        return ownership.Tenancy(p, self._shared(), self.owners)

    async def _check_owner(self, op: Operation, p: Principal, obj_type: str, ref: str) -> Owned:
        """Resolve the object; another team's answers 404 (see ``ownership.check_owner``)."""
        return await drive(ownership.check_owner(self._tenancy(p), op, obj_type, ref), self.upstream)

    def _shared(self) -> tenancy.SharedObjects:
        """The shared objects: the gateway's setting plus what the policy in force
        declares (``spec.shared``), so a reload changes them too."""
        pset = getattr(self.admission, "policies", None)
        shared = getattr(pset, "shared", None)
        if shared is None:
            return self.shared
        return tenancy.SharedObjects(
            networks=(*self.shared.networks, *shared("networks")),
            volumes=(*self.shared.volumes, *shared("volumes")),
            labels=(*self.shared.labels, *shared("labels")),
        )

    async def _spool(self, head: RequestHead, reader: asyncio.StreamReader) -> IO[bytes]:
        """The request body in a temporary file (bounded memory); closed with the request."""
        spool = tempfile.TemporaryFile(prefix="moorage-")  # noqa: SIM115 - _request closes it
        try:
            await spool_body(reader, head.chunked, head.content_length, spool, self.limits.max_archive_bytes,
                             self.limits)  # fmt: skip
        except BaseException:
            spool.close()
            raise
        return spool

    async def _check_build_reads(self, p: Principal, t: Target, context: IO[bytes]) -> None:
        """Check the images a spooled build context's Dockerfile reads."""
        dockerfile = await asyncio.to_thread(context_dockerfile, context, t.first("dockerfile") or "")
        check = bodies.check_build_reads(self._tenancy(p), dockerfile, t.first("buildargs") or "",
                                         t.first("target") or "")  # fmt: skip
        await drive(check, self.upstream)

    def _rewrite_ref(self, target: str, op: Operation, owned: Owned) -> str:
        """Name the object by full id upstream, so a name or prefix can't be re-pointed
        between the ownership check and the action."""
        how = kind(op.kind).path_ref
        if op.object_type == "image" or how == "as-sent":
            return target  # push and tag need the name the client gave
        path, sep, query = target.partition("?")
        if how == "query:container":
            params = parse_qs(query, keep_blank_values=True)
            params["container"] = [owned.full_id]
            return f"{path}?{urlencode(params, doseq=True)}"
        prefix = f"/v{op.version}" if op.version else ""
        route = _REF_SEGMENT.sub(lambda m: m.group(1) + quote(owned.full_id, safe=""), op.route, 1)
        return prefix + quote(route, safe="/:@%") + sep + query
