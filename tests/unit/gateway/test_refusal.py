"""Who said no: a refusal worded as the engine words it goes out as it is; every
other refusal says it is Moorage's, whatever its first word."""

from __future__ import annotations

from moorage.admission.errors import ClientError, Hidden
from moorage.audit import AuditError
from moorage.gateway.base import refusal as _refusal
from moorage.gateway.http import HttpError
from moorage.gateway.upstream import UpstreamError


def test_engine_worded_answers_are_not_prefixed_and_the_rest_are() -> None:
    assert _refusal(HttpError(404, "No such container: x", engine_words=True)) == (
        404,
        "No such container: x",
    )
    # before, a message that merely began like the engine's ("network ...") lost its prefix
    assert _refusal(HttpError(400, "network mode host is refused")) == (
        400,
        "moorage: network mode host is refused",
    )
    assert _refusal(HttpError(403, "moorage: denied")) == (403, "moorage: denied")
    assert _refusal(UpstreamError("gone"))[0] == 502
    status, message = _refusal(AuditError("disk full"))
    assert status == 503 and "audit trail" in message
    status, message = _refusal(RuntimeError("bug"))
    assert status == 503 and message.startswith("moorage: admission could not decide")


def test_typed_refusals_answer_with_their_own_status_and_words() -> None:
    assert _refusal(Hidden("No such image: x", engine_words=True)) == (404, "No such image: x")
    assert _refusal(ClientError("bad body")) == (400, "moorage: bad body")
