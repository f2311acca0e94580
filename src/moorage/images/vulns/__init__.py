"""Vulnerability sources: which known vulnerabilities affect an inventory.

The seam is :mod:`.interface`; the OSV database (:mod:`.osv`, matching in
:mod:`.osv_match`) is the implementation, picked through
:class:`~.choice.VulnerabilitySourceChoice`.
"""
