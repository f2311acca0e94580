"""Report formats: table, JSON, SARIF 2.1.0, CycloneDX and SPDX.

The seam is :mod:`.interface`: producers (``moorage image scan``, ``moorage policy
check``, compliance reports) build one neutral :class:`~.interface.ReportRun`, and
every format renders it. Formats are picked through
:class:`~.choice.OutputFormat`, as pip-audit picks its own.
"""
