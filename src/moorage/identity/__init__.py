"""Principals, roles, the gateway's PKI, users and tokens."""
