"""Listeners, per-connection HTTP/1.1 handling, upstream pool, hijack splicing, list filtering."""
