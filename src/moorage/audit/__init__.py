"""The hash-chained audit log, signed checkpoints, verification and export."""
