"""Checks of what a request reaches beyond its references: the images a build's
Dockerfile reads, and the previous spec a service rollback runs. Sans-io, like
:mod:`moorage.admission.ownership`."""

from __future__ import annotations

import json
from typing import Any

from moorage.admission.errors import ClientError, Refusal, for_status
from moorage.admission.ownership import Facts, Inspect, Tenancy, check_onbuild, check_use
from moorage.engine_api.canonical import read_body
from moorage.engine_api.dockerfile import DockerfileError, image_references

__all__ = ["check_build_reads", "previous_spec"]


def check_build_reads(ctx: Tenancy, dockerfile: bytes, buildargs: str, target: str) -> Facts[None]:
    """Read a build's Dockerfile the engine's way and check every image it reads
    (FROM, COPY --from, and ONBUILD triggers of its bases) as an image a container
    would run: the team's own or one nobody owns."""
    try:
        args = json.loads(buildargs or "{}")
        strings = isinstance(args, dict) and all(isinstance(v, str | None) for v in args.values())
        if not strings:
            raise ValueError("buildargs is not an object of strings")
        refs = image_references(dockerfile, args, target=target)
    except (ValueError, DockerfileError) as exc:
        raise ClientError(f"moorage: the build can't be read as the engine reads it: {exc}") from exc
    for ref in refs:
        try:
            yield from check_use(ctx, "image", ref.ref)
            yield from check_onbuild(ref.ref)
        except Refusal as exc:
            raise for_status(exc.status if exc.status != 404 else 400,
                             f"{exc.message} (named by the Dockerfile's {ref.instruction}, line "
                             f"{ref.line})") from exc  # fmt: skip


def previous_spec(service_id: str) -> Facts[Any]:
    """A service's previous spec, read as a request body would be."""
    status, doc = yield Inspect("service", service_id)
    prev = doc.get("PreviousSpec") if status == 200 and isinstance(doc, dict) else None
    if not isinstance(prev, dict):
        raise ClientError(f"moorage: service {service_id} has no previous spec to roll back to")
    raw = json.dumps(prev, separators=(",", ":")).encode()
    return read_body("service.update", raw, keep_unknown=True).value
