"""The hash-chained audit log, signed checkpoints, verification and export."""

from moorage.audit.interface import AuditError, AuditRecord, AuditSink, JsonLinesSink

__all__ = ["AuditError", "AuditRecord", "AuditSink", "JsonLinesSink"]
