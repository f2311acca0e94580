"""The ``moorage`` command: thin, one module per command group."""
