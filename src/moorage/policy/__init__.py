"""Policy documents, rule families, exceptions and explanations. Pure: no I/O."""
