"""Swarm with secure defaults, node identity, attestation and placement."""
