"""Each refusal type knows whose fault it is and what the audit record says."""

from __future__ import annotations

from moorage.admission import errors


def test_each_type_knows_its_status_and_decision() -> None:
    assert (errors.ClientError("x").status, errors.ClientError("x").decision) == (400, "error")
    assert (errors.PolicyRefusal("x").status, errors.PolicyRefusal("x").decision) == (403, "deny")
    assert (errors.Hidden("x").status, errors.Hidden("x").decision) == (404, "deny")
    assert (errors.UpstreamFault("x").status, errors.UpstreamFault("x").decision) == (502, "error")
    assert (errors.Unavailable("x").status, errors.NotServed("x").status) == (503, 501)


def test_a_status_from_elsewhere_is_typed_by_whose_fault_it_is() -> None:
    assert type(errors.for_status(401, "x")) is errors.PolicyRefusal
    assert type(errors.for_status(409, "x")) is errors.ClientError
    assert type(errors.for_status(502, "x")) is errors.UpstreamFault
    assert type(errors.for_status(500, "x")) is errors.Unavailable


def test_only_the_engines_own_words_go_out_unprefixed() -> None:
    assert errors.Hidden("No such image: x", engine_words=True).answer == "No such image: x"
    assert errors.ClientError("network mode host").answer == "moorage: network mode host"
    assert errors.PolicyRefusal("moorage: no").answer == "moorage: no"
