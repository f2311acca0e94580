"""Safe construction: every choice explicit, unsafe ones named and warned about,
and ``moorage up`` building its gateway through one named constructor."""

from __future__ import annotations

import inspect
import logging
from pathlib import Path

import pytest

from moorage.admission import UnsafeAllowAll
from moorage.admission.exceptions import ExceptionStore
from moorage.audit import AuditRecord, AuditSink
from moorage.gateway.config import GatewayConfig, UnsafeNoAudit
from moorage.gateway.server import Gateway
from moorage.gateway.upstream import Upstream
from moorage.identity import UserDirectory


class Sink(AuditSink):
    def record(self, record: AuditRecord) -> None:
        pass


def test_no_constructor_argument_has_a_default() -> None:
    params = list(inspect.signature(Gateway.__init__).parameters.values())[1:]
    assert params and all(p.default is inspect.Parameter.empty for p in params)


def test_unsafe_choices_warn_when_built(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        UnsafeAllowAll()
        UnsafeNoAudit()
    assert "UnsafeAllowAll" in caplog.text and "UnsafeNoAudit" in caplog.text


def test_from_config_builds_an_audited_gateway(tmp_path: Path) -> None:
    config = GatewayConfig(data=tmp_path, admin_uids=(0,), fast_path=False, allow_unknown_fields=False)
    sink, store = Sink(), ExceptionStore.in_folder(tmp_path)
    try:
        gw = Gateway.from_config(config, Upstream(f"unix://{tmp_path}/engine.sock"), UserDirectory(),
                                 UnsafeAllowAll(), sink, store, None, None)  # fmt: skip
        assert gw.audit is sink and gw.exceptions is store and not gw.fast_path
        assert gw.owners.path == tmp_path / "image-owners.json"
    finally:
        store.close()
