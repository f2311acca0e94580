"""One Docker Engine client, over a unix socket or TCP (with TLS).

The lab, image trust, the cluster reconciler and the CLI all reach an engine through
:class:`EngineClient`; the gateway's proxied traffic has its own pooled upstream.
"""

from moorage.engine.client import EngineClient, EngineError

__all__ = ["EngineClient", "EngineError"]
